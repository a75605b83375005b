package firewall

import (
	"testing"

	"github.com/falab/falab/firewall/header"
	"github.com/google/go-cmp/cmp"
)

const (
	SYN = header.TCPFlagSYN
	ACK = header.TCPFlagACK
	FIN = header.TCPFlagFIN
	RST = header.TCPFlagRST
	PSH = header.TCPFlagPSH
)

// resolvedLab is a lab whose firewall knows every host's MAC.
func resolvedLab(t testing.TB, cfg Config) *lab {
	l := newLab(t, cfg)
	l.neighbour(ifInside, client)
	l.neighbour(ifInside, client2)
	l.neighbour(ifInside, staticHost)
	l.neighbour(ifOutside, server)
	l.neighbour(ifOutside, router)
	l.neighbour(ifDMZ, dmzHost)
	l.changes = nil
	return l
}

func TestPATTCPBothWays(t *testing.T) {
	l := resolvedLab(t, labConfig())
	// Outbound SYN: source becomes the outside interface address; the real
	// port is kept because it is free.
	out := l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, SYN, ""))
	got := decode(t, only(t, out, ifOutside, 1)[0])
	want := pkt{EthSrc: macStr(fwOutsideMAC[:]), EthDst: macStr(server.mac[:]), Type: "tcp",
		Src: ap(outsideIP, 40000), Dst: ap(server.ip, 80), TTL: 63, Flags: SYN}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("outbound SYN (-want +got):\n%s", d)
	}
	// The reply comes back to the mapped address and is untranslated.
	out = l.in(ifOutside, l.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, SYN|ACK, ""))
	got = decode(t, only(t, out, ifInside, 1)[0])
	want = pkt{EthSrc: macStr(fwInsideMAC[:]), EthDst: macStr(client.mac[:]), Type: "tcp",
		Src: ap(server.ip, 80), Dst: ap(client.ip, 40000), TTL: 63, Flags: SYN | ACK}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("inbound SYN-ACK (-want +got):\n%s", d)
	}
	l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, ACK, ""))
	out = l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, ACK|PSH, "GET / HTTP/1.0\r\n\r\n"))
	if p := decode(t, only(t, out, ifOutside, 1)[0]); p.Payload != "GET / HTTP/1.0\r\n\r\n" {
		t.Errorf("payload = %q", p.Payload)
	}
	conns, total := l.fw.Conns(0, 10)
	if total != 1 || len(conns) != 1 {
		t.Fatalf("Conns = %d (total %d), want 1", len(conns), total)
	}
	c := conns[0]
	c.Age, c.Idle = 0, 0
	wantConn := ConnInfo{Protocol: "tcp", InInterface: "inside", OutInterface: "outside",
		OrigSrc: "198.18.1.10:40000", OrigDst: "198.19.2.20:80", ReplySrc: "198.19.2.20:80", ReplyDst: "198.19.2.1:40000",
		State: "ESTABLISHED", HTTP: true, Packets: 4, Bytes: 40*3 + 40 + 18}
	if d := cmp.Diff(wantConn, c); d != "" {
		t.Errorf("conn (-want +got):\n%s", d)
	}
	xl, _ := l.fw.Xlates(0, 10)
	var kinds []string
	for _, x := range xl {
		kinds = append(kinds, x.Kind+" "+x.Real.String()+" "+x.Mapped.String())
	}
	wantX := []string{"static 198.18.1.50:0 198.19.2.50:0", "pat 198.18.1.10:40000 198.19.2.1:40000"}
	if d := cmp.Diff(wantX, kinds); d != "" {
		t.Errorf("xlates (-want +got):\n%s", d)
	}
}

func TestPATPortCollisionAndICMPIdent(t *testing.T) {
	cfg := labConfig()
	l := resolvedLab(t, cfg)
	// Two clients with the same source port: the second gets another port.
	l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 5353, 53, "q1"))
	out := l.in(ifInside, udpFrame(client2.mac, fwInsideMAC, client2.ip, server.ip, 5353, 53, "q2"))
	p := decode(t, only(t, out, ifOutside, 1)[0])
	if p.Src != ap(outsideIP, 1024) {
		t.Fatalf("second client mapped to %s, want %s", p.Src, ap(outsideIP, 1024))
	}
	out = l.in(ifOutside, udpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 53, 1024, "a2"))
	if p := decode(t, only(t, out, ifInside, 1)[0]); p.Dst != ap(client2.ip, 5353) || p.Payload != "a2" {
		t.Fatalf("reply to second client: %+v", p)
	}
	// ICMP echo: identifier is the "port" that PAT translates.
	l.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, server.ip, header.ICMPv4Echo, 1024, 1))
	out = l.in(ifInside, icmpFrame(client2.mac, fwInsideMAC, client2.ip, server.ip, header.ICMPv4Echo, 1024, 1))
	p = decode(t, only(t, out, ifOutside, 1)[0])
	if p.Src != ap(outsideIP, 1025) {
		t.Fatalf("second echo ident mapped to %s, want %s", p.Src, ap(outsideIP, 1025))
	}
	out = l.in(ifOutside, icmpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, header.ICMPv4EchoReply, 1025, 1))
	if p := decode(t, only(t, out, ifInside, 1)[0]); p.Dst != ap(client2.ip, 0) || p.Src != ap(server.ip, 1024) || p.Flags != header.ICMPv4EchoReply {
		t.Fatalf("echo reply to second client: %+v", p)
	}
}

func TestPATExhaustion(t *testing.T) {
	cfg := labConfig()
	cfg.NAT[1].PortLow, cfg.NAT[1].PortHigh = 2000, 2001
	l := resolvedLab(t, cfg)
	for i, want := range []int{1, 1, 0} {
		out := l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 6000+uint16(i), 53, "q"))
		only(t, out, ifOutside, want)
	}
	if d := cmp.Diff(map[string]uint64{"nat-exhausted": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

func TestStaticNAT(t *testing.T) {
	cfg := labConfig()
	cfg.AccessLists = map[string][]ACE{"outside_in": {
		// ACLs name the real address (ASA 8.3+), not the mapped one.
		{Permit: true, Protocol: "tcp", Destination: pfx("198.18.1.50/32"), DstPortLow: 22},
	}}
	cfg.AccessGroups = []AccessGroup{{AccessList: "outside_in", Interface: "outside"}}
	l := resolvedLab(t, cfg)

	// Outbound from the static host: source becomes the mapped address, port kept.
	out := l.in(ifInside, l.tcpFrame(staticHost.mac, fwInsideMAC, staticHost.ip, server.ip, 33000, 443, SYN, ""))
	if p := decode(t, only(t, out, ifOutside, 1)[0]); p.Src != ap(staticMapped, 33000) {
		t.Fatalf("outbound static: %+v", p)
	}
	// Inbound to the mapped address, permitted by the ACL on the real address.
	out = l.in(ifOutside, l.tcpFrame(server.mac, fwOutsideMAC, server.ip, staticMapped, 50000, 22, SYN, ""))
	p := decode(t, only(t, out, ifInside, 1)[0])
	want := pkt{EthSrc: macStr(fwInsideMAC[:]), EthDst: macStr(staticHost.mac[:]), Type: "tcp",
		Src: ap(server.ip, 50000), Dst: ap(staticHost.ip, 22), TTL: 63, Flags: SYN}
	if d := cmp.Diff(want, p); d != "" {
		t.Fatalf("inbound static (-want +got):\n%s", d)
	}
	out = l.in(ifInside, l.tcpFrame(staticHost.mac, fwInsideMAC, staticHost.ip, server.ip, 22, 50000, SYN|ACK, ""))
	if p := decode(t, only(t, out, ifOutside, 1)[0]); p.Src != ap(staticMapped, 22) || p.Dst != ap(server.ip, 50000) {
		t.Fatalf("return of inbound static: %+v", p)
	}
	// Port 23 is not in the ACL: implicit deny.
	nothing(t, l.in(ifOutside, l.tcpFrame(server.mac, fwOutsideMAC, server.ip, staticMapped, 50001, 23, SYN, "")))
	if d := cmp.Diff(map[string]uint64{"acl-deny": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

func TestPolicy(t *testing.T) {
	tests := []struct {
		name      string
		acls      map[string][]ACE
		groups    []AccessGroup
		nat       []NATRule // added to the lab's rules
		in        int
		frame     []byte
		wantOutIf int // -1: dropped
		wantDrop  string
	}{
		{name: "higher to lower", in: ifInside, wantOutIf: ifOutside,
			frame: tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 1000, 80, SYN, "")},
		{name: "higher to middle", in: ifInside, wantOutIf: ifDMZ,
			frame: tcpFrame(client.mac, fwInsideMAC, client.ip, dmzHost.ip, 1000, 80, SYN, "")},
		{name: "lower to higher without ACL", in: ifOutside, wantOutIf: -1, wantDrop: "security-level",
			frame: tcpFrame(server.mac, fwOutsideMAC, server.ip, dmzHost.ip, 1000, 80, SYN, "")},
		{name: "lower to higher permitted", in: ifOutside, wantOutIf: ifDMZ,
			acls:   map[string][]ACE{"o": {{Permit: true, Protocol: "tcp", Destination: pfx("198.18.3.30/32"), DstPortLow: 80}}},
			groups: []AccessGroup{{AccessList: "o", Interface: "outside"}},
			frame:  tcpFrame(server.mac, fwOutsideMAC, server.ip, dmzHost.ip, 1000, 80, SYN, "")},
		{name: "explicit deny first", in: ifOutside, wantOutIf: -1, wantDrop: "acl-deny",
			acls: map[string][]ACE{"o": {
				{Permit: false, Protocol: "ip", Source: pfx("198.19.2.20/32")},
				{Permit: true, Protocol: "ip"}}},
			groups: []AccessGroup{{AccessList: "o", Interface: "outside"}},
			frame:  tcpFrame(server.mac, fwOutsideMAC, server.ip, dmzHost.ip, 1000, 80, SYN, "")},
		{name: "ACL replaces the implicit permit", in: ifInside, wantOutIf: -1, wantDrop: "acl-deny",
			acls:   map[string][]ACE{"i": {{Permit: true, Protocol: "tcp"}}},
			groups: []AccessGroup{{AccessList: "i", Interface: "inside"}},
			frame:  udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 1000, 53, "")},
		{name: "ACL matches the real source before PAT", in: ifInside, wantOutIf: ifOutside,
			acls:   map[string][]ACE{"i": {{Permit: true, Protocol: "udp", Source: pfx("198.18.1.10/32"), Destination: pfx("198.19.2.20/32"), DstPortLow: 53}}},
			groups: []AccessGroup{{AccessList: "i", Interface: "inside"}},
			frame:  udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 1000, 53, "")},
		{name: "middle to lower", in: ifDMZ, wantOutIf: ifOutside,
			frame: udpFrame(dmzHost.mac, fwDMZMAC, dmzHost.ip, server.ip, 1000, 53, "")},
		{name: "no route", in: ifInside, wantOutIf: ifInside, wantDrop: "no-route", // ICMP unreachable goes back
			frame: udpFrame(client.mac, fwInsideMAC, client.ip, [4]byte{198, 18, 200, 5}, 1000, 53, "")},
		{name: "bare ACK from outside", in: ifOutside, wantOutIf: -1, wantDrop: "no-connection",
			frame: tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, ACK, "")},
		{name: "bare RST from outside", in: ifOutside, wantOutIf: -1, wantDrop: "no-connection",
			frame: tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, RST, "")},
		{name: "bare FIN-ACK from outside", in: ifOutside, wantOutIf: -1, wantDrop: "no-connection",
			frame: tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, FIN|ACK, "")},
		{name: "SYN-FIN", in: ifInside, wantOutIf: -1, wantDrop: "invalid-tcp-flags",
			frame: tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 1000, 80, SYN|FIN, "")},
		{name: "null scan", in: ifInside, wantOutIf: -1, wantDrop: "invalid-tcp-flags",
			frame: tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 1000, 80, 0, "")},
		{name: "udp to a PAT pool address without a conn", in: ifOutside, wantOutIf: -1, wantDrop: "no-connection",
			nat:   []NATRule{{Kind: NATDynamicPAT, RealInterface: "dmz", Real: pfx("198.18.3.0/24"), MappedInterface: "outside", Mapped: addr("198.19.2.60")}},
			frame: udpFrame(server.mac, fwOutsideMAC, server.ip, [4]byte{198, 19, 2, 60}, 53, 1000, "")},
		{name: "echo reply without request", in: ifOutside, wantOutIf: -1, wantDrop: "no-connection",
			frame: icmpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, header.ICMPv4EchoReply, 9, 1)},
		{name: "to another unit address", in: ifInside, wantOutIf: -1, wantDrop: "to-self",
			frame: icmpFrame(client.mac, fwInsideMAC, client.ip, outsideIP, header.ICMPv4Echo, 9, 1)},
		{name: "frame for another MAC", in: ifInside, wantOutIf: -1, wantDrop: "l2-not-for-us",
			frame: udpFrame(client.mac, client2.mac, client.ip, server.ip, 1000, 53, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := labConfig()
			cfg.AccessLists, cfg.AccessGroups = tt.acls, tt.groups
			cfg.NAT = append(cfg.NAT, tt.nat...)
			l := resolvedLab(t, cfg)
			out := l.in(tt.in, tt.frame)
			if tt.wantOutIf >= 0 {
				only(t, out, tt.wantOutIf, 1)
			} else {
				nothing(t, out)
			}
			want := map[string]uint64{}
			if tt.wantDrop != "" {
				want[tt.wantDrop] = 1
			}
			if d := cmp.Diff(want, l.drops()); d != "" {
				t.Errorf("drops (-want +got):\n%s", d)
			}
		})
	}
}

func TestRoutingAndTTL(t *testing.T) {
	l := resolvedLab(t, labConfig())
	// Behind the router: next hop is the router's MAC, TTL decremented.
	out := l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, farServer, 1000, 53, "x"))
	p := decode(t, only(t, out, ifOutside, 1)[0])
	want := pkt{EthSrc: macStr(fwOutsideMAC[:]), EthDst: macStr(router.mac[:]), Type: "udp",
		Src: ap(outsideIP, 1024), Dst: ap(farServer, 53), TTL: 63, Payload: "x"}
	if d := cmp.Diff(want, p); d != "" {
		t.Fatalf("routed packet (-want +got):\n%s", d)
	}
	// TTL 1: dropped, time-exceeded from the ingress interface quoting the packet.
	out = l.in(ifInside, withTTL(udpFrame(client.mac, fwInsideMAC, client.ip, farServer, 1001, 53, "x"), 1))
	fr := only(t, out, ifInside, 1)[0]
	p = decode(t, fr)
	want = pkt{EthSrc: macStr(fwInsideMAC[:]), EthDst: macStr(client.mac[:]), Type: "icmp",
		Src: ap(insideIP, 0), Dst: ap(client.ip, 0), TTL: 64, Flags: header.ICMPv4TimeExceeded}
	if d := cmp.Diff(want, p); d != "" {
		t.Fatalf("time exceeded (-want +got):\n%s", d)
	}
	quoted := header.IPv4(header.ICMPv4(header.IPv4(fr[header.EthernetLen:]).Payload()).Payload())
	if quoted.SourceAddress() != client.ip || quoted.DestinationAddress() != farServer || len(quoted) != 28 {
		t.Errorf("quoted packet %v -> %v, %d bytes", quoted.SourceAddress(), quoted.DestinationAddress(), len(quoted))
	}
	// Ping to the ingress interface is answered.
	out = l.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, insideIP, header.ICMPv4Echo, 77, 1))
	p = decode(t, only(t, out, ifInside, 1)[0])
	want = pkt{EthSrc: macStr(fwInsideMAC[:]), EthDst: macStr(client.mac[:]), Type: "icmp",
		Src: ap(insideIP, 77), Dst: ap(client.ip, 0), TTL: 64, Flags: header.ICMPv4EchoReply}
	if d := cmp.Diff(want, p); d != "" {
		t.Fatalf("echo reply (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]uint64{"ttl-expired": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

func TestICMPErrorRateLimit(t *testing.T) {
	l := resolvedLab(t, labConfig())
	sent := 0
	for i := range 30 {
		out := l.in(ifInside, withTTL(udpFrame(client.mac, fwInsideMAC, client.ip, farServer, 2000+uint16(i), 53, ""), 1))
		sent += len(out[ifInside])
	}
	if sent != icmpErrorsPerSecond {
		t.Errorf("sent %d ICMP errors in one instant, want %d", sent, icmpErrorsPerSecond)
	}
}

func TestMalformedCountedAsDrops(t *testing.T) {
	good := udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 1000, 53, "x")
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"runt", good[:10], "truncated"},
		{"ip truncated", good[:30], "truncated"},
		{"ip version 6", mut(func(b []byte) []byte { b[14] = 0x65; return b }), "bad-ip-header"},
		{"bad ip checksum", mut(func(b []byte) []byte { b[24] ^= 0xff; return b }), "bad-ip-checksum"},
		{"udp length beyond packet", mut(func(b []byte) []byte { b[38] = 0xff; return b }), "bad-l4-header"},
		{"fragment past 65535 bytes", mut(func(b []byte) []byte {
			ip := header.IPv4(b[14:])
			ip.SetFlagsFragmentOffset(0x1fff)
			ip.SetChecksum(0)
			ip.SetChecksum(ip.CalculateChecksum())
			return b
		}), "invalid-fragment"},
		{"ipv6 ethertype", mut(func(b []byte) []byte { b[12], b[13] = 0x86, 0xdd; return b }), "unsupported-ethertype"},
		{"gre", ipFrame(client.mac, fwInsideMAC, 47, client.ip, server.ip, 64, make([]byte, 8)), "unsupported-protocol"},
		{"arp for ipv6", mut(func(b []byte) []byte {
			return arpFrame(header.ARPRequest, broadcastMAC, client.mac, client.ip, zeroMAC, insideIP)[:30]
		}), "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := resolvedLab(t, labConfig())
			nothing(t, l.in(ifInside, tt.frame))
			if d := cmp.Diff(map[string]uint64{tt.want: 1}, l.drops()); d != "" {
				t.Errorf("drops (-want +got):\n%s", d)
			}
			if got := l.fw.InterfaceStats()[ifInside].Drops; got != 1 {
				t.Errorf("inside interface drops = %d, want 1", got)
			}
		})
	}
}
