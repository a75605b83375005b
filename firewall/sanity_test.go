package firewall

import (
	"testing"

	"github.com/falab/falab/firewall/header"
	"github.com/google/go-cmp/cmp"
)

// withOptions returns frame with opts (a multiple of 4 bytes) inserted as
// IPv4 options; the L4 checksum does not cover them.
func withOptions(frame []byte, opts []byte) []byte {
	out := make([]byte, 0, len(frame)+len(opts))
	out = append(out, frame[:header.EthernetLen+header.IPv4MinimumSize]...)
	out = append(out, opts...)
	out = append(out, frame[header.EthernetLen+header.IPv4MinimumSize:]...)
	ip := header.IPv4(out[header.EthernetLen:])
	ip.SetVersionAndHeaderLength(header.IPv4MinimumSize + len(opts))
	ip.SetTotalLength(uint16(len(ip)))
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
	return out
}

func TestIngressSanityDrops(t *testing.T) {
	udpIn := func(src, dst [4]byte) []byte { return udpFrame(client.mac, fwInsideMAC, src, dst, 5000, 53, "x") }
	udpOut := func(src, dst [4]byte) []byte { return udpFrame(server.mac, fwOutsideMAC, src, dst, 53, 5000, "x") }
	tests := []struct {
		name  string
		ifIdx int
		frame []byte
		want  string
	}{
		{"source 0/8", ifInside, udpIn([4]byte{0, 1, 2, 3}, server.ip), "martian-source"},
		{"source 0.0.0.0", ifInside, udpIn([4]byte{}, server.ip), "martian-source"},
		{"source loopback", ifOutside, udpOut([4]byte{127, 0, 0, 1}, staticMapped), "martian-source"},
		{"source multicast", ifOutside, udpOut([4]byte{224, 0, 0, 5}, staticMapped), "martian-source"},
		{"source 240/4", ifOutside, udpOut([4]byte{240, 0, 0, 1}, staticMapped), "martian-source"},
		{"source limited broadcast", ifOutside, udpOut([4]byte{255, 255, 255, 255}, staticMapped), "martian-source"},
		{"source directed broadcast", ifOutside, udpOut([4]byte{198, 19, 2, 255}, staticMapped), "martian-source"},
		{"source another subnet's broadcast", ifInside, udpIn([4]byte{198, 18, 3, 255}, server.ip), "rpf-violated"},
		{"source our address", ifOutside, udpOut(outsideIP, staticMapped), "martian-source"},
		{"source our standby address", ifInside, udpIn(insideStandby, server.ip), "martian-source"},
		{"source our mapped address", ifOutside, udpOut(staticMapped, outsideIP), "martian-source"},
		{"destination 0/8", ifInside, udpIn(client.ip, [4]byte{0, 0, 0, 9}), "martian-destination"},
		{"destination loopback", ifInside, udpIn(client.ip, [4]byte{127, 0, 0, 1}), "martian-destination"},
		{"destination 240/4", ifInside, udpIn(client.ip, [4]byte{250, 1, 1, 1}), "martian-destination"},
		{"destination multicast", ifInside, udpIn(client.ip, [4]byte{239, 1, 1, 1}), "martian-destination"},
		{"destination directed broadcast", ifInside, udpIn(client.ip, [4]byte{198, 19, 2, 255}), "martian-destination"},
		{"destination network address", ifInside, udpIn(client.ip, [4]byte{198, 18, 3, 0}), "martian-destination"},
		{"land", ifOutside, udpOut(server.ip, server.ip), "land-attack"},
		{"source behind another interface", ifInside, udpIn(server.ip, dmzHost.ip), "rpf-violated"},
		{"source with no route", ifInside, udpIn([4]byte{10, 9, 9, 9}, dmzHost.ip), "rpf-violated"},
		{"source far network on the wrong side", ifDMZ,
			udpFrame(dmzHost.mac, fwDMZMAC, farServer, client.ip, 53, 5000, "x"), "rpf-violated"},
		{"record route option", ifInside, withOptions(udpIn(client.ip, server.ip), []byte{7, 7, 4, 0, 0, 0, 0, 0}), "ip-options"},
		{"timestamp option", ifInside, withOptions(udpIn(client.ip, server.ip), []byte{68, 4, 5, 0}), "ip-options"},
		{"loose source route", ifInside, withOptions(udpIn(client.ip, server.ip), []byte{131, 7, 4, 1, 2, 3, 4, 0}), "ip-options"},
		{"router alert then record route", ifInside,
			withOptions(udpIn(client.ip, server.ip), []byte{148, 4, 0, 0, 7, 3, 4, 0}), "ip-options"},
		{"option length past the header", ifInside, withOptions(udpIn(client.ip, server.ip), []byte{7, 9, 4, 0}), "bad-ip-header"},
		{"option length below 2", ifInside, withOptions(udpIn(client.ip, server.ip), []byte{7, 1, 0, 0}), "bad-ip-header"},
		{"option cut short", ifInside, withOptions(udpIn(client.ip, server.ip), []byte{1, 1, 1, 7}), "bad-ip-header"},
		{"router alert of the wrong length", ifInside, withOptions(udpIn(client.ip, server.ip), []byte{148, 3, 0, 0}), "bad-ip-header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := resolvedLab(t, labConfig())
			nothing(t, l.in(tt.ifIdx, tt.frame))
			if d := cmp.Diff(map[string]uint64{tt.want: 1}, l.drops()); d != "" {
				t.Errorf("drops (-want +got):\n%s", d)
			}
			if l.fw.ConnCount() != 0 || len(l.changes) != 0 {
				t.Errorf("state changed: %d conns, %d changes", l.fw.ConnCount(), len(l.changes))
			}
		})
	}
}

func TestIngressSanityPasses(t *testing.T) {
	udpIn := func() []byte { return udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 5000, 53, "x") }
	for _, tt := range []struct {
		name  string
		frame []byte
	}{
		{"no options", udpIn()},
		{"router alert", withOptions(udpIn(), []byte{148, 4, 0, 0})},
		{"nops", withOptions(udpIn(), []byte{1, 1, 1, 1})},
		{"end of list and padding", withOptions(udpIn(), []byte{0, 7, 7, 7})},
		{"nop, router alert, end", withOptions(udpIn(), []byte{1, 148, 4, 0, 0, 0, 0, 0})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := resolvedLab(t, labConfig())
			only(t, l.in(ifInside, tt.frame), ifOutside, 1)
			if len(l.drops()) != 0 {
				t.Errorf("drops %v", l.drops())
			}
		})
	}
	// Return traffic from behind the router passes the reverse-path check.
	l := resolvedLab(t, labConfig())
	out := l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, farServer, 5000, 53, "q"))
	only(t, out, ifOutside, 1)
	out = l.in(ifOutside, udpFrame(router.mac, fwOutsideMAC, farServer, outsideIP, 53, 5000, "a"))
	only(t, out, ifInside, 1)
}

func TestIngressSanityKnobs(t *testing.T) {
	cfg := labConfig()
	cfg.DisableReversePathCheck = true
	l := resolvedLab(t, cfg)
	// A source routed out of another interface is let in.
	only(t, l.in(ifInside, udpFrame(client.mac, fwInsideMAC, farServer, dmzHost.ip, 5000, 53, "x")), ifDMZ, 1)
	if len(l.drops()) != 0 {
		t.Errorf("drops %v", l.drops())
	}
	// Martians are still dropped, the unit's addresses of any interface included...
	nothing(t, l.in(ifInside, udpFrame(client.mac, fwInsideMAC, [4]byte{127, 0, 0, 1}, dmzHost.ip, 5000, 53, "x")))
	nothing(t, l.in(ifDMZ, udpFrame(dmzHost.mac, fwDMZMAC, insideIP, client.ip, 5000, 53, "x")))
	nothing(t, l.in(ifDMZ, udpFrame(dmzHost.mac, fwDMZMAC, staticMapped, client.ip, 5000, 53, "x")))
	if d := cmp.Diff(map[string]uint64{"martian-source": 3}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	// ...unless their check is off too.
	cfg.DisableMartianCheck = true
	l = resolvedLab(t, cfg)
	only(t, l.in(ifInside, udpFrame(client.mac, fwInsideMAC, [4]byte{127, 0, 0, 1}, dmzHost.ip, 5000, 53, "x")), ifDMZ, 1)
}

func TestICMPRedirectNeverForwarded(t *testing.T) {
	l := resolvedLab(t, labConfig())
	out := l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, farServer, 5000, 53, "q"))
	sent := only(t, out, ifOutside, 1)[0]
	// The same quote as a time-exceeded error would be forwarded (see
	// TestRelatedICMPErrors); as a redirect it is not.
	redirect := icmpErrorFrame(router.mac, fwOutsideMAC, router.ip, outsideIP, icmpRedirect, 1, sent)
	nothing(t, l.in(ifOutside, redirect))
	if d := cmp.Diff(map[string]uint64{"icmp-redirect": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

func TestBridgedSanity(t *testing.T) {
	ipTo := func(src, dst [4]byte) []byte { return udpFrame(stA.mac, stB.mac, src, dst, 5000, 53, "x") }
	for _, tt := range []struct {
		name  string
		frame []byte
		want  string // "" passes
	}{
		{"source loopback", ipTo([4]byte{127, 0, 0, 1}, stB.ip), "martian-source"},
		{"source multicast", ipTo([4]byte{224, 0, 0, 1}, stB.ip), "martian-source"},
		{"source zero to a host", ipTo([4]byte{}, stB.ip), "martian-source"},
		{"source the management address", ipTo(mgmtIP, stB.ip), "martian-source"},
		{"destination 240/4", ipTo(stA.ip, [4]byte{240, 0, 0, 1}), "martian-destination"},
		{"land", ipTo(stA.ip, stA.ip), "land-attack"},
		{"record route", withOptions(ipTo(stA.ip, stB.ip), []byte{7, 3, 4, 0}), "ip-options"},
		{"redirect", udpFrameAsRedirect(stA, stB), "icmp-redirect"},
		{"plain", ipTo(stA.ip, stB.ip), ""},
		{"router alert", withOptions(ipTo(stA.ip, stB.ip), []byte{148, 4, 0, 0}), ""},
		{"DHCP discover", udpFrame(stA.mac, broadcastMAC, [4]byte{}, [4]byte{255, 255, 255, 255}, 68, 67, "x"), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := bridgeLab(t, transparentConfig())
			out := l.in(ifInside, tt.frame)
			want := map[string]uint64{}
			if tt.want != "" {
				want[tt.want] = 1
				nothing(t, out)
			} else if n := len(out[ifOutside]); n != 1 {
				t.Errorf("%d frames on outside, want 1 (drops %v)", n, l.drops())
			}
			if d := cmp.Diff(want, l.drops()); d != "" {
				t.Errorf("drops (-want +got):\n%s", d)
			}
		})
	}
}

// udpFrameAsRedirect is an ICMP redirect from a to b quoting a datagram.
func udpFrameAsRedirect(a, b host) []byte {
	q := udpFrame(b.mac, a.mac, b.ip, [4]byte{198, 18, 9, 9}, 5000, 53, "q")
	return icmpErrorFrame(a.mac, b.mac, a.ip, b.ip, icmpRedirect, 1, q)
}
