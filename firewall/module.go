package firewall

// The security service module hook (the ASA's AIP-SSM/SFR slot, "ips
// inline fail-open|fail-close" under a class): TCP connections that match
// the module's class are diverted to it, and every segment of theirs that
// TCP tracking accepted is handed to it, payload, sequence number and
// flags as the sender wrote them, before NAT and before it is forwarded.
// The module's verdict can drop it.
//
// Whether a connection is diverted follows from its original tuple alone
// (like an inspection engine's binding), so a standby that applies the
// connection's record marks it too: after a takeover the new active's
// module meets the flow mid-stream, with none of the old active's module
// state, and its fail mode decides (package module). A connection that is
// not diverted pays one bool test per packet; with no module attached no
// connection is diverted.

import (
	"time"

	"github.com/falab/falab/firewall/header"
)

// ServiceModule inspects the segments of diverted TCP connections. The
// unit adapts package module to it. Segment is called on the forwarding
// goroutines, concurrently for different packets; it must not keep
// payload, nor block.
type ServiceModule interface {
	// Segment inspects one segment of the connection whose original
	// tuple is orig, travelling from the initiator when fromInitiator.
	Segment(orig Tuple, fromInitiator bool, seq uint32, flags uint8, payload []byte, now time.Time) ModuleVerdict
}

// ModuleVerdict is a service module's decision on one segment.
type ModuleVerdict uint8

// Module verdicts; every one but ModulePass drops the segment.
const (
	ModulePass       ModuleVerdict = iota
	ModuleDetected                 // a signature was seen in the flow: ips-request
	ModuleFailClose                // not inspectable and the module fails closed: ips-fail-close
	ModuleBufferFull               // out of order past the module's buffer: ips-reassembly-full
)

// AttachModule diverts the TCP connections created from now on whose
// original tuple the class list match permits (an access list: permit
// entries divert, deny entries exempt, no match is not diverted) to m.
// Call before Run.
func (f *Firewall) AttachModule(m ServiceModule, match []ACE) {
	f.module, f.moduleClass = m, compileACL(match)
}

// divertsTo reports whether a connection with original tuple t goes to the
// service module.
func (f *Firewall) divertsTo(t Tuple) bool {
	return f.module != nil && t.Proto == header.ProtocolTCP && aclPermits(f.moduleClass, t.Proto, t.Src, t.Dst, t.DstPort)
}

// divert hands a segment of diverted connection c to the service module.
func (w *worker) divert(c *conn, dir int) DropReason {
	t := header.TCP(w.p.l4)
	payload := w.p.l4[min(t.DataOffset(), len(w.p.l4)):]
	switch w.f.module.Segment(c.orig, dir == dirOrig, t.SequenceNumber(), uint8(w.p.tcpFlags), payload, time.Unix(0, w.now)) {
	case ModuleDetected:
		return DropIPSRequest
	case ModuleFailClose:
		return DropIPSFailClose
	case ModuleBufferFull:
		return DropIPSReassemblyFull
	}
	return dropNone
}
