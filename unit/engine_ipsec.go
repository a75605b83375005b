package unit

// The IKE and IPsec SA table: the unit's IKEv2 responder (package ike) on
// UDP 500 and 4500 of its own stack (the box), the child SAs it installs
// in the data plane (firewall/ipsec.go), and their replication as the
// engine table "ipsec-sa".
//
// Records (payload: kind, key, body):
//
//	'S' map(1) SPIr(8) JSON(ike.Record)  an IKE SA with its children, after every change
//	'L' inSPI(4) limit(8)                 the outbound sequence lease of a child SA
//	'R' inSPI(4) top(4) words(8 each)     the inbound replay window, synced every replayEvery when it changed
//
// The active exports an IKE SA after every request that changed it, before
// sending the reply (ike.Result), so the standby always holds the message
// ID the peer expects next and the reply it got. Outbound sequence numbers
// are leased: the active asks for a block with an 'L' record and grants it
// to the data plane only once the standby acknowledged the stream past
// that record (or when there is no standby session), so a new active,
// which starts each SA at its last 'L' limit, never reuses a number (a
// GCM nonce). The inbound replay window (top and bitmap, esp.Window
// Snapshot) is synced every replayEvery when it changed: after a takeover
// a packet the old active received up to that sync is refused as a
// replay, and one it never saw inside the window is still accepted. What
// the old active received after the last sync is not known to the new
// one (see docs/architecture.md, IPsec).

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/firewall"
	"github.com/falab/falab/fwconfig"
	"github.com/falab/falab/ike"
	"github.com/falab/falab/replicate"
)

// Lease and sync timing.
const (
	leaseBlock  = 1 << 16 // sequence numbers per lease
	leaseEvery  = 5 * time.Millisecond
	replayEvery = 100 * time.Millisecond
)

// ipsecEngine is the unit's crypto maps at run time.
type ipsecEngine struct {
	u    *Unit
	maps []*cryptoMap

	mu      sync.Mutex // guards everything below and serialises the responders
	emit    func(op replicate.Op, payload []byte)
	entries map[string]ipsecEntry // by record key
	digest  uint64
	// pending leases: the limit asked for per inbound SPI and the stream
	// position of that record; granted once acknowledged.
	pending map[uint32]pendingLease
	scratch []uint64     // replay window words, reused by tick
	natT    *net.UDPConn // the IKE socket on UDP 4500 (nil until start)
	// midSyncs are the RFC 6311 sync requests sent and not yet answered,
	// by IKE SA; tick resends each on its schedule.
	midSyncs map[uint64]*midSyncSend
}

// midSyncSend is one outstanding MID sync request: the very datagram, to
// be resent unchanged (an IKE retransmission), and when.
type midSyncSend struct {
	resp  *ike.Responder
	req   []byte
	peer  netip.AddrPort
	sched retransmits
}

// retransmits is an IKE-style retransmission schedule: after the first
// send, midSyncTries more, the wait doubling from midSyncFirstWait (0.5,
// 1, 2 s), then give up.
type retransmits struct {
	sent int
	next time.Time
}

const (
	midSyncTries     = 3
	midSyncFirstWait = 500 * time.Millisecond
)

// sentAt records a send at now and schedules the next.
func (r *retransmits) sentAt(now time.Time) {
	r.next = now.Add(midSyncFirstWait << r.sent)
	r.sent++
}

// due says, at now, whether to send again, or to give up.
func (r *retransmits) due(now time.Time) (resend, giveUp bool) {
	if now.Before(r.next) {
		return false, false
	}
	if r.sent > midSyncTries {
		return false, true
	}
	return true, false
}

type ipsecEntry struct {
	payload []byte
	hash    uint64
}

// pendingLease is a lease record on its way to the standby: queued (the
// table's queued count after it), then written (the table's sent count
// reached queued; the stream position is read a tick later, once the
// writer has stored it), then acknowledged (the standby's ack passed it).
type pendingLease struct {
	limit   uint64
	queued  uint64
	seq     uint64
	written bool
}

// cryptoMap is one crypto map entry with its responder.
type cryptoMap struct {
	idx   int
	cfg   fwconfig.CryptoMap
	local netip.Addr // the interface's active address
	ikec  ike.Config
	resp  *ike.Responder
}

// newIPsecEngine builds the responders of the configured crypto maps; nil
// when there is none.
func newIPsecEngine(u *Unit) (*ipsecEngine, error) {
	if len(u.cfg.Firewall.CryptoMaps) == 0 {
		return nil, nil
	}
	e := &ipsecEngine{u: u, entries: map[string]ipsecEntry{}, pending: map[uint32]pendingLease{}}
	for i, m := range u.cfg.Firewall.CryptoMaps {
		var local netip.Addr
		for _, ic := range u.cfg.Firewall.Interfaces {
			if ic.Name == m.Interface {
				local = ic.Prefix.Addr()
			}
		}
		c, err := ikeConfig(m, local)
		if err != nil {
			return nil, fmt.Errorf("crypto map %s %d: %w", m.Name, m.Seq, err)
		}
		e.maps = append(e.maps, &cryptoMap{idx: i, cfg: m, local: local, ikec: c, resp: ike.NewResponder(c)})
	}
	return e, nil
}

// ikeConfig turns a crypto map into the responder's config.
func ikeConfig(m fwconfig.CryptoMap, local netip.Addr) (ike.Config, error) {
	c := ike.Config{
		PSK:     []byte(m.PreSharedKey),
		LocalID: ike.Identity{Type: ike.IDIPv4, Data: local.AsSlice()},
	}
	groups := map[int]uint16{14: ike.DHMODP2048, 19: ike.DHECP256, 31: ike.DHCurve25519}
	for _, p := range m.IKEv2Policies {
		s := ike.Suite{PRF: ike.PRFHMACSHA256, DH: groups[p.Group]}
		switch p.Encryption {
		case "aes":
			s.Encr, s.KeyBits, s.Integ = ike.EncrAESCBC, 128, ike.IntegSHA256
		case "aes-256":
			s.Encr, s.KeyBits, s.Integ = ike.EncrAESCBC, 256, ike.IntegSHA256
		case "aes-gcm":
			s.Encr, s.KeyBits = ike.EncrAESGCM16, 128
		case "aes-gcm-256":
			s.Encr, s.KeyBits = ike.EncrAESGCM16, 256
		default:
			return c, fmt.Errorf("ikev2 encryption %q", p.Encryption)
		}
		c.IKESuites = append(c.IKESuites, s)
	}
	for _, p := range m.IPsecProposal {
		bits := uint16(128)
		if p == "aes-gcm-256" {
			bits = 256
		}
		c.ChildSuites = append(c.ChildSuites, ike.ChildSuite{Encr: ike.EncrAESGCM16, KeyBits: bits})
	}
	for _, a := range m.MatchAddress {
		c.LocalNets = append(c.LocalNets, a.Source)
		c.RemoteNets = append(c.RemoteNets, a.Destination)
	}
	return c, nil
}

// EngineTable.

func (e *ipsecEngine) Name() string { return "ipsec-sa" }

func (e *ipsecEngine) SetEmit(emit func(op replicate.Op, payload []byte)) {
	e.mu.Lock()
	e.emit = emit
	e.mu.Unlock()
}

func (e *ipsecEngine) Snapshot(emit func(payload []byte)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, en := range e.entries {
		emit(en.payload)
	}
}

func (e *ipsecEngine) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.entries)
	e.digest = 0
	for _, m := range e.maps {
		m.resp = ike.NewResponder(m.ikec)
	}
}

func (e *ipsecEngine) DigestLocked(fn func(uint64)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fn(e.digest)
}

// Apply installs one of the active's records on the standby.
func (e *ipsecEngine) Apply(op replicate.Op, p []byte) error {
	k, err := recordKey(p)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if op == replicate.OpDelete {
		if p[0] == 'S' {
			if m := e.mapAt(int(p[1])); m != nil {
				m.resp.Remove(binary.BigEndian.Uint64(p[2:10]))
			}
		}
		e.dropLocked(k, false)
		return nil
	}
	if p[0] == 'S' {
		m := e.mapAt(int(p[1]))
		if m == nil {
			return fmt.Errorf("ipsec-sa: record for crypto map %d, which this unit does not have", p[1])
		}
		var rec ike.Record
		if err := json.Unmarshal(p[10:], &rec); err != nil {
			return fmt.Errorf("ipsec-sa: IKE SA record: %w", err)
		}
		if err := m.resp.Import(rec); err != nil {
			return err
		}
	}
	e.storeLocked(k, p, false)
	return nil
}

// recordKey returns the key part of a record, checking its length.
func recordKey(p []byte) (string, error) {
	n := 0
	if len(p) > 0 {
		n = map[byte]int{'S': 10, 'L': 5, 'R': 5}[p[0]]
	}
	if n == 0 || len(p) < n || p[0] == 'L' && len(p) != 13 || p[0] == 'R' && (len(p) < 9 || (len(p)-9)%8 != 0 || len(p) > 9+8*maxReplayWords) {
		return "", fmt.Errorf("ipsec-sa: malformed record of %d bytes", len(p))
	}
	return string(p[:n]), nil
}

func (e *ipsecEngine) mapAt(i int) *cryptoMap {
	if i < 0 || i >= len(e.maps) {
		return nil
	}
	return e.maps[i]
}

func entryHash(p []byte) uint64 {
	h := fnv.New64a()
	h.Write(p)
	return h.Sum64()
}

// storeLocked sets a record, moves the digest, and emits it if asked.
func (e *ipsecEngine) storeLocked(k string, p []byte, send bool) {
	p = append([]byte(nil), p...)
	h := entryHash(p)
	if old, ok := e.entries[k]; ok {
		e.digest -= old.hash
	}
	e.entries[k] = ipsecEntry{payload: p, hash: h}
	e.digest += h
	if send && e.emit != nil {
		e.emit(replicate.OpUpsert, p)
	}
}

func (e *ipsecEngine) dropLocked(k string, send bool) {
	old, ok := e.entries[k]
	if !ok {
		return
	}
	delete(e.entries, k)
	e.digest -= old.hash
	if send && e.emit != nil {
		e.emit(replicate.OpDelete, []byte(k))
	}
}

func saKey(m *cryptoMap, spir uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{'S', byte(m.idx)}, spir)
}

func childKey(kind byte, inSPI uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{kind}, inSPI)
}

// syncSALocked exports IKE SA spir of m, or deletes its record if the SA
// is gone (or not yet established).
func (e *ipsecEngine) syncSALocked(m *cryptoMap, spir uint64) {
	k := saKey(m, spir)
	sa := m.resp.SA(spir)
	if sa == nil || !sa.Established() {
		e.dropLocked(string(k), true)
		return
	}
	b, err := json.Marshal(sa.Export())
	if err != nil {
		e.u.log.Error("ipsec-sa: export", "err", err)
		return
	}
	e.storeLocked(string(k), append(k, b...), true)
}

// serve reads IKE from one of the box's UDP sockets until it closes.
func (e *ipsecEngine) serve(c *net.UDPConn, natT bool) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		data := buf[:n]
		if natT {
			if n == 1 && data[0] == 0xff || n < 4 || data[0]|data[1]|data[2]|data[3] != 0 {
				continue // a NAT-keepalive (ESP never reaches the box)
			}
			data = data[4:]
		}
		reply := e.handle(data, from, natT)
		if reply == nil {
			continue
		}
		if natT {
			reply = append([]byte{0, 0, 0, 0}, reply...)
		}
		c.WriteToUDPAddrPort(reply, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()))
	}
}

// handle answers one IKE request on the active: the responder's reply,
// with the changed SA exported and the child SAs (un)installed first.
func (e *ipsecEngine) handle(data []byte, from netip.AddrPort, natT bool) []byte {
	if !e.u.active.Load() {
		return nil
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	var m *cryptoMap
	for _, cm := range e.maps {
		if cm.cfg.Peer == from.Addr() {
			m = cm
		}
	}
	if m == nil {
		return nil
	}
	port := uint16(500)
	if natT {
		port = 4500
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	res := m.resp.Handle(ike.Packet{Data: append([]byte(nil), data...), Local: netip.AddrPortFrom(m.local, port), Remote: from})
	if res.Err != nil {
		e.u.log.Debug("ike", "peer", from, "err", res.Err)
	}
	touched := map[uint64]bool{}
	if res.SA != 0 && res.Changed {
		touched[res.SA] = true
	}
	for _, ev := range res.Events {
		touched[ev.IKE] = true
		if ev.NewIKE != 0 {
			touched[ev.NewIKE] = true
		}
		e.applyEventLocked(m, ev)
	}
	for spir := range touched {
		e.syncSALocked(m, spir)
	}
	return res.Reply
}

// applyEventLocked installs or removes child SAs in the data plane.
func (e *ipsecEngine) applyEventLocked(m *cryptoMap, ev ike.Event) {
	fw := e.u.fw
	switch ev.Kind {
	case ike.EventChildUp, ike.EventChildRekeyed:
		sa := m.resp.SA(ev.IKE)
		if ev.Kind == ike.EventChildRekeyed && sa == nil {
			return
		}
		peer := netip.AddrPort{}
		if sa != nil {
			peer = sa.Export().Peer
		}
		if err := fw.InstallIPsecSA(e.childSA(m, ev.Child, peer, 1, 0)); err != nil {
			e.u.log.Error("ipsec-sa: install child", "err", err)
			return
		}
		e.u.events.Add("ipsec", fmt.Sprintf("child SA %08x/%08x %s with %s", ev.Child.InSPI, ev.Child.OutSPI, ev.Kind, peer))
	case ike.EventChildDown:
		fw.RemoveIPsecSA(ev.Child.InSPI)
		e.dropLocked(string(childKey('L', ev.Child.InSPI)), true)
		e.dropLocked(string(childKey('R', ev.Child.InSPI)), true)
		delete(e.pending, ev.Child.InSPI)
	}
}

// childSA is the data plane's form of a child SA.
func (e *ipsecEngine) childSA(m *cryptoMap, c ike.ChildRecord, peer netip.AddrPort, next uint64, top uint32) firewall.IPsecSA {
	if !peer.IsValid() || peer.Port() == 0 {
		peer = netip.AddrPortFrom(m.cfg.Peer, 4500)
	}
	ranges := func(ss []ike.Selector) []firewall.AddrRange {
		var out []firewall.AddrRange
		for _, s := range ss {
			out = append(out, firewall.AddrRange{From: s.Start, To: s.End})
		}
		return out
	}
	return firewall.IPsecSA{Interface: m.cfg.Interface, Peer: peer, InSPI: c.InSPI, OutSPI: c.OutSPI,
		InKey: c.InKey, InSalt: c.InSalt, OutKey: c.OutKey, OutSalt: c.OutSalt,
		LocalTS: ranges(c.LocalTS), RemoteTS: ranges(c.RemoteTS), NextSeq: next, ReplayTop: top}
}

// takeover installs every replicated child SA in the data plane: outbound
// from its last leased limit, inbound above its last synced replay top.
func (e *ipsecEngine) takeover() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	type lease struct {
		inSPI uint32
		next  uint64
	}
	var installed []lease
	for k, en := range e.entries {
		if k[0] != 'S' {
			continue
		}
		m := e.mapAt(int(k[1]))
		var rec ike.Record
		if m == nil || json.Unmarshal(en.payload[10:], &rec) != nil {
			continue
		}
		for _, c := range rec.Children {
			next := uint64(1)
			if l, ok := e.entries[string(childKey('L', c.InSPI))]; ok {
				next = binary.BigEndian.Uint64(l.payload[5:])
			}
			fsa := e.childSA(m, c, rec.Peer, next, 0)
			if r, ok := e.entries[string(childKey('R', c.InSPI))]; ok {
				fsa.ReplayTop, fsa.ReplayBitmap = decodeReplay(r.payload)
			}
			if err := e.u.fw.InstallIPsecSA(fsa); err != nil {
				e.u.log.Error("ipsec-sa: takeover install", "err", err)
				continue
			}
			installed = append(installed, lease{c.InSPI, next})
			n++
		}
	}
	clear(e.pending)
	// The first lease now, not at the next tick: a takeover usually has no
	// standby to wait for, and every packet sent before the grant would be
	// dropped (ipsec-seq-lease-exhausted) on top of the failover's gap.
	for _, l := range installed {
		e.requestLeaseLocked(l.inSPI, l.next+leaseBlock)
	}
	e.midSyncLocked()
	return n
}

// midSyncLocked asks the peer of every IKE SA that negotiated RFC 6311 to
// confirm the message IDs (ike/midsync.go): if the old active answered a
// request whose record never arrived, the peer's answer moves ours up, so
// its next request is not refused as out of window. One datagram per SA;
// the answer comes back through serve like a request.
func (e *ipsecEngine) midSyncLocked() {
	if e.natT == nil {
		return
	}
	for _, m := range e.maps {
		for _, spir := range m.resp.SAs() {
			req, err := m.resp.MIDSyncRequest(spir)
			if req == nil {
				if err != nil {
					e.u.log.Error("ipsec-sa: MID sync request", "err", err)
				}
				continue
			}
			peer := m.resp.SA(spir).Export().Peer
			if peer.Port() != 4500 {
				continue // not floated to NAT-T: the 500 socket would have to carry it; libipsec always floats
			}
			s := &midSyncSend{resp: m.resp, req: append([]byte{0, 0, 0, 0}, req...), peer: peer}
			if e.midSyncs == nil {
				e.midSyncs = map[uint64]*midSyncSend{}
			}
			e.midSyncs[spir] = s
			s.sched.sentAt(time.Now())
			if _, err := e.natT.WriteToUDPAddrPort(s.req, peer); err != nil {
				e.u.log.Error("ipsec-sa: MID sync request", "peer", peer, "err", err)
				continue
			}
			e.u.events.Add("ipsec", fmt.Sprintf("RFC 6311 message ID sync sent to %s for IKE SA %016x", peer, spir))
		}
	}
}

// resendMIDSyncsLocked resends each unanswered MID sync request that is
// due, and gives up on one the peer never answered (its next request may
// then be refused as out of window, and the peer rekeys or dead-peer
// detection takes the SA down).
func (e *ipsecEngine) resendMIDSyncsLocked(now time.Time) {
	for spir, s := range e.midSyncs {
		if !s.resp.MIDSyncPending(spir) {
			delete(e.midSyncs, spir) // answered, or the SA is gone
			continue
		}
		resend, giveUp := s.sched.due(now)
		switch {
		case giveUp:
			delete(e.midSyncs, spir)
			e.u.events.Add("ipsec", fmt.Sprintf("RFC 6311 message ID sync to %s for IKE SA %016x: no answer after %d sends", s.peer, spir, s.sched.sent))
		case resend && e.natT != nil:
			s.sched.sentAt(now)
			if _, err := e.natT.WriteToUDPAddrPort(s.req, s.peer); err != nil {
				e.u.log.Error("ipsec-sa: MID sync resend", "peer", s.peer, "err", err)
				continue
			}
			e.u.events.Add("ipsec", fmt.Sprintf("RFC 6311 message ID sync to %s for IKE SA %016x resent, send %d", s.peer, spir, s.sched.sent))
		}
	}
}

// stepDown forgets the data plane's SAs: a later takeover reinstalls them
// from the records, with leases the then active granted.
func (e *ipsecEngine) stepDown() {
	e.u.fw.RemoveAllIPsecSAs()
	e.mu.Lock()
	clear(e.pending)
	clear(e.midSyncs)
	e.mu.Unlock()
}

// leases runs on the active: it asks for the next block of sequence
// numbers of each SA that needs one, grants blocks the standby has
// acknowledged, and syncs replay windows.
func (e *ipsecEngine) leases(ctx context.Context) {
	t := time.NewTicker(leaseEvery)
	defer t.Stop()
	lastReplay := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !e.u.active.Load() {
			continue
		}
		syncReplay := time.Since(lastReplay) >= replayEvery
		if syncReplay {
			lastReplay = time.Now()
		}
		e.tick(syncReplay)
	}
}

// tick is one round of leases.
func (e *ipsecEngine) tick(syncReplay bool) {
	sas := e.u.fw.IPsecSAs()
	if len(sas) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.midSyncs) > 0 {
		e.resendMIDSyncsLocked(time.Now())
	}
	for _, sa := range sas {
		if p, ok := e.pending[sa.InSPI]; ok {
			if e.acknowledged(&p) {
				e.u.fw.GrantIPsecLease(sa.InSPI, p.limit)
				delete(e.pending, sa.InSPI)
			} else {
				e.pending[sa.InSPI] = p
			}
		} else if sa.NeedGrant {
			e.requestLeaseLocked(sa.InSPI, max(sa.LeaseLimit, sa.NextSeq)+leaseBlock)
		}
		if syncReplay {
			e.syncReplayLocked(sa.InSPI)
		}
	}
}

// maxReplayWords bounds a replay record: a window of 65536 (esp's most)
// in 64-bit words, plus the ring's spare.
const maxReplayWords = 1<<16/64 + 1

// syncReplayLocked sends SA inSPI's replay window to the standby if it
// changed since the last record (the top moved, or a late packet filled
// a hole below it).
func (e *ipsecEngine) syncReplayLocked(inSPI uint32) {
	top, words, ok := e.u.fw.IPsecReplayWindow(inSPI, e.scratch[:0])
	e.scratch = words
	if !ok || top == 0 {
		return
	}
	k := childKey('R', inSPI)
	p := binary.BigEndian.AppendUint32(k, top)
	for _, w := range words {
		p = binary.BigEndian.AppendUint64(p, w)
	}
	if old, ok := e.entries[string(k)]; ok && bytes.Equal(old.payload, p) {
		return
	}
	e.storeLocked(string(k), p, true)
}

// decodeReplay reads a replay record (checked by recordKey): the top and
// the window's words; a record of the top alone gives nil words, which
// count everything up to the top as received.
func decodeReplay(p []byte) (top uint32, words []uint64) {
	top = binary.BigEndian.Uint32(p[5:])
	for b := p[9:]; len(b) >= 8; b = b[8:] {
		words = append(words, binary.BigEndian.Uint64(b))
	}
	return top, words
}

// requestLeaseLocked records the next lease of SA inSPI (sequence numbers
// below limit) for the standby and grants it at once when no standby
// needs to hold it first (acknowledged without a session); else it is
// pending until the standby's ack passes it.
func (e *ipsecEngine) requestLeaseLocked(inSPI uint32, limit uint64) {
	e.storeLocked(string(childKey('L', inSPI)), binary.BigEndian.AppendUint64(childKey('L', inSPI), limit), true)
	queued, _ := e.tableCounts()
	p := pendingLease{limit: limit, queued: queued}
	if e.acknowledged(&p) {
		e.u.fw.GrantIPsecLease(inSPI, limit)
		return
	}
	e.pending[inSPI] = p
}

// tableCounts returns the sender's queued and sent counts of this table.
func (e *ipsecEngine) tableCounts() (queued, sent uint64) {
	s := e.u.sender.Load()
	if s == nil {
		return 0, 0
	}
	id := uint8(0)
	for _, t := range e.u.engines {
		if t.EngineTable == EngineTable(e) {
			id = t.id
		}
	}
	for _, t := range s.Stats().Tables {
		if t.Table == id {
			return t.Queued, t.Sent
		}
	}
	return 0, 0
}

// acknowledged advances a pending lease and reports whether the standby
// holds it, or there is no standby to take over (no session, or
// replication is off). A record is known written once the table's sent
// count reaches the queued count taken after it; the stream position is
// read on the next tick, after the writer stored it for that batch; the
// standby's ack must then pass it.
func (e *ipsecEngine) acknowledged(p *pendingLease) bool {
	if e.u.noIPsecReplication() {
		return true
	}
	s := e.u.sender.Load()
	if s == nil {
		return true
	}
	st := s.Stats()
	if !st.Connected {
		return true
	}
	switch {
	case p.seq != 0:
		return st.AckedSeq >= p.seq
	case p.written:
		p.seq = max(st.RecordSeq, 1)
	default:
		_, sent := e.tableCounts()
		p.written = sent >= p.queued
	}
	return false
}

// IKESAs returns the IKE SA records this unit holds (the active's own, or
// the standby's replicated copy), for show crypto.
func (e *ipsecEngine) IKESAs() []ike.Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []ike.Record
	for k, en := range e.entries {
		if k[0] != 'S' {
			continue
		}
		var rec ike.Record
		if json.Unmarshal(en.payload[10:], &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// start opens the IKE sockets on the unit's own stack and runs the
// readers and the lease loop for the life of Run.
func (e *ipsecEngine) start() error {
	u := e.u
	for _, port := range []int{500, 4500} {
		c, err := listenRetry(u.ctx, func() (*net.UDPConn, error) {
			return net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		})
		if err != nil {
			return fmt.Errorf("IKE socket on UDP %d: %w", port, err)
		}
		if port == 4500 {
			e.mu.Lock()
			e.natT = c
			e.mu.Unlock()
		}
		u.spawn(func(ctx context.Context) {
			<-ctx.Done()
			c.Close()
		})
		u.spawn(func(context.Context) { e.serve(c, port == 4500) })
	}
	u.spawn(e.leases)
	return nil
}

// Crypto is the unit's IKE and IPsec SA table in wire form.
func (u *Unit) Crypto() api.Crypto {
	out := api.Crypto{Unit: u.cfg.Name, Active: u.active.Load(), Replicated: !u.noIPsecReplication(), IKE: []api.IKESA{}, IPsec: []api.IPsecSA{}}
	if u.vpn == nil {
		return out
	}
	ts := func(ss []ike.Selector) []string {
		var o []string
		for _, s := range ss {
			o = append(o, s.String())
		}
		return o
	}
	for _, r := range u.vpn.IKESAs() {
		sa := api.IKESA{Local: r.Local, Remote: r.Peer, SPIi: fmt.Sprintf("%016x", r.SPIi), SPIr: fmt.Sprintf("%016x", r.SPIr),
			Suite: r.Suite.String(), PeerID: r.PeerID, NATPeer: r.NATPeer, NextMessageID: r.NextMessageID, Children: []api.ChildSA{}}
		if len(u.vpn.maps) > 0 {
			sa.CryptoMap = fmt.Sprintf("%s %d", u.vpn.maps[0].cfg.Name, u.vpn.maps[0].cfg.Seq)
		}
		for _, c := range r.Children {
			sa.Children = append(sa.Children, api.ChildSA{InSPI: fmt.Sprintf("%08x", c.InSPI), OutSPI: fmt.Sprintf("%08x", c.OutSPI),
				Suite: c.Suite.String(), LocalTS: ts(c.LocalTS), RemoteTS: ts(c.RemoteTS)})
		}
		out.IKE = append(out.IKE, sa)
	}
	ranges := func(rs []firewall.AddrRange) []string {
		var o []string
		for _, r := range rs {
			o = append(o, r.From.String()+"-"+r.To.String())
		}
		return o
	}
	for _, s := range u.fw.IPsecSAs() {
		out.IPsec = append(out.IPsec, api.IPsecSA{Interface: s.Interface, Local: s.Local, Peer: s.Peer,
			InSPI: fmt.Sprintf("%08x", s.InSPI), OutSPI: fmt.Sprintf("%08x", s.OutSPI), LocalTS: ranges(s.LocalTS), RemoteTS: ranges(s.RemoteTS),
			Encaps: s.Encaps, Decaps: s.Decaps, EncapBytes: s.EncapBytes, DecapBytes: s.DecapBytes,
			ReplayDrops: s.ReplayDrops, AuthDrops: s.AuthDrops, LeaseDrops: s.LeaseDrops, PolicyDrops: s.PolicyDrops,
			NextSeq: s.NextSeq, LeaseLimit: s.LeaseLimit, ReplayTop: s.ReplayTop, ReplayWindow: s.ReplayWindow})
	}
	return out
}
