package firewall

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/falab/falab/firewall/header"
	"github.com/google/go-cmp/cmp"
)

// syn sends a SYN from h's port sport to the server and reports whether it
// was forwarded.
func (l *lab) syn(h host, sport uint16) bool {
	return len(l.in(ifInside, l.tcpFrame(h.mac, fwInsideMAC, h.ip, server.ip, sport, 443, SYN, ""))[ifOutside]) == 1
}

// handshake completes the handshake of client's flow from sport, whose
// port PAT kept.
func (l *lab) handshake(h host, sport uint16) {
	l.in(ifOutside, l.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 443, sport, SYN|ACK, ""))
	l.in(ifInside, l.tcpFrame(h.mac, fwInsideMAC, h.ip, server.ip, sport, 443, ACK, ""))
}

func TestEmbryonicPerClientLimit(t *testing.T) {
	cfg := labConfig()
	cfg.Limits.EmbryonicPerClient = 3
	l := resolvedLab(t, cfg)
	for p := uint16(5000); p < 5003; p++ {
		if !l.syn(client, p) {
			t.Fatalf("SYN from port %d dropped within the limit: %v", p, l.drops())
		}
	}
	if l.syn(client, 5003) {
		t.Fatalf("a fourth half-open connection of client was forwarded")
	}
	if !l.syn(client2, 5003) {
		t.Errorf("client2's SYN dropped while only client is at its limit")
	}
	want := EmbryonicCounts{Total: 4, Max: 65536, PerClientMax: 3,
		Clients: map[netip.Addr]int{netip.AddrFrom4(client.ip): 3, netip.AddrFrom4(client2.ip): 1}}
	if d := cmp.Diff(want, l.fw.EmbryonicCounts(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("EmbryonicCounts (-want +got):\n%s", d)
	}
	// A completed handshake is no longer half-open and makes room.
	l.handshake(client, 5000)
	if !l.syn(client, 5003) {
		t.Errorf("SYN dropped after one of client's connections was established: %v", l.drops())
	}
	if d := cmp.Diff(map[string]uint64{"embryonic-limit": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	// Half-open connections idle out after the embryonic timeout.
	l.clk.Advance(l.fw.timeouts.Embryonic + 1)
	for range numConnShards/sweepShardsPerCall + 1 {
		l.fw.Maintain()
	}
	if got := l.fw.EmbryonicCounts(); got.Total != 0 || len(got.Clients) != 0 {
		t.Errorf("after the embryonic timeout: %+v, want none", got)
	}
	if l.fw.ConnCount() != 1 {
		t.Errorf("%d conns after the embryonic timeout, want the established one", l.fw.ConnCount())
	}
}

func TestEmbryonicMax(t *testing.T) {
	cfg := labConfig()
	cfg.Limits.EmbryonicMax = 2
	l := resolvedLab(t, cfg)
	if !l.syn(client, 5000) || !l.syn(client2, 5000) {
		t.Fatalf("SYNs dropped within the limit: %v", l.drops())
	}
	if l.syn(staticHost, 5000) {
		t.Errorf("a third half-open connection was forwarded with EmbryonicMax 2")
	}
	// UDP is not limited.
	if l.udpOut(staticHost, 5000) == "" {
		t.Errorf("a UDP flow was dropped by the TCP embryonic limit")
	}
	if d := cmp.Diff(map[string]uint64{"embryonic-limit": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

// TestEmbryonicCountsFollowReplication checks that a standby counts the
// half-open connections it holds, so that the limits apply from takeover:
// a SYN_RCVD one (answered by the server) is replicated and counted, a
// SYN_SENT one is not replicated at all (see conn).
func TestEmbryonicCountsFollowReplication(t *testing.T) {
	cfg := labConfig()
	cfg.Limits.EmbryonicPerClient = 3
	a := resolvedLab(t, cfg)
	b := resolvedLab(t, cfg)
	a.changes = nil
	a.syn(client, 5000)
	a.syn(client, 5001)
	a.syn(client, 5002)
	a.handshake(client, 5000)
	a.in(ifOutside, a.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 443, 5001, SYN|ACK, ""))
	if got := a.fw.EmbryonicCounts().Total; got != 2 {
		t.Errorf("active counts %d half-open connections, want 2", got)
	}
	for _, c := range a.changes {
		if err := b.fw.ApplyChange(c); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.fw.EmbryonicCounts().Total; got != 1 {
		t.Errorf("standby counts %d half-open connections, want 1", got)
	}
}

// TestSYNFloodMemoryBounded floods 200k SYNs from random inside sources
// and ports (which pass any anti-spoofing check): the connection and xlate
// tables stay within the embryonic limit, and another host's established
// connection keeps forwarding.
func TestSYNFloodMemoryBounded(t *testing.T) {
	const limit = 2000
	cfg := labConfig()
	cfg.Limits.EmbryonicMax = limit
	l := resolvedLab(t, cfg)
	l.send(segment{true, SYN, ""})
	l.send(segment{false, SYN | ACK, ""})
	l.send(segment{true, ACK, ""})

	rng := rand.New(rand.NewPCG(1, 2))
	tmpl := tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 1, 443, SYN, "")
	frame := make([]byte, len(tmpl))
	for range 200_000 {
		copy(frame, tmpl)
		ip := header.IPv4(frame[header.EthernetLen:])
		tc := header.TCP(ip[header.IPv4MinimumSize:])
		src := [4]byte{198, 18, 1, byte(3 + rng.IntN(250))}
		ip.SetSourceAddressWithChecksumUpdate(src)
		tc.UpdateChecksumForAddress(client.ip, src)
		tc.SetSourcePortWithChecksumUpdate(uint16(1 + rng.IntN(65535)))
		l.fw.HandleFrame(ifInside, frame)
		if n := l.fw.ConnCount(); n > limit+1 {
			t.Fatalf("%d connections during the flood, want at most %d", n, limit+1)
		}
	}
	for _, p := range l.ports {
		p.Take()
	}
	if n := l.fw.XlateCount(); n > limit+2 {
		t.Errorf("%d xlates after the flood, want at most %d", n, limit+2)
	}
	if got := l.fw.Drops()[DropEmbryonicLimit]; got < 190_000 {
		t.Errorf("only %d SYNs dropped by the embryonic limit", got)
	}
	out := l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, ACK|PSH, "data"))
	if p := decode(t, only(t, out, ifOutside, 1)[0]); p.Payload != "data" {
		t.Errorf("established flow after the flood: %+v", p)
	}
	out = l.in(ifOutside, l.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, ACK|PSH, "back"))
	only(t, out, ifInside, 1)
}
