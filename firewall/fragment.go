package firewall

// IPv4 fragments, as an ASA handles them: virtual reassembly with the
// limits of "fragment size|chain|timeout", and fragmentation (or ICMP
// "fragmentation needed") on egress.
//
// The fragments of a datagram are collected per ingress interface, keyed
// by (source, destination, protocol, identification), until they cover the
// whole datagram without overlap. Only then is the first fragment, which
// holds the L4 header, run through the ordinary path (dispatch) as if it
// were the packet: connection lookup, policy, NAT, TTL, routing or
// bridging. If it is dropped, every fragment is dropped for the same
// reason; if it leaves, the other fragments follow it unchanged but for
// the IP header fields the path rewrote in the first (addresses, TTL),
// copied over with a fresh header checksum. The datagram is never copied
// into one buffer: NAT patches the L4 header in the first fragment with
// RFC 1624 incremental checksum updates, which stay right for the whole
// datagram that the L4 checksum covers.
//
// Nothing is forwarded before the datagram is whole, so overlapping
// fragments (teardrop), a first fragment too short for the L4 header (RFC
// 1858 tiny fragments), more fragments than Chain and datagrams past
// 65,535 bytes are dropped before any of them reaches a host. Held
// fragments are bounded by the interface's queue (Size fragments) and by
// one memory budget for the unit (Memory bytes of buffers); datagrams not
// complete within Timeout are freed by Maintain. Each drop is counted
// under its own reason, once per fragment.
//
// The reassembly state lives in the unit and is not replicated: like an
// ASA, a unit that takes over mid-datagram has none of its fragments, and
// the sender's retransmission (or the next datagram) goes through whole.
// Replicating it would send every fragment twice over the state link for
// a window of a few milliseconds.
//
// Non-fragmented packets pay one test (ip.IsFragment) on the way in and
// one length comparison with the egress MTU on the way out.

import (
	"sync"

	"github.com/falab/falab/firewall/header"
)

// fragKey identifies a datagram within one interface's queue (RFC 791).
type fragKey struct {
	src, dst [4]byte
	id       uint16
	proto    uint8
}

// fragPiece is one fragment of a datagram: its frame (trimmed to the IP
// total length) and the payload bytes [off, end) it carries.
type fragPiece struct {
	frame    []byte
	buf      *packetBuf // holds frame; nil for the frame being handled (the reader's buffer)
	off, end int
}

// fragDatagram is a datagram awaiting its missing fragments.
type fragDatagram struct {
	created int64       // unix nanoseconds of its first fragment
	total   int         // payload length, -1 until the last fragment arrives
	have    int         // payload bytes held
	pieces  []fragPiece // sorted by off, never overlapping
}

// fragQueue is one interface's reassembly queue; mu guards every field.
// Only that interface's reader adds to it, and Maintain sweeps it.
type fragQueue struct {
	mu    sync.Mutex
	m     map[fragKey]*fragDatagram // nil until the first fragment
	count int                       // fragments held
	free  []*fragDatagram           // spare datagrams, to spare the allocator under a flood
}

// fragWork is a worker's reassembly scratch: set while the first fragment
// of a complete datagram runs through dispatch.
type fragWork struct {
	releasing bool  // the fragment hooks let the packet through
	udpLen    int   // the datagram's L4 length, which its UDP header must state
	outLens   []int // per interface: frames queued before the release
}

// maxFragFree bounds a queue's spare datagrams.
const maxFragFree = 64

// fragment takes in a fragment that arrived on in (ip and frame trimmed
// to its total length). It returns dropNone when the fragment is held;
// when it completes its datagram, the first fragment's verdict.
func (w *worker) fragment(in *iface, ip header.IPv4, frame []byte) DropReason {
	f := w.f
	lim := &f.fragLimits
	hl := ip.HeaderLength()
	n := len(ip) - hl
	off := ip.FragmentOffset()
	end := off + n
	mf := ip.MoreFragments()
	if n == 0 || mf && n%8 != 0 || hl+end > 0xffff {
		return DropFragInvalid
	}
	proto := ip.Protocol()
	var tooSmall bool
	switch proto {
	case header.ProtocolTCP:
		// RFC 1858: the first fragment must hold the whole TCP header, and
		// a fragment at offset 8 could only serve to rewrite its flags.
		t := header.TCP(ip.Payload())
		tooSmall = off == 0 && (len(t) < header.TCPMinimumSize || t.DataOffset() > len(t)) || off == 8
	case header.ProtocolUDP:
		tooSmall = off == 0 && n < header.UDPMinimumSize
	case header.ProtocolICMP:
		tooSmall = off == 0 && n < header.ICMPv4MinimumSize
	default:
		return DropUnsupportedProtocol
	}
	k := fragKey{src: ip.SourceAddress(), dst: ip.DestinationAddress(), id: ip.ID(), proto: proto}
	q := &in.frags
	q.mu.Lock()
	d := q.m[k]
	if d != nil && w.now-d.created > int64(lim.Timeout) {
		f.freeDatagram(in, k, d, DropFragTimeout)
		d = nil
	}
	r, whole := dropNone, false // whole: r drops the datagram, not just this fragment
	i := 0                      // where the fragment goes in d.pieces
	switch {
	case tooSmall:
		r, whole = DropFragTooSmall, true
	case d == nil:
	case len(d.pieces) >= lim.Chain:
		r, whole = DropFragChainTooLong, true
	case !mf && (d.total >= 0 && d.total != end || d.pieces[len(d.pieces)-1].end > end),
		mf && d.total >= 0 && end >= d.total:
		r, whole = DropFragInvalid, true // two ends, or data past the end
	default:
		for i < len(d.pieces) && d.pieces[i].off < off {
			i++
		}
		switch {
		case i < len(d.pieces) && d.pieces[i].off == off && d.pieces[i].end == end:
			r = DropFragDuplicate
		case i > 0 && d.pieces[i-1].end > off, i < len(d.pieces) && d.pieces[i].off < end:
			r, whole = DropFragOverlap, true
		}
	}
	if r != dropNone {
		if whole && d != nil {
			f.freeDatagram(in, k, d, r)
		}
		q.mu.Unlock()
		return r
	}
	total := -1
	if d != nil {
		total = d.total
	}
	if !mf {
		total = end
	}
	if d != nil && total >= 0 && d.have+n == total {
		// Complete: take the datagram out of the queue and release it.
		delete(q.m, k)
		f.unaccount(in, d)
		q.mu.Unlock()
		d.pieces = append(d.pieces, fragPiece{})
		copy(d.pieces[i+1:], d.pieces[i:])
		d.pieces[i] = fragPiece{frame: frame, off: off, end: end}
		r := w.release(in, d, total)
		q.mu.Lock()
		q.recycle(d)
		q.mu.Unlock()
		return r
	}
	size := MaxFrameSize
	if len(frame) <= smallBufSize {
		size = smallBufSize
	}
	if q.count >= lim.Size || f.fragMem.Load()+int64(size) > int64(lim.Memory) {
		q.mu.Unlock()
		return DropFragQueueFull
	}
	if d == nil {
		if q.m == nil {
			q.m = make(map[fragKey]*fragDatagram)
		}
		if nf := len(q.free); nf > 0 {
			d, q.free = q.free[nf-1], q.free[:nf-1]
		} else {
			d = &fragDatagram{}
		}
		d.created, d.total, d.have = w.now, -1, 0
		q.m[k] = d
	}
	b := f.getBufFor(len(frame))
	b.n = copy(b.data, frame)
	d.pieces = append(d.pieces, fragPiece{})
	copy(d.pieces[i+1:], d.pieces[i:])
	d.pieces[i] = fragPiece{frame: b.data[:b.n], buf: b, off: off, end: end}
	d.have += n
	d.total = total
	q.count++
	f.fragMem.Add(int64(len(b.data)))
	q.mu.Unlock()
	return dropNone
}

// unaccount takes d's held fragments off the queue's and the unit's
// counts. Caller holds in.frags.mu.
func (f *Firewall) unaccount(in *iface, d *fragDatagram) {
	for _, p := range d.pieces {
		if p.buf != nil {
			in.frags.count--
			f.fragMem.Add(-int64(len(p.buf.data)))
		}
	}
}

// freeDatagram drops every held fragment of d, counting each under r.
// Caller holds in.frags.mu.
func (f *Firewall) freeDatagram(in *iface, k fragKey, d *fragDatagram, r DropReason) {
	delete(in.frags.m, k)
	f.unaccount(in, d)
	f.countDrops(in, r, len(d.pieces))
	for _, p := range d.pieces {
		if p.buf != nil {
			f.putBuf(p.buf)
		}
	}
	in.frags.recycle(d)
}

// countDrops counts n frames that arrived on in as dropped for r, as
// handle does for the frame it was given.
func (f *Firewall) countDrops(in *iface, r DropReason, n int) {
	f.drops[r].Add(uint64(n))
	in.stats.drops.Add(uint64(n))
}

// recycle keeps d for reuse. Caller holds q.mu; d's buffers are gone.
func (q *fragQueue) recycle(d *fragDatagram) {
	clear(d.pieces)
	d.pieces = d.pieces[:0]
	if len(q.free) < maxFragFree {
		q.free = append(q.free, d)
	}
}

// release runs the first fragment of the complete datagram d (payload
// length total) through the path and sends the others after it, or drops
// them all with its verdict. It takes the buffers of d's pieces.
func (w *worker) release(in *iface, d *fragDatagram, total int) DropReason {
	f := w.f
	first := d.pieces[0].frame
	ip := header.IPv4(first[header.EthernetLen:])
	l4 := ip.Payload()
	r := dropNone
	switch ip.Protocol() {
	case header.ProtocolUDP:
		if int(header.UDP(l4).Length()) != total {
			r = DropFragInvalid
		}
	case header.ProtocolICMP:
		// Only echoes: an error's quoted packet is rewritten with a full
		// checksum over what the first fragment holds.
		if !header.ICMPv4(l4).IsEcho() {
			r = DropUnsupportedProtocol
		}
	}
	if r == dropNone && w.espToUnit(in, ip) {
		return w.releaseJoined(in, d, total)
	}
	var lens []int
	if r == dropNone {
		if f.transparent {
			lens = w.frag.outLens[:0]
			for _, o := range w.out {
				lens = append(lens, len(o))
			}
			w.frag.outLens = lens
		}
		w.frag.releasing, w.frag.udpLen = true, total
		r = w.dispatch(in, first)
		w.frag.releasing = false
	}
	rest := d.pieces[1:]
	if r != dropNone {
		f.countDrops(in, r, len(rest))
		for _, p := range d.pieces {
			if p.buf != nil {
				f.putBuf(p.buf)
			}
		}
		return r
	}
	// The first fragment's buffer may be queued by reference until flush.
	if b := d.pieces[0].buf; b != nil {
		w.held = append(w.held, b)
	}
	for _, p := range rest {
		copyRewrite(p.frame, first)
	}
	if f.transparent {
		w.releaseBridged(first, rest, lens)
		return dropNone
	}
	for _, p := range rest {
		pip := header.IPv4(p.frame[header.EthernetLen:])
		outIdx, nh, ok := f.lookupRoute(pip.DestinationAddress())
		rr := DropNoRoute
		switch out := f.ifs[outIdx]; {
		case !ok:
			if p.buf != nil {
				f.putBuf(p.buf)
			}
		case len(pip) > out.mtu:
			rr = w.fragmentOut(out, nh, p.frame, p.buf)
		default:
			rr = w.transmit(out, nh, p.frame, p.buf)
		}
		if rr != dropNone {
			f.countDrops(in, rr, 1)
		}
	}
	return dropNone
}

// espToUnit reports whether the datagram whose first fragment's IP
// header is ip is UDP 4500 to the unit's own address on a crypto-map
// interface: ESP (or IKE) for the unit itself, which must be whole to be
// decrypted (or handed to the unit's stack).
func (w *worker) espToUnit(in *iface, ip header.IPv4) bool {
	return !w.f.transparent && in.crypto && ip.Protocol() == header.ProtocolUDP &&
		ip.DestinationAddress() == in.addr && header.UDP(ip.Payload()).DestinationPort() == PortIKENATT
}

// releaseJoined copies the complete datagram d (payload length total)
// into one buffer and runs it through the path as an unfragmented packet:
// the one place reassembly is not virtual, because ESP is decrypted as a
// whole (a peer with a smaller path MTU fragments its ESP datagrams). It
// takes the buffers of d's pieces; a datagram larger than a frame buffer
// is dropped, each fragment counted.
func (w *worker) releaseJoined(in *iface, d *fragDatagram, total int) DropReason {
	f := w.f
	first := d.pieces[0].frame
	hl := header.IPv4(first[header.EthernetLen:]).HeaderLength()
	size := header.EthernetLen + hl + total
	var b *packetBuf
	if size <= MaxFrameSize {
		b = f.getBufFor(size)
		copy(b.data, first[:header.EthernetLen+hl])
		for _, p := range d.pieces {
			copy(b.data[header.EthernetLen+hl+p.off:], header.IPv4(p.frame[header.EthernetLen:]).Payload())
		}
	}
	for _, p := range d.pieces {
		if p.buf != nil {
			f.putBuf(p.buf)
		}
	}
	if b == nil {
		f.countDrops(in, DropESPFragTooLarge, len(d.pieces)-1)
		return DropESPFragTooLarge
	}
	b.n = size
	ip := header.IPv4(b.data[header.EthernetLen:size])
	ip.SetTotalLength(uint16(hl + total))
	ip.SetFlagsFragmentOffset(0)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
	r := w.dispatch(in, b.data[:size])
	// The decrypted packet lies in b and may be queued by reference until flush.
	w.held = append(w.held, b)
	return r
}

// releaseBridged queues the fragments rest after the first on every
// interface the bridge queued first on (found by identity among the
// frames queued since lens), with its Ethernet header.
func (w *worker) releaseBridged(first []byte, rest []fragPiece, lens []int) {
	for i, o := range w.out {
		sent := false
		for _, fr := range o[lens[i]:] {
			if len(fr) > 0 && &fr[0] == &first[0] {
				sent = true
				break
			}
		}
		if !sent {
			continue
		}
		for _, p := range rest {
			copy(p.frame[:12], first[:12]) // the MACs
			w.queue(i, p.frame, nil)
		}
	}
	for _, p := range rest {
		if p.buf != nil {
			w.held = append(w.held, p.buf)
		}
	}
}

// copyRewrite gives fragment frame the addresses and TTL that the path
// wrote into the first fragment of its datagram, with a new checksum.
func copyRewrite(frame, first []byte) {
	ip := header.IPv4(frame[header.EthernetLen:])
	fip := header.IPv4(first[header.EthernetLen:])
	ip.SetSourceAddress(fip.SourceAddress())
	ip.SetDestinationAddress(fip.DestinationAddress())
	ip.SetTTL(fip.TTL())
	ip.SetChecksum(ip.CalculateChecksum())
}

// reassembledUDP reports whether u, which fails UDP.Check, is the header
// of a datagram being released: its first fragment holds only the start
// of what the length field counts.
func (w *worker) reassembledUDP(u header.UDP) bool {
	return w.frag.releasing && len(u) >= header.UDPMinimumSize && int(u.Length()) == w.frag.udpLen
}

// fragNeeded refuses a packet of c larger than its egress MTU with DF set,
// answering ICMP "fragmentation needed" with that MTU (RFC 1191).
func (w *worker) fragNeeded(c *conn, dir int) DropReason {
	f := w.f
	mtu := f.ifs[w.peerSide(c, dir)].mtu
	w.icmpErrorRest(f.ifs[w.ingressOf(c, dir)], header.ICMPv4DstUnreachable, header.ICMPv4FragNeeded, uint32(mtu))
	return DropFragNeeded
}

// fragmentOut sends the IPv4 frame, larger than out's MTU, as fragments
// that fit (RFC 791); a fragment is fragmented further. Every fragment
// carries the whole header, options included. buf, if not nil, holds
// frame and is released.
func (w *worker) fragmentOut(out *iface, nextHop [4]byte, frame []byte, buf *packetBuf) DropReason {
	f := w.f
	if buf != nil {
		defer f.putBuf(buf)
	}
	ip := header.IPv4(frame[header.EthernetLen:])
	if ip.DontFragment() {
		return DropFragNeeded
	}
	hl := ip.HeaderLength()
	step := (out.mtu - hl) &^ 7
	payload := ip[hl:]
	base, mf := ip.FragmentOffset(), ip.MoreFragments()
	r := dropNone
	for off := 0; off < len(payload); off += step {
		n := min(step, len(payload)-off)
		size := header.EthernetLen + hl + n
		b := f.getBufFor(size)
		fr := b.data[:size]
		b.n = size
		copy(fr, frame[:header.EthernetLen+hl])
		copy(fr[header.EthernetLen+hl:], payload[off:off+n])
		pip := header.IPv4(fr[header.EthernetLen:])
		pip.SetTotalLength(uint16(hl + n))
		fo := uint16((base + off) / 8)
		if mf || off+n < len(payload) {
			fo |= 0x2000
		}
		pip.SetFlagsFragmentOffset(fo)
		pip.SetChecksum(pip.CalculateChecksum())
		if rr := w.transmit(out, nextHop, fr, b); r == dropNone {
			r = rr
		}
	}
	return r
}

// sweepFragments frees the datagrams older than the fragment timeout.
func (f *Firewall) sweepFragments(now int64) {
	limit := int64(f.fragLimits.Timeout)
	for _, it := range f.ifs {
		q := &it.frags
		q.mu.Lock()
		for k, d := range q.m {
			if now-d.created > limit {
				f.freeDatagram(it, k, d, DropFragTimeout)
			}
		}
		q.mu.Unlock()
	}
}

// FragmentStats are the reassembly queues' occupancy, for the API.
type FragmentStats struct {
	Fragments int `json:"fragments"`    // held, all interfaces
	Datagrams int `json:"datagrams"`    // awaiting their other fragments
	Memory    int `json:"memory_bytes"` // of buffers held
}

// Fragments returns the reassembly queues' occupancy.
func (f *Firewall) Fragments() FragmentStats {
	var s FragmentStats
	for _, it := range f.ifs {
		it.frags.mu.Lock()
		s.Fragments += it.frags.count
		s.Datagrams += len(it.frags.m)
		it.frags.mu.Unlock()
	}
	s.Memory = int(f.fragMem.Load())
	return s
}
