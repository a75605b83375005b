package firewall

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/falab/falab/esp"
	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/firewall/memport"
	"github.com/falab/falab/fwconfig"
	"github.com/google/go-cmp/cmp"
)

// vpnConfig: labConfig with a crypto map on outside: peer router, inside
// 198.18.1.0/24 protected towards 198.19.100.0/24 (routed via router).
func vpnConfig() Config {
	c := labConfig()
	c.CryptoMaps = []fwconfig.CryptoMap{{Name: "outside_map", Seq: 10, Interface: "outside", Peer: addr("198.19.2.254"),
		PreSharedKey: "k", IKEv2Policies: []fwconfig.IKEv2Policy{{Encryption: "aes-gcm-256", Group: 19}}, IPsecProposal: []string{"aes-gcm"},
		MatchAddress: []fwconfig.CryptoACE{{Source: pfx("198.18.1.0/24"), Destination: pfx("198.19.100.0/24")}}}}
	return c
}

var (
	keyIn   = bytes.Repeat([]byte{1}, 16)
	keyOut  = bytes.Repeat([]byte{2}, 16)
	saltIn  = []byte{9, 9, 9, 1}
	saltOut = []byte{9, 9, 9, 2}
)

// peerSA is the router's side of the tunnel: it encrypts with our inbound
// SA's keys and decrypts with our outbound's.
type peerSA struct {
	out *esp.Outbound
	in  *esp.Inbound
}

func vpnLab(t *testing.T) (*lab, *peerSA) {
	l := resolvedLab(t, vpnConfig())
	sa := IPsecSA{Interface: "outside", Peer: netip.AddrPortFrom(addr("198.19.2.254"), 4500), InSPI: 0x1000, OutSPI: 0x2000,
		InKey: keyIn, InSalt: saltIn, OutKey: keyOut, OutSalt: saltOut,
		LocalTS:  []AddrRange{{addr("198.18.1.0"), addr("198.18.1.255")}},
		RemoteTS: []AddrRange{{addr("198.19.100.0"), addr("198.19.100.255")}}}
	if err := l.fw.InstallIPsecSA(sa); err != nil {
		t.Fatal(err)
	}
	l.fw.GrantIPsecLease(0x1000, 100)
	out, err := esp.NewOutbound(0x1000, keyIn, saltIn, 1)
	if err != nil {
		t.Fatal(err)
	}
	out.Grant(1000)
	in, err := esp.NewInbound(0x2000, keyOut, saltOut, 64)
	if err != nil {
		t.Fatal(err)
	}
	return l, &peerSA{out: out, in: in}
}

// espFrame is the router's ESP-in-UDP datagram to the unit carrying inner
// (an Ethernet frame whose IPv4 packet is taken).
func (p *peerSA) espFrame(t *testing.T, inner []byte) []byte {
	pkt, err := p.out.Encap(nil, inner[header.EthernetLen:])
	if err != nil {
		t.Fatal(err)
	}
	return udpFrame(router.mac, fwOutsideMAC, router.ip, outsideIP, 4500, 4500, string(pkt))
}

// open decrypts an ESP frame the unit sent, returning the inner packet
// decoded and the sequence number on the wire.
func (p *peerSA) open(t *testing.T, frame []byte) (pkt, uint32) {
	t.Helper()
	d := decode(t, frame)
	if d.Type != "udp" || d.Src != ap(outsideIP, 4500) || d.Dst != ap(router.ip, 4500) || d.EthDst != macStr(router.mac[:]) {
		t.Fatalf("not ESP to the peer: %+v", d)
	}
	payload := []byte(d.Payload)
	inner, err := p.in.Decap(nil, payload)
	if err != nil {
		t.Fatalf("peer cannot decrypt: %v", err)
	}
	fr := make([]byte, header.EthernetLen+len(inner))
	header.Ethernet(fr).SetEtherType(header.EtherTypeIPv4)
	copy(fr[header.EthernetLen:], inner)
	ip := decode(t, fr)
	ip.EthSrc, ip.EthDst = "", ""
	return ip, binary.BigEndian.Uint32(payload[4:])
}

// TestIPsecBothWays: a ping from inside to the protected network goes out
// encrypted and without NAT; the peer's encrypted reply is decrypted,
// matched to the connection and forwarded to the client.
func TestIPsecBothWays(t *testing.T) {
	l, peer := vpnLab(t)
	req := only(t, l.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, farServer, header.ICMPv4Echo, 7, 1)), ifOutside, 1)
	got, seq := peer.open(t, req[0])
	if d := cmp.Diff(pkt{Type: "icmp", Src: ap(client.ip, 7), Dst: ap(farServer, 0), TTL: 63, Flags: header.ICMPv4Echo}, got); d != "" {
		t.Errorf("inner of the first ESP (-want +got):\n%s", d)
	}
	if seq != 1 {
		t.Errorf("first sequence number %d, want 1", seq)
	}
	reply := icmpFrame(zeroMAC, zeroMAC, farServer, client.ip, header.ICMPv4EchoReply, 7, 1)
	out := only(t, l.in(ifOutside, peer.espFrame(t, reply)), ifInside, 1)
	if d := cmp.Diff(pkt{EthSrc: macStr(fwInsideMAC[:]), EthDst: macStr(client.mac[:]), Type: "icmp", Src: ap(farServer, 7), Dst: ap(client.ip, 0),
		TTL: 63, Flags: header.ICMPv4EchoReply}, decode(t, out[0])); d != "" {
		t.Errorf("decrypted reply forwarded (-want +got):\n%s", d)
	}
	info := l.fw.IPsecSAs()
	if len(info) != 1 || info[0].Encaps != 1 || info[0].Decaps != 1 || info[0].NextSeq != 2 || info[0].ReplayTop != 1 {
		t.Errorf("SA counters %+v", info)
	}
	if len(l.drops()) != 0 {
		t.Errorf("drops %v", l.drops())
	}
}

// TestIPsecRefusals: replayed, tampered, unknown-SPI and out-of-selector
// ESP is dropped by reason and changes nothing; IKE on 4500 is not ESP;
// protected traffic without a lease or without an SA is not sent in clear.
func TestIPsecRefusals(t *testing.T) {
	l, peer := vpnLab(t)
	only(t, l.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, farServer, header.ICMPv4Echo, 8, 1)), ifOutside, 1)
	ping := func() []byte { return icmpFrame(zeroMAC, zeroMAC, farServer, client.ip, header.ICMPv4EchoReply, 8, 1) }
	first := peer.espFrame(t, ping())
	replay := append([]byte(nil), first...)
	only(t, l.in(ifOutside, first), ifInside, 1)
	nothing(t, l.in(ifOutside, replay))
	tampered := peer.espFrame(t, ping())
	tampered[len(tampered)-1] ^= 1
	nothing(t, l.in(ifOutside, tampered))
	unknown := peer.espFrame(t, ping())
	binary.BigEndian.PutUint32(unknown[header.EthernetLen+header.IPv4MinimumSize+header.UDPMinimumSize:], 0x9999)
	fixUDP(unknown)
	nothing(t, l.in(ifOutside, unknown))
	// Authentic, but the inner source is not the peer's network.
	nothing(t, l.in(ifOutside, peer.espFrame(t, icmpFrame(zeroMAC, zeroMAC, server.ip, client.ip, header.ICMPv4Echo, 8, 2))))
	// IKE (non-ESP marker) is for the unit's own stack (no box here: to-self).
	nothing(t, l.in(ifOutside, udpFrame(router.mac, fwOutsideMAC, router.ip, outsideIP, 4500, 4500, "\x00\x00\x00\x00ike")))
	want := map[string]uint64{"ipsec-replay": 1, "ipsec-auth-failed": 1, "ipsec-spi-unknown": 1, "ipsec-selector-mismatch": 1, "to-self": 1}
	if d := cmp.Diff(want, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	if info := l.fw.IPsecSAs(); info[0].Decaps != 1 || info[0].ReplayTop != 4 {
		// Sequence 4 (the selector mismatch) verified, so it moved the window (RFC 4303 3.4.3); 2 (tampered) did not.
		t.Errorf("after refusals: %+v", info[0])
	}

	// Lease: 100 granted in vpnLab, so sequence numbers 1..99.
	l2, _ := vpnLab(t)
	l2.fw.GrantIPsecLease(0x1000, 3)
	for i := range 2 {
		only(t, l2.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, farServer, header.ICMPv4Echo, 9, uint16(i))), ifOutside, 1)
	}
	l3 := resolvedLab(t, vpnConfig())
	nothing(t, l3.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, farServer, header.ICMPv4Echo, 9, 1)))
	if d := cmp.Diff(map[string]uint64{"ipsec-spi-unknown": 1}, l3.drops()); d != "" {
		t.Errorf("protected traffic without an SA (-want +got):\n%s", d)
	}
}

// TestIPsecLeaseExhausted: past the granted limit nothing is sent.
func TestIPsecLeaseExhausted(t *testing.T) {
	l := resolvedLab(t, vpnConfig())
	sa := IPsecSA{Interface: "outside", Peer: netip.AddrPortFrom(addr("198.19.2.254"), 4500), InSPI: 0x1000, OutSPI: 0x2000,
		InKey: keyIn, InSalt: saltIn, OutKey: keyOut, OutSalt: saltOut, NextSeq: 500,
		LocalTS:  []AddrRange{{addr("198.18.1.0"), addr("198.18.1.255")}},
		RemoteTS: []AddrRange{{addr("198.19.100.0"), addr("198.19.100.255")}}}
	if err := l.fw.InstallIPsecSA(sa); err != nil {
		t.Fatal(err)
	}
	nothing(t, l.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, farServer, header.ICMPv4Echo, 9, 1)))
	l.fw.GrantIPsecLease(0x1000, 502)
	in, _ := esp.NewInbound(0x2000, keyOut, saltOut, 64)
	peer := &peerSA{in: in}
	for i := range 3 {
		out := l.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, farServer, header.ICMPv4Echo, 9, uint16(2+i)))
		if i == 2 {
			nothing(t, out)
			continue
		}
		if _, seq := peer.open(t, only(t, out, ifOutside, 1)[0]); seq != uint32(500+i) {
			t.Errorf("sequence %d, want %d (a takeover starts at the leased limit)", seq, 500+i)
		}
	}
	if d := cmp.Diff(map[string]uint64{"ipsec-seq-lease-exhausted": 2}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

// fixUDP recomputes the UDP checksum of an IPv4 frame after an edit.
func fixUDP(frame []byte) {
	ip := header.IPv4(frame[header.EthernetLen:])
	u := header.UDP(ip.Payload())
	u.SetChecksum(0)
	u.SetChecksum(u.CalculateChecksum(ip.SourceAddress(), ip.DestinationAddress()))
}

// TestIPsecPathAllocatesNothing: an established flow through the tunnel,
// encapsulated one way and decapsulated in place the other, allocates
// nothing per packet.
func TestIPsecPathAllocatesNothing(t *testing.T) {
	l, peer := vpnLab(t)
	l.fw.GrantIPsecLease(0x1000, 1<<20)
	only(t, l.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, farServer, header.ICMPv4Echo, 7, 1)), ifOutside, 1)
	for _, it := range l.fw.ifs {
		it.port = memport.NewDiscard()
	}
	const n = 500
	replies := make([][]byte, n+1)
	for i := range replies {
		replies[i] = peer.espFrame(t, icmpFrame(zeroMAC, zeroMAC, farServer, client.ip, header.ICMPv4EchoReply, 7, 1))
	}
	out := icmpFrame(client.mac, fwInsideMAC, client.ip, farServer, header.ICMPv4Echo, 7, 1)
	frame := make([]byte, 2048)
	i := 0
	allocs := testing.AllocsPerRun(n, func() {
		f := frame[:len(out)]
		copy(f, out)
		l.fw.HandleFrame(ifInside, f)
		f = frame[:len(replies[i])]
		copy(f, replies[i])
		l.fw.HandleFrame(ifOutside, f)
		i++
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("%v allocations per round trip through the tunnel, want 0", allocs)
	}
	if s := l.fw.IPsecSAs()[0]; s.Encaps < n || s.Decaps < n {
		t.Errorf("encaps %d decaps %d: the tunnel was not exercised (drops %v)", s.Encaps, s.Decaps, l.fw.Drops())
	}
}

// TestIPsecReplayWindowTakeover: an SA installed with the window the old
// active synced (top and bitmap) refuses, as a replay, a packet the old
// active had received inside the window, and accepts one inside the
// window that the old active never saw (a top alone would refuse it) and
// one above the top.
func TestIPsecReplayWindowTakeover(t *testing.T) {
	l, peer := vpnLab(t)
	only(t, l.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, farServer, header.ICMPv4Echo, 7, 1)), ifOutside, 1)
	var frames [][]byte // frames[i] carries sequence number i+1
	for range 11 {
		frames = append(frames, peer.espFrame(t, icmpFrame(zeroMAC, zeroMAC, farServer, client.ip, header.ICMPv4EchoReply, 7, 1)))
	}
	in := func(l *lab, seq int) [][][]byte { return l.in(ifOutside, append([]byte(nil), frames[seq-1]...)) }
	for seq := 1; seq <= 10; seq++ {
		if seq != 4 {
			only(t, in(l, seq), ifInside, 1)
		}
	}
	top, words, ok := l.fw.IPsecReplayWindow(0x1000, nil)
	if !ok || top != 10 {
		t.Fatalf("replay window of the old active: top %d ok %v", top, ok)
	}

	l2 := resolvedLab(t, vpnConfig())
	sa := l.fw.ipsec.Load().byIn[0x1000].cfg
	sa.NextSeq, sa.ReplayTop, sa.ReplayBitmap = 100, top, words
	if err := l2.fw.InstallIPsecSA(sa); err != nil {
		t.Fatal(err)
	}
	l2.fw.GrantIPsecLease(0x1000, 200)
	only(t, l2.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, farServer, header.ICMPv4Echo, 7, 1)), ifOutside, 1)
	nothing(t, in(l2, 3))            // received before the failover: a replay
	only(t, in(l2, 4), ifInside, 1)  // never received, inside the window
	nothing(t, in(l2, 4))            // and now received
	only(t, in(l2, 11), ifInside, 1) // above the top
	if d := cmp.Diff(map[string]uint64{"ipsec-replay": 2}, l2.drops()); d != "" {
		t.Errorf("drops on the new active (-want +got):\n%s", d)
	}
}

// TestIPsecFragmentedESP: an ESP datagram the peer sent in outer IP
// fragments (out of order) is reassembled and decrypted once whole, its
// inner packet forwarded; fragments of a datagram too large for a frame
// buffer are dropped by reason, each one.
func TestIPsecFragmentedESP(t *testing.T) {
	l, peer := vpnLab(t)
	only(t, l.in(ifInside, bigEcho(client.mac, fwInsideMAC, client.ip, farServer, header.ICMPv4Echo, 7, 1400)), ifOutside, 1)
	reply := bigEcho(zeroMAC, zeroMAC, farServer, client.ip, header.ICMPv4EchoReply, 7, 1400)
	frags := fragmentsOf(t, withoutDF(peer.espFrame(t, reply)), 576)
	if len(frags) != 3 {
		t.Fatalf("%d fragments, want 3", len(frags))
	}
	nothing(t, l.in(ifOutside, frags[2]))
	nothing(t, l.in(ifOutside, frags[0]))
	out := only(t, l.in(ifOutside, frags[1]), ifInside, 1)
	if got := decode(t, out[0]); got.Type != "icmp" || got.Src != ap(farServer, 7) || got.Dst != ap(client.ip, 0) || len(out[0]) != header.EthernetLen+1400 {
		t.Errorf("decrypted reply: %+v (%d bytes)", got, len(out[0]))
	}
	if s := l.fw.IPsecSAs()[0]; s.Decaps != 1 || s.AuthDrops != 0 {
		t.Errorf("SA after the fragmented ESP: %+v", s)
	}
	if len(l.drops()) != 0 {
		t.Errorf("drops %v", l.drops())
	}

	huge := withoutDF(udpFrame(router.mac, fwOutsideMAC, router.ip, outsideIP, 4500, 4500, pattern(MaxFrameSize)))
	frags = fragmentsOf(t, huge, 1500)
	for _, fr := range frags {
		nothing(t, l.in(ifOutside, fr))
	}
	if d := cmp.Diff(map[string]uint64{"ipsec-fragments-too-large": uint64(len(frags))}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}
