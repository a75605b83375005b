package firewall

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/google/go-cmp/cmp"
)

// fakeBox is an in-memory TUN: what the data plane writes is kept in
// got; what a test puts in send is what Read returns.
type fakeBox struct {
	mu     sync.Mutex
	got    [][]byte
	send   chan []byte
	closed chan struct{}
	once   sync.Once
}

func newFakeBox() *fakeBox {
	return &fakeBox{send: make(chan []byte, 16), closed: make(chan struct{})}
}

func (b *fakeBox) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, append([]byte(nil), p...))
	return len(p), nil
}

func (b *fakeBox) Read(p []byte) (int, error) {
	select {
	case pkt := <-b.send:
		return copy(p, pkt), nil
	case <-b.closed:
		return 0, io.EOF
	}
}

func (b *fakeBox) Close() error { b.once.Do(func() { close(b.closed) }); return nil }

// take returns the packets delivered to the box, decoded.
func (b *fakeBox) take(t *testing.T) []pkt {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []pkt
	for _, ip := range b.got {
		fr := make([]byte, header.EthernetLen+len(ip))
		header.Ethernet(fr).SetEtherType(header.EtherTypeIPv4)
		copy(fr[header.EthernetLen:], ip)
		p := decode(t, fr)
		p.EthSrc, p.EthDst = "", ""
		out = append(out, p)
	}
	b.got = nil
	return out
}

// fromBox runs one packet the kernel wrote to the box through the data
// plane, as the box reader does, and returns what the ports sent.
func (l *lab) fromBox(ipPacket []byte) [][][]byte {
	f := l.fw
	w := f.workers.Get().(*worker)
	w.now = f.now()
	b := f.getBuf()
	n := copy(b.data[header.EthernetLen:], ipPacket)
	if r := w.fromBox(b, header.EthernetLen+n); r != dropNone {
		f.drops[r].Add(1)
	}
	w.flush()
	f.workers.Put(w)
	return l.take()
}

// TestBoxDelivery: with a box attached, the management policy decides what
// reaches the unit's own stack: ping, IKE and the listener ports, on the
// unit's current address only; the rest is to-self; nothing is forwarded.
func TestBoxDelivery(t *testing.T) {
	l := resolvedLab(t, labConfig())
	box := newFakeBox()
	if err := l.fw.AttachBox(box, []uint16{1080}); err != nil {
		t.Fatal(err)
	}
	nothing(t, l.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, insideIP, header.ICMPv4Echo, 9, 1)))
	nothing(t, l.in(ifOutside, udpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 500, 500, "ike")))
	nothing(t, l.in(ifOutside, udpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 4500, 4500, "\x00\x00\x00\x00ike")))
	nothing(t, l.in(ifInside, tcpFrame(client.mac, fwInsideMAC, client.ip, insideIP, 40000, 1080, SYN, "")))
	// Refused by the policy: another UDP port, another TCP port.
	nothing(t, l.in(ifOutside, udpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 53, 53, "dns")))
	nothing(t, l.in(ifInside, tcpFrame(client.mac, fwInsideMAC, client.ip, insideIP, 40000, 22, SYN, "")))
	// The far interface's address is not reachable across the unit.
	nothing(t, l.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, outsideIP, header.ICMPv4Echo, 9, 2)))
	want := []pkt{
		{Type: "icmp", Src: ap(client.ip, 9), Dst: ap(insideIP, 0), TTL: 64, Flags: header.ICMPv4Echo},
		{Type: "udp", Src: ap(server.ip, 500), Dst: ap(outsideIP, 500), TTL: 64, Payload: "ike"},
		{Type: "udp", Src: ap(server.ip, 4500), Dst: ap(outsideIP, 4500), TTL: 64, Payload: "\x00\x00\x00\x00ike"},
		{Type: "tcp", Src: ap(client.ip, 40000), Dst: ap(insideIP, 1080), TTL: 64, Flags: SYN},
	}
	if d := cmp.Diff(want, box.take(t)); d != "" {
		t.Errorf("delivered to the box (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]uint64{"to-self": 3}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	if l.fw.ConnCount() != 0 {
		t.Errorf("%d connections made for traffic to the unit", l.fw.ConnCount())
	}
}

// TestBoxStandbyAddresses: a standby delivers only packets for its standby
// address, and sends from the box only from its standby addresses.
func TestBoxStandbyAddresses(t *testing.T) {
	l := resolvedLab(t, labConfig())
	box := newFakeBox()
	if err := l.fw.AttachBox(box, nil); err != nil {
		t.Fatal(err)
	}
	l.fw.SetActive(false)
	nothing(t, l.in(ifInside, icmpFrame(client.mac, fwInsideSbMAC, client.ip, insideStandby, header.ICMPv4Echo, 9, 1)))
	nothing(t, l.in(ifInside, icmpFrame(client.mac, fwInsideSbMAC, client.ip, insideIP, header.ICMPv4Echo, 9, 2)))
	if got := box.take(t); len(got) != 1 || got[0].Dst != ap(insideStandby, 0) {
		t.Errorf("standby delivered %+v, want only the ping to its standby address", got)
	}
	reply := icmpFrame(zeroMAC, zeroMAC, insideStandby, client.ip, header.ICMPv4EchoReply, 9, 1)[header.EthernetLen:]
	sent := only(t, l.fromBox(reply), ifInside, 1)
	if d := cmp.Diff(pkt{EthSrc: macStr(fwInsideSbMAC[:]), EthDst: macStr(client.mac[:]), Type: "icmp",
		Src: ap(insideStandby, 9), Dst: ap(client.ip, 0), TTL: 64, Flags: header.ICMPv4EchoReply}, decode(t, sent[0])); d != "" {
		t.Errorf("standby's reply (-want +got):\n%s", d)
	}
	// The active address is not the standby's to speak from.
	nothing(t, l.fromBox(icmpFrame(zeroMAC, zeroMAC, insideIP, client.ip, header.ICMPv4EchoReply, 9, 1)[header.EthernetLen:]))
	if d := cmp.Diff(map[string]uint64{"not-active": 1, "martian-source": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	if got := l.fw.BoxAddresses(false); len(got) != 3 || got[0].Addr.As4() != insideStandby || got[1].Subnet.String() != "198.19.2.0/24" {
		t.Errorf("standby box addresses %+v", got)
	}
}

// TestBoxSendsByRouteAndARP: what the kernel writes to the box leaves by
// the firewall's route (a static route's next hop), from the active MAC,
// without a connection or NAT; unresolved next hops are ARPed for.
func TestBoxSendsByRouteAndARP(t *testing.T) {
	l := resolvedLab(t, labConfig())
	if err := l.fw.AttachBox(newFakeBox(), nil); err != nil {
		t.Fatal(err)
	}
	ike := udpFrame(zeroMAC, zeroMAC, outsideIP, farServer, 500, 500, "resp")[header.EthernetLen:]
	sent := only(t, l.fromBox(ike), ifOutside, 1)
	if d := cmp.Diff(pkt{EthSrc: macStr(fwOutsideMAC[:]), EthDst: macStr(router.mac[:]), Type: "udp",
		Src: ap(outsideIP, 500), Dst: ap(farServer, 500), TTL: 64, Payload: "resp"}, decode(t, sent[0])); d != "" {
		t.Errorf("sent (-want +got):\n%s", d)
	}
	unknown := [4]byte{198, 19, 2, 77}
	arp := only(t, l.fromBox(udpFrame(zeroMAC, zeroMAC, outsideIP, unknown, 500, 500, "x")[header.EthernetLen:]), ifOutside, 1)
	if p := decode(t, arp[0]); p.Type != "arp" || p.Dst != ap(unknown, 0) {
		t.Errorf("want an ARP request for the unknown next hop, got %+v", p)
	}
	if l.fw.ConnCount() != 0 {
		t.Errorf("box traffic made %d connections", l.fw.ConnCount())
	}
	// A frozen active (lease lapsed) sends nothing from the box.
	l.fw.RenewLease(l.clk.Now().Add(-time.Second).UnixNano())
	nothing(t, l.fromBox(ike))
	if d := cmp.Diff(map[string]uint64{"failover-lease-expired": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

// TestBoxLoopRun: Run reads the box until it stops, and closes it.
func TestBoxLoopRun(t *testing.T) {
	l := newLab(t, labConfig())
	box := newFakeBox()
	if err := l.fw.AttachBox(box, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.fw.Run(ctx) }()
	box.send <- udpFrame(zeroMAC, zeroMAC, outsideIP, server.ip, 500, 500, "x")[header.EthernetLen:]
	for _, tx := l.fw.BoxStats(); tx == 0; _, tx = l.fw.BoxStats() {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case <-box.closed:
	default:
		t.Error("Run did not close the box")
	}
}
