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
// is an ordinary connection, replicated like any other. Pinholes
// themselves are not yet replicated, and are matched on real addresses
// (the policy's view): the mapped side of a PAT cannot be expected yet.

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
	Payload       []byte // the TCP or UDP payload; the engine may read it, not resize it
	Now           time.Time
	// Drop is the reason a VerdictDrop is counted under, so that "show
	// asp-drop" names the engine's reason (gtp-unknown-teid rather than
	// inspect-drop). The engine sets it when it drops; zero means
	// DropInspect.
	Drop DropReason

	f *Firewall
}

// Pinhole is a connection an engine expects, which the policy then admits
// once. Addresses are real ones (as the policy reads them).
type Pinhole struct {
	Proto   uint8   // header.ProtocolTCP or header.ProtocolUDP
	Src     [4]byte // the expected initiator; zero: any
	Dst     [4]byte // the expected responder
	DstPort uint16
	Timeout time.Duration // how long the pinhole waits; zero: DefaultPinholeTimeout
}

// DefaultPinholeTimeout is how long a pinhole waits for its flow unless
// the engine says otherwise.
const DefaultPinholeTimeout = 2 * time.Minute

// maxPinholes bounds the pinholes open at once, so that a control channel
// that asks for many cannot exhaust memory.
const maxPinholes = 4096

// Expect opens pinhole p and reports whether it could (false: malformed,
// or too many open).
func (x *Inspection) Expect(p Pinhole) bool {
	if p.Proto != header.ProtocolTCP && p.Proto != header.ProtocolUDP || p.DstPort == 0 || p.Dst == ([4]byte{}) {
		return false
	}
	if p.Timeout <= 0 {
		p.Timeout = DefaultPinholeTimeout
	}
	return x.f.inspection.open(p, x.Now.UnixNano())
}

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
// engine and returns its verdict as a drop reason.
func (w *worker) inspect(c *conn, dir int) DropReason {
	p := &w.p
	x := &w.insp
	*x = Inspection{Orig: c.orig, Reply: c.reply, FromInitiator: dir == dirOrig, Now: time.Unix(0, w.now), f: w.f}
	switch p.tuple.Proto {
	case header.ProtocolTCP:
		x.Payload = p.l4[header.TCP(p.l4).DataOffset():]
	case header.ProtocolUDP:
		x.Payload = p.l4[header.UDPMinimumSize:]
	}
	v := c.engine.Inspect(x)
	x.Payload = nil
	if v == VerdictDrop {
		if x.Drop > dropNone && x.Drop < numDropReasons {
			return x.Drop
		}
		return DropInspect
	}
	return dropNone
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
