package firewall

import (
	"testing"

	"github.com/falab/falab/firewall/header"
	"github.com/google/go-cmp/cmp"
)

// icmpErrorFrame builds an ICMP error from src quoting the first 28 bytes
// of the IPv4 packet in quotedFrame.
func icmpErrorFrame(ethSrc, ethDst [6]byte, src, dst [4]byte, typ, code uint8, quotedFrame []byte) []byte {
	q := quotedFrame[header.EthernetLen:][:28]
	l4 := make([]byte, header.ICMPv4MinimumSize+len(q))
	ic := header.ICMPv4(l4)
	ic.SetType(typ)
	ic.SetCode(code)
	copy(ic.Payload(), q)
	return ipFrame(ethSrc, ethDst, header.ProtocolICMP, src, dst, 64, l4)
}

// quotedSummary describes the packet an ICMP error quotes.
func quotedSummary(t *testing.T, frame []byte) (string, string) {
	t.Helper()
	ic := header.ICMPv4(header.IPv4(frame[header.EthernetLen:]).Payload())
	in := header.IPv4(ic.Payload())
	if !in.ChecksumValid() {
		t.Errorf("quoted IPv4 header checksum does not verify")
	}
	l4 := in[in.HeaderLength():]
	sp := uint16(l4[0])<<8 | uint16(l4[1])
	dp := uint16(l4[2])<<8 | uint16(l4[3])
	return ap(in.SourceAddress(), sp), ap(in.DestinationAddress(), dp)
}

func TestRelatedICMPErrors(t *testing.T) {
	tests := []struct {
		name       string
		dst        [4]byte // where the client's datagram goes
		errFrom    host
		errSrc     [4]byte
		typ        uint8
		wantOuter  string // source of the error as the client sees it
		wantQuoted [2]string
	}{
		{"port unreachable from the server", server.ip, server, server.ip, header.ICMPv4DstUnreachable,
			ap(server.ip, 0), [2]string{ap(client.ip, 5000), ap(server.ip, 53)}},
		{"time exceeded from the router", farServer, router, router.ip, header.ICMPv4TimeExceeded,
			ap(router.ip, 0), [2]string{ap(client.ip, 5000), ap(farServer, 53)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := resolvedLab(t, labConfig())
			out := l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, tt.dst, 5000, 53, "q"))
			sent := only(t, out, ifOutside, 1)[0]
			errFrame := icmpErrorFrame(tt.errFrom.mac, fwOutsideMAC, tt.errSrc, outsideIP, tt.typ, 3, sent)
			out = l.in(ifOutside, errFrame)
			fr := only(t, out, ifInside, 1)[0]
			p := decode(t, fr)
			want := pkt{EthSrc: macStr(fwInsideMAC[:]), EthDst: macStr(client.mac[:]), Type: "icmp",
				Src: tt.wantOuter, Dst: ap(client.ip, 0), TTL: 63, Flags: tt.typ}
			if d := cmp.Diff(want, p); d != "" {
				t.Errorf("error (-want +got):\n%s", d)
			}
			qs, qd := quotedSummary(t, fr)
			if d := cmp.Diff(tt.wantQuoted, [2]string{qs, qd}); d != "" {
				t.Errorf("quoted packet (-want +got):\n%s", d)
			}
		})
	}
	t.Run("unrelated error", func(t *testing.T) {
		l := resolvedLab(t, labConfig())
		stray := udpFrame(client.mac, fwInsideMAC, outsideIP, server.ip, 7777, 53, "q")
		nothing(t, l.in(ifOutside, icmpErrorFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 3, 3, stray)))
		if d := cmp.Diff(map[string]uint64{"no-connection": 1}, l.drops()); d != "" {
			t.Errorf("drops (-want +got):\n%s", d)
		}
	})
}
