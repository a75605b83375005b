package module

import (
	"slices"
	"time"
)

// Segment inspects one TCP segment of flow k travelling in direction d and
// returns what the firewall must do with it. seq is the segment's sequence
// number and payload its data (not kept unless it arrived out of order).
func (m *Module) Segment(k FlowKey, d Dir, seq uint32, flags Flags, payload []byte, now time.Time) Verdict {
	if d > ToClient {
		d = ToClient
	}
	if !m.up.Load() {
		m.downPkts.Add(1)
		return m.failVerdict()
	}
	n := now.UnixNano()
	sh := m.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.st.Packets++
	f := sh.flows[k]
	opening := flags&(SYN|ACK) == SYN && d == ToServer
	if f != nil && opening && f.isn != seq {
		// A new connection reusing the key (a SYN with another initial
		// sequence number): the old flow's state and verdict end here.
		m.remove(sh, f)
		f = nil
	}
	if f == nil {
		if flags&RST != 0 {
			return Pass // ends a flow we never knew; nothing to protect
		}
		f = m.newFlow(sh, k, n)
		f.isn = seq
		if !opening {
			f.state = uninspected
			sh.st.UninspectedFlows++
		}
	} else {
		sh.unlink(f)
		sh.pushFront(f)
		f.lastSeen = n
	}
	switch f.state {
	case detected:
		sh.st.DetectedDrops++
		return DropDetected
	case uninspected:
		sh.st.UninspectedPackets++
		if flags&RST != 0 {
			m.remove(sh, f)
		}
		v := m.failVerdict()
		if v != Pass {
			sh.st.FailCloseDrops++
		}
		return v
	}
	s := &f.dir[d]
	if flags&SYN != 0 {
		if !s.synced {
			s.synced, s.next = true, seq+1
		}
		seq++ // data on a SYN starts after it
	} else if !s.synced {
		// The handshake was seen from the other side only (a lost
		// SYN-ACK): take this direction up where it is.
		s.synced, s.next = true, seq
	}
	v := m.reassemble(sh, f, s, seq, payload)
	switch {
	case v == DropDetected:
	case flags&RST != 0:
		f.closed = true
		sh.st.Closed++
	case flags&FIN != 0:
		s.fin = true
		if f.dir[0].fin && f.dir[1].fin && !f.closed {
			f.closed = true
			sh.st.Closed++
		}
	}
	return v
}

// reassemble inspects payload at seq in stream s of flow f.
func (m *Module) reassemble(sh *shard, f *flow, s *stream, seq uint32, data []byte) Verdict {
	if len(data) == 0 {
		return Pass
	}
	off := int32(seq - s.next) // serial-number arithmetic: wraps correctly
	if off < 0 {
		sh.st.Retransmits++
		if int(-off) >= len(data) {
			return Pass // every byte was inspected already
		}
		data, off = data[-off:], 0
	}
	if off > 0 {
		return m.hold(sh, s, s.next+uint32(off), data)
	}
	if v := m.inspect(sh, f, s, data); v != Pass {
		return v
	}
	// Drain what the gap was holding back.
	for len(s.ooo) > 0 {
		p := s.ooo[0]
		o := int32(p.seq - s.next)
		if o > 0 {
			break
		}
		s.ooo = s.ooo[1:]
		s.held -= len(p.data)
		sh.buffered -= len(p.data)
		if int(-o) >= len(p.data) {
			continue
		}
		if v := m.inspect(sh, f, s, p.data[-o:]); v != Pass {
			return v
		}
	}
	if len(s.ooo) == 0 {
		s.ooo = nil // let the backing array go
	}
	return Pass
}

// inspect scans in-order bytes and advances the stream.
func (m *Module) inspect(sh *shard, f *flow, s *stream, data []byte) Verdict {
	sh.st.Bytes += uint64(len(data))
	st, found := m.match.scan(s.match, data)
	s.match = st
	s.next += uint32(len(data))
	if found >= 0 {
		f.state, f.sig = detected, found
		sh.st.Detected++
		sh.st.DetectedDrops++
		m.release(sh, f)
		return DropDetected
	}
	return Pass
}

// hold copies an out-of-order segment aside, within the window and the
// module's budget; beyond them it is dropped and the sender will resend.
func (m *Module) hold(sh *shard, s *stream, seq uint32, data []byte) Verdict {
	end := int(seq-s.next) + len(data)
	if end > m.cfg.Window || s.held+len(data) > m.cfg.Window || sh.buffered+len(data) > m.cfg.MaxBuffered/nShards {
		sh.st.BufferFullDrops++
		return DropBufferFull
	}
	i, dup := slices.BinarySearchFunc(s.ooo, seq, func(p pending, t uint32) int { return int(int32(p.seq - t)) })
	if dup && len(s.ooo[i].data) >= len(data) {
		sh.st.Retransmits++
		return Pass
	}
	sh.st.OutOfOrder++
	p := pending{seq: seq, data: slices.Clone(data)}
	if dup {
		s.held -= len(s.ooo[i].data)
		sh.buffered -= len(s.ooo[i].data)
		s.ooo[i] = p
	} else {
		s.ooo = slices.Insert(s.ooo, i, p)
	}
	s.held += len(data)
	sh.buffered += len(data)
	return Pass
}

// release frees a flow's out-of-order buffers.
func (m *Module) release(sh *shard, f *flow) {
	for d := range f.dir {
		sh.buffered -= f.dir[d].held
		f.dir[d].ooo, f.dir[d].held = nil, 0
	}
}

func (m *Module) newFlow(sh *shard, k FlowKey, n int64) *flow {
	if len(sh.flows) >= m.cfg.MaxFlows/nShards {
		sh.st.Evicted++
		m.remove(sh, sh.lru.prev)
	}
	f := &flow{key: k, lastSeen: n}
	sh.flows[k] = f
	sh.pushFront(f)
	c := m.flows.Add(1)
	for {
		most := m.mostFlows.Load()
		if c <= most || m.mostFlows.CompareAndSwap(most, c) {
			break
		}
	}
	return f
}

func (m *Module) remove(sh *shard, f *flow) {
	m.release(sh, f)
	sh.unlink(f)
	delete(sh.flows, f.key)
	m.flows.Add(-1)
}

func (sh *shard) pushFront(f *flow) {
	f.prev, f.next = &sh.lru, sh.lru.next
	sh.lru.next.prev = f
	sh.lru.next = f
}

func (sh *shard) unlink(f *flow) {
	f.prev.next, f.next.prev = f.next, f.prev
	f.prev, f.next = nil, nil
}

// Expire removes flows idle past the idle timeout, or past the closed
// timeout once closed, and returns how many.
func (m *Module) Expire(now time.Time) int {
	n := now.UnixNano()
	removed := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		// The LRU list runs from most to least recent: walk from the tail.
		for f := sh.lru.prev; f != &sh.lru; {
			prev := f.prev
			idle := time.Duration(n - f.lastSeen)
			if idle >= m.cfg.IdleTimeout || (f.closed && idle >= m.cfg.ClosedTimeout) {
				m.remove(sh, f)
				sh.st.Expired++
				removed++
			}
			f = prev
		}
		sh.mu.Unlock()
	}
	return removed
}
