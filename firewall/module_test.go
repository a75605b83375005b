package firewall

import (
	"sync"
	"testing"
	"time"
)

// fakeModule records the segments it is given and answers verdict.
type fakeModule struct {
	mu      sync.Mutex
	verdict ModuleVerdict
	segs    []fakeSeg
}

type fakeSeg struct {
	orig          Tuple
	fromInitiator bool
	seq           uint32
	flags         uint8
	payload       string
}

func (m *fakeModule) Segment(orig Tuple, from bool, seq uint32, flags uint8, payload []byte, _ time.Time) ModuleVerdict {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.segs = append(m.segs, fakeSeg{orig, from, seq, flags, string(payload)})
	return m.verdict
}

// port80 is the module class of the tests: TCP to port 80 only.
var port80 = []ACE{{Permit: true, Protocol: "tcp", DstPortLow: 80}}

// TestModuleSeesDivertedSegments: a TCP connection matching the class
// hands every accepted segment to the module with its payload, the
// sequence number the client wrote (before NAT's offset) and its flags;
// a connection outside the class never reaches it; a module drop is
// counted by its asp-drop name and the segment is not forwarded.
func TestModuleSeesDivertedSegments(t *testing.T) {
	l := resolvedLab(t, labConfig())
	m := &fakeModule{}
	l.fw.AttachModule(m, port80)
	l.send(segment{true, SYN, ""})
	l.send(segment{false, SYN | ACK, ""})
	l.send(segment{true, ACK, ""})
	out := l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, ACK|PSH, "GET /"))
	only(t, out, ifOutside, 1)
	if len(m.segs) != 4 {
		t.Fatalf("module saw %d segments, want 4: %+v", len(m.segs), m.segs)
	}
	last := m.segs[3]
	if !last.fromInitiator || last.payload != "GET /" || last.seq != tcpISN+1 || last.flags != ACK|PSH || last.orig.DstPort != 80 {
		t.Errorf("last segment as the module saw it: %+v", last)
	}
	if m.segs[1].fromInitiator || m.segs[1].flags != SYN|ACK {
		t.Errorf("the server's SYN-ACK as the module saw it: %+v", m.segs[1])
	}
	// Not in the class: port 443.
	l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40001, 443, SYN, ""))
	if len(m.segs) != 4 {
		t.Errorf("a connection outside the class reached the module")
	}
	m.verdict = ModuleDetected
	nothing(t, l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, ACK|PSH, "evil")))
	m.verdict = ModuleFailClose
	nothing(t, l.in(ifOutside, l.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, ACK|PSH, "x")))
	d := l.drops()
	if d["ips-request"] != 1 || d["ips-fail-close"] != 1 {
		t.Errorf("drops: %v", d)
	}
}

// TestModuleMarksReplicatedConns: a standby that applies a diverted
// connection's record diverts it too, so that after a takeover its module
// meets the flow (mid-stream) instead of it bypassing inspection.
func TestModuleMarksReplicatedConns(t *testing.T) {
	a := resolvedLab(t, labConfig())
	a.fw.AttachModule(&fakeModule{}, port80)
	// The whole handshake: a connection is replicated from SYN_RCVD on.
	a.send(segment{true, SYN, ""})
	a.send(segment{false, SYN | ACK, ""})
	a.send(segment{true, ACK, ""})
	b := newLab(t, labConfig())
	m := &fakeModule{}
	b.fw.AttachModule(m, port80)
	bulk(t, a.fw, b.fw)
	var diverted int
	for i := range b.fw.conns.shards {
		for c := range b.fw.conns.shards[i].idx.owned() {
			if c.diverted() {
				diverted++
			}
		}
	}
	if diverted != 1 {
		t.Errorf("standby diverts %d conns, want 1", diverted)
	}
}
