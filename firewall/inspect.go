package firewall

// Application inspection: the hook by which engines (HTTP, SIP, CTIQBE,
// GTP; none is built in yet) attach to the packet path by protocol and
// port, as an ASA's "inspect" does.
//
// An engine registered for (protocol, port) is bound to every connection
// created afterwards whose responder port is that port; the binding
// follows from the connection's record alone, so a standby that applies
// the record binds the same engine (if it registered it). The path calls
// the engine for each packet of a bound connection after TCP tracking has
// accepted the packet and before NAT, so the engine reads the addresses
// and ports the sender wrote (a segment it drops has been counted by the
// TCP tracker; the sender's retransmission stays within the window). A
// connection without an engine pays one nil check per packet.
//
// An engine may open pinholes: expected connections (media, a data
// channel) that the policy would refuse. A pinhole admits the first new
// flow that matches it, once, and then is gone; the connection it admits
// is an ordinary connection, replicated like any other. Pinholes are
// matched on real addresses (the policy's view); an engine closes one it
// no longer wants (Close). The firewall does not replicate pinholes: an
// engine whose state is replicated re-opens them on the standby from its
// own records (OpenPinhole).
//
// NAT of payloads (UDP only): an engine may replace a datagram's payload
// with one of another length (Replace), e.g. SIP's SDP rewritten under
// PAT; the path then rebuilds the frame with the IP and UDP lengths and
// checksums set. To name a media endpoint in the translated message the
// engine asks for its mapping (MapAddr): under PAT this allocates the
// mapped port, which idles like any PAT xlate until the media flows use
// it. A new flow addressed to such a mapped port is untranslated to the
// real endpoint when a pinhole expects that endpoint, so a pinhole for the
// outside party's RTP towards a phone behind PAT names the phone's real
// address and port. Segments of TCP cannot be resized (no sequence
// rewriting); an engine on TCP reads and passes or drops.

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/falab/falab/firewall/header"
)

// Inspector is an application inspection engine.
type Inspector interface {
	// Inspect is called for each packet of a connection bound to the
	// engine, on the goroutine that forwards it (so concurrently for
	// different packets), and says whether the packet passes. It must
	// not keep x or x.Payload after it returns, nor block.
	Inspect(x *Inspection) Verdict
}

// Verdict is an engine's decision on one packet.
type Verdict uint8

const (
	VerdictPass Verdict = iota // forward the packet
	VerdictDrop                // drop it, counted as Inspection.Drop (DropInspect if unset)
)

// Inspection is one packet as an engine sees it.
type Inspection struct {
	Orig, Reply   Tuple  // the connection's tuples (Orig: as the initiator sent it)
	FromInitiator bool   // the packet travels in the Orig direction
	Payload       []byte // the TCP or UDP payload; the engine may read it, not change it in place
	Seq           uint32 // TCP: the sequence number of Payload's first byte, as the sender wrote it
	Now           time.Time
	// Drop is the reason a VerdictDrop is counted under, so that "show
	// asp-drop" names the engine's reason (gtp-unknown-teid rather than
	// inspect-drop). The engine sets it when it drops; zero means
	// DropInspect.
	Drop DropReason

	f           *Firewall
	from, to    int    // interface indexes the packet arrives on and leaves by
	replacement []byte // set by Replace
}

// Replace makes the packet leave with payload b instead of Payload (UDP
// only; b may have another length) and reports whether it will. The path
// copies b, so the engine may reuse it after Inspect returns.
func (x *Inspection) Replace(b []byte) bool {
	if x.Orig.Proto != header.ProtocolUDP || len(b) > maxReplacedPayload {
		return false
	}
	x.replacement = b
	return true
}

// maxReplacedPayload bounds a replaced UDP payload so that the rebuilt
// datagram's lengths fit their 16-bit fields.
const maxReplacedPayload = 65535 - 60 - header.UDPMinimumSize

// MapAddr returns how endpoint (a, port) on the interface the packet comes
// from is seen on the interface it goes to, and reports whether it is
// translated at all: the connection's own mapping for the sender's own
// endpoint, a static NAT's mapped address, or under PAT a mapped port
// allocated for (proto, a, port) that idles like any PAT xlate until a
// connection uses it. port 0 asks for the address only (no allocation).
func (x *Inspection) MapAddr(proto uint8, a [4]byte, port uint16) ([4]byte, uint16, bool) {
	if x.f.transparent {
		return a, port, false
	}
	return x.f.mapEndpoint(x, proto, a, port)
}

// UnmapAddr is MapAddr's inverse for a packet arriving from the mapped
// side: the real endpoint behind mapped (a, port), if the unit maps it.
func (x *Inspection) UnmapAddr(proto uint8, a [4]byte, port uint16) ([4]byte, uint16, bool) {
	if x.f.transparent {
		return a, port, false
	}
	return x.f.unmapEndpoint(x, proto, a, port)
}

// Close closes pinhole p (the keys Expect took: Proto, Src, Dst, DstPort)
// if it is open.
func (x *Inspection) Close(p Pinhole) { x.f.ClosePinhole(p) }

// Pinhole is a connection an engine expects, which the policy then admits
// once. Addresses are real ones (as the policy reads them).
type Pinhole struct {
	Proto   uint8   // header.ProtocolTCP or header.ProtocolUDP
	Src     [4]byte // the expected initiator; zero: any
	Dst     [4]byte // the expected responder
	DstPort uint16
	Timeout time.Duration // how long the pinhole waits; zero: DefaultPinholeTimeout
}

// OpenPinhole opens pinhole p outside any packet, e.g. on a standby
// re-opening the pinholes of an engine's replicated records, and reports
// whether it could.
func (f *Firewall) OpenPinhole(p Pinhole) bool {
	if p.Proto != header.ProtocolTCP && p.Proto != header.ProtocolUDP || p.DstPort == 0 || p.Dst == ([4]byte{}) {
		return false
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultPinholeTimeout
	}
	return f.inspection.open(p, f.now())
}

// ClosePinhole closes pinhole p if it is open.
func (f *Firewall) ClosePinhole(p Pinhole) {
	t := &f.inspection
	t.pinMu.Lock()
	defer t.pinMu.Unlock()
	delete(t.pinholes, pinholeKey{proto: p.Proto, src: p.Src, dst: p.Dst, dstPort: p.DstPort})
	t.count.Store(int64(len(t.pinholes)))
}

// Pinholes returns the number of pinholes open (expired ones included
// until a packet or a full table removes them).
func (f *Firewall) Pinholes() int { return int(f.inspection.count.Load()) }

// DefaultPinholeTimeout is how long a pinhole waits for its flow unless
// the engine says otherwise.
const DefaultPinholeTimeout = 2 * time.Minute

// maxPinholes bounds the pinholes open at once, so that a control channel
// that asks for many cannot exhaust memory.
const maxPinholes = 4096

// Expect opens pinhole p and reports whether it could (false: malformed,
// or too many open).
func (x *Inspection) Expect(p Pinhole) bool { return x.f.OpenPinhole(p) }

// inspectKey is what an engine is registered for.
type inspectKey struct {
	proto uint8
	port  uint16
}

// engine is a registered Inspector; a connection points at its engine.
type engine struct {
	Inspector
	key inspectKey
}

// pinholeKey identifies a pinhole; src is zero for "any initiator".
type pinholeKey struct {
	proto    uint8
	src, dst [4]byte
	dstPort  uint16
}

// inspection holds the engine registry and the pinholes.
type inspection struct {
	mu      sync.Mutex                             // serialises registration
	engines atomic.Pointer[map[inspectKey]*engine] // immutable once stored; nil: none

	pinMu    sync.Mutex
	pinholes map[pinholeKey]int64 // guarded by pinMu: expiry, unix nanoseconds
	count    atomic.Int64         // len(pinholes), read without pinMu: new flows pay nothing while none is open
}

// RegisterInspector binds engine e to the TCP or UDP connections created
// from now on whose responder port is port. One engine per (proto, port).
func (f *Firewall) RegisterInspector(proto uint8, port uint16, e Inspector) error {
	if proto != header.ProtocolTCP && proto != header.ProtocolUDP || port == 0 || e == nil {
		return errors.New("register inspector: need TCP or UDP, a port and an engine")
	}
	t := &f.inspection
	t.mu.Lock()
	defer t.mu.Unlock()
	k := inspectKey{proto, port}
	m := map[inspectKey]*engine{}
	if old := t.engines.Load(); old != nil {
		if (*old)[k] != nil {
			return errors.New("register inspector: an engine is already registered for that port")
		}
		for k, v := range *old {
			m[k] = v
		}
	}
	m[k] = &engine{Inspector: e, key: k}
	t.engines.Store(&m)
	return nil
}

// engineFor returns the engine a connection with original tuple t binds
// to, or nil.
func (f *Firewall) engineFor(t Tuple) *engine {
	m := f.inspection.engines.Load()
	if m == nil {
		return nil
	}
	return (*m)[inspectKey{t.Proto, t.DstPort}]
}

// inspect hands the current packet (w.p) of c, from direction dir, to c's
// engine and returns its verdict as a drop reason, and the frame to send:
// frame itself, or a new one if the engine replaced the payload.
func (w *worker) inspect(c *conn, dir int, frame []byte) ([]byte, DropReason) {
	p := &w.p
	x := &w.insp
	*x = Inspection{Orig: c.orig, Reply: c.reply, FromInitiator: dir == dirOrig, Now: time.Unix(0, w.now), f: w.f,
		from: w.ingressOf(c, dir), to: w.peerSide(c, dir)}
	switch p.tuple.Proto {
	case header.ProtocolTCP:
		tcp := header.TCP(p.l4)
		x.Payload, x.Seq = p.l4[tcp.DataOffset():], tcp.SequenceNumber()
	case header.ProtocolUDP:
		x.Payload = p.l4[header.UDPMinimumSize:]
	}
	v := c.engine.Inspect(x)
	repl := x.replacement
	x.Payload, x.replacement = nil, nil
	if v == VerdictDrop {
		if x.Drop > dropNone && x.Drop < numDropReasons {
			return frame, x.Drop
		}
		return frame, DropInspect
	}
	if repl != nil {
		return w.replaceUDPPayload(frame, repl)
	}
	return frame, dropNone
}

// replaceUDPPayload returns a copy of frame, the packet w.p, with UDP
// payload b: the IP total length and header checksum, the UDP length and
// checksum (recomputed, or left absent if the sender sent none) set for
// the new length. w.p is pointed at the copy, so that NAT then translates
// it. Replacing is rare (a SIP message with addresses to rewrite), so the
// copy is allocated.
func (w *worker) replaceUDPPayload(frame, b []byte) ([]byte, DropReason) {
	p := &w.p
	const ipOff = header.EthernetLen
	hl := p.ip.HeaderLength()
	if len(frame) < ipOff+hl+header.UDPMinimumSize || &frame[ipOff] != &p.ip[0] {
		return frame, DropInspect // not the frame layout the path parsed: never rewrite blind
	}
	n := ipOff + hl + header.UDPMinimumSize
	out := make([]byte, n+len(b))
	copy(out, frame[:n])
	copy(out[n:], b)
	ip := header.IPv4(out[ipOff:])
	ip.SetTotalLength(uint16(len(ip)))
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
	u := header.UDP(ip[hl:])
	u.SetLength(uint16(len(u)))
	if u.Checksum() != 0 {
		u.SetChecksum(0)
		u.SetChecksum(u.CalculateChecksum(p.tuple.Src, p.tuple.Dst))
	}
	p.ip, p.l4 = ip, []byte(u)
	return out, dropNone
}

// open records pinhole p, opened at now; a full table is first rid of the
// pinholes that expired.
func (t *inspection) open(p Pinhole, now int64) bool {
	t.pinMu.Lock()
	defer t.pinMu.Unlock()
	if t.pinholes == nil {
		t.pinholes = make(map[pinholeKey]int64)
	}
	k := pinholeKey{proto: p.Proto, src: p.Src, dst: p.Dst, dstPort: p.DstPort}
	if _, ok := t.pinholes[k]; !ok && len(t.pinholes) >= maxPinholes {
		for k, exp := range t.pinholes {
			if now >= exp {
				delete(t.pinholes, k)
			}
		}
		if len(t.pinholes) >= maxPinholes {
			return false
		}
	}
	t.pinholes[k] = now + int64(p.Timeout)
	t.count.Store(int64(len(t.pinholes)))
	return true
}

// takePinhole reports whether a pinhole admits new flow t (real
// addresses) at now, and closes it: it admits once.
func (f *Firewall) takePinhole(t Tuple, now int64) bool {
	s := &f.inspection
	if s.count.Load() == 0 {
		return false
	}
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	for _, k := range [2]pinholeKey{
		{proto: t.Proto, src: t.Src, dst: t.Dst, dstPort: t.DstPort},
		{proto: t.Proto, dst: t.Dst, dstPort: t.DstPort},
	} {
		exp, ok := s.pinholes[k]
		if !ok {
			continue
		}
		delete(s.pinholes, k)
		s.count.Store(int64(len(s.pinholes)))
		if now < exp {
			return true
		}
	}
	return false
}
