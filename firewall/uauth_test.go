package firewall

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
)

// fakeAuth authorizes the sources in ok.
type fakeAuth struct {
	mu sync.Mutex
	ok map[netip.Addr]bool
}

func (a *fakeAuth) Authorized(src netip.Addr, _ time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ok[src]
}

// fakeStack keeps what is delivered to the unit's stack, as frames for
// decode.
type fakeStack struct{ got [][]byte }

func (s *fakeStack) Deliver(ip []byte) error {
	frame := make([]byte, header.EthernetLen+len(ip))
	header.Ethernet(frame).SetEtherType(header.EtherTypeIPv4)
	copy(frame[header.EthernetLen:], ip)
	s.got = append(s.got, frame)
	return nil
}

var webClass = []ACE{{Permit: true, Protocol: "tcp", DstPortLow: 80}}

// TestUAuthSteersUntilAuthorized: the first connection of an
// unauthenticated source to a port the class matches is steered to the
// listener on the inside address without translating its source (and its
// later segments follow), the listener's answers leave with the server's
// address and port as source; once the source is authorized, its new
// connection is an ordinary one. Other ports are never steered.
func TestUAuthSteersUntilAuthorized(t *testing.T) {
	l := resolvedLab(t, labConfig())
	auth, stack := &fakeAuth{ok: map[netip.Addr]bool{}}, &fakeStack{}
	if !l.fw.AttachUAuth(auth, stack, "inside", webClass, 1080) {
		t.Fatal("AttachUAuth refused")
	}
	nothing(t, l.send(segment{true, SYN, ""}))
	nothing(t, l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, ACK|PSH, "GET / HTTP/1.1")))
	if len(stack.got) != 2 || l.fw.ConnCount() != 0 || l.fw.SteeredCount() != 1 {
		t.Fatalf("delivered %d, conns %d, steered %d", len(stack.got), l.fw.ConnCount(), l.fw.SteeredCount())
	}
	for _, f := range stack.got {
		p := decode(t, f) // checksums verified
		if p.Src != ap(client.ip, 40000) || p.Dst != ap(insideIP, 1080) {
			t.Errorf("steered segment %s -> %s", p.Src, p.Dst)
		}
	}
	// The listener answers: unit inside address:1080 -> client.
	reply := tcpFrame(fwInsideMAC, client.mac, insideIP, client.ip, 1080, 40000, SYN|ACK, "")
	ip := header.IPv4(reply[header.EthernetLen:])
	if !l.fw.Unsteer(ip, 0) {
		t.Fatal("the listener's answer was not recognised")
	}
	if p := decode(t, reply); p.Src != ap(server.ip, 80) || p.Dst != ap(client.ip, 40000) {
		t.Errorf("unsteered answer %s -> %s", p.Src, p.Dst)
	}
	// Port 443 is outside the class: an ordinary connection.
	l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40001, 443, SYN, ""))
	if l.fw.ConnCount() != 1 || len(stack.got) != 2 {
		t.Errorf("port 443: conns %d, delivered %d", l.fw.ConnCount(), len(stack.got))
	}
	// Authorized now: a new connection to port 80 passes.
	auth.ok[netip.AddrFrom4(client.ip)] = true
	only(t, l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40002, 80, SYN, "")), ifOutside, 1)
	if l.fw.ConnCount() != 2 || len(stack.got) != 2 {
		t.Errorf("authorized: conns %d, delivered %d", l.fw.ConnCount(), len(stack.got))
	}
	// A stray answer from the listener port to a flow never steered is not touched.
	stray := tcpFrame(fwInsideMAC, client2.mac, insideIP, client2.ip, 1080, 555, ACK, "")
	if l.fw.Unsteer(header.IPv4(stray[header.EthernetLen:]), 0) {
		t.Error("a stray packet was unsteered")
	}
	l.fw.expireSteered(int64(time.Hour))
	if l.fw.SteeredCount() != 0 {
		t.Errorf("idle steered flows kept: %d", l.fw.SteeredCount())
	}
}

// TestUAuthThroughBox: with the box as the listener's stack (BoxStack), a
// steered SYN is written to the box with the listener as destination, and
// the kernel's answer from the box leaves on the inside with the server's
// address and port as source (fromBox unsteers after checking that the
// unit itself sent it); an answer to a client never steered keeps the
// unit's address.
func TestUAuthThroughBox(t *testing.T) {
	l := resolvedLab(t, labConfig())
	box := newFakeBox()
	if err := l.fw.AttachBox(box, nil); err != nil {
		t.Fatal(err)
	}
	if !l.fw.AttachUAuth(&fakeAuth{ok: map[netip.Addr]bool{}}, l.fw.BoxStack(), "inside", webClass, 1080) {
		t.Fatal("AttachUAuth refused")
	}
	nothing(t, l.send(segment{true, SYN, ""}))
	if got := box.take(t); len(got) != 1 || got[0].Src != ap(client.ip, 40000) || got[0].Dst != ap(insideIP, 1080) {
		t.Fatalf("delivered to the box %+v, want the SYN to the listener", got)
	}
	synAck := tcpFrame(zeroMAC, zeroMAC, insideIP, client.ip, 1080, 40000, SYN|ACK, "")[header.EthernetLen:]
	sent := only(t, l.fromBox(synAck), ifInside, 1)
	if p := decode(t, sent[0]); p.Src != ap(server.ip, 80) || p.Dst != ap(client.ip, 40000) {
		t.Errorf("the listener's answer left as %s -> %s, want from the server", p.Src, p.Dst)
	}
	other := tcpFrame(zeroMAC, zeroMAC, insideIP, client2.ip, 1080, 555, ACK, "")[header.EthernetLen:]
	sent = only(t, l.fromBox(other), ifInside, 1)
	if p := decode(t, sent[0]); p.Src != ap(insideIP, 1080) {
		t.Errorf("an unsteered answer left from %s", p.Src)
	}
	if toBox, fromBox := l.fw.BoxStats(); toBox != 1 || fromBox != 2 {
		t.Errorf("box stats to %d from %d, want 1 and 2", toBox, fromBox)
	}
}

// TestUAuthClosedFlowsGoSoon: a steered flow both ends closed with a FIN
// leaves the table steerClosed after its last segment, not steerIdle (a
// burst of logins would otherwise hold maxSteered entries for 30 s); one
// closed by the client alone (half-closed) stays until steerIdle.
func TestUAuthClosedFlowsGoSoon(t *testing.T) {
	l := resolvedLab(t, labConfig())
	if !l.fw.AttachUAuth(&fakeAuth{ok: map[netip.Addr]bool{}}, &fakeStack{}, "inside", webClass, 1080) {
		t.Fatal("AttachUAuth refused")
	}
	open := func(port uint16) {
		l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, port, 80, SYN, ""))
	}
	clientFIN := func(port uint16) {
		l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, port, 80, FIN|ACK, ""))
	}
	listenerFIN := func(port uint16) {
		f := tcpFrame(fwInsideMAC, client.mac, insideIP, client.ip, 1080, port, FIN|ACK, "")
		if !l.fw.Unsteer(header.IPv4(f[header.EthernetLen:]), 0) {
			t.Fatalf("port %d: the listener's FIN was not unsteered", port)
		}
	}
	open(40000) // closed by both ends
	listenerFIN(40000)
	clientFIN(40000)
	open(40001) // the client's FIN only
	clientFIN(40001)
	if n := l.fw.SteeredCount(); n != 2 {
		t.Fatalf("steered %d, want 2", n)
	}
	now := l.clk.Now().UnixNano()
	l.fw.expireSteered(now + int64(steerClosed) + 1)
	if n := l.fw.SteeredCount(); n != 1 {
		t.Errorf("after %v: steered %d, want 1 (the half-closed flow)", steerClosed, n)
	}
	l.fw.expireSteered(now + int64(steerIdle) + 1)
	if n := l.fw.SteeredCount(); n != 0 {
		t.Errorf("after %v: steered %d, want 0", steerIdle, n)
	}
}
