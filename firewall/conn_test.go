package firewall

import (
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/google/go-cmp/cmp"
)

// sweepAll runs Maintain until every shard has been swept once.
func (l *lab) sweepAll() {
	for range numConnShards/sweepShardsPerCall + 1 {
		l.fw.Maintain()
	}
}

func (l *lab) connStates() []string {
	cs, _ := l.fw.Conns(0, 100)
	var out []string
	for _, c := range cs {
		out = append(out, c.Protocol+" "+c.OrigSrc+" "+c.State)
	}
	return out
}

// segment is one TCP segment of a scripted exchange between client and
// server through PAT.
type segment struct {
	fromClient bool
	flags      uint8
	wantState  string // connection state after the segment; "" = gone
}

func (l *lab) send(s segment) [][][]byte {
	if s.fromClient {
		return l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, s.flags, ""))
	}
	return l.in(ifOutside, l.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, s.flags, ""))
}

func TestTCPLifecycle(t *testing.T) {
	handshake := []segment{{true, SYN, "SYN_SENT"}, {false, SYN | ACK, "SYN_RCVD"}, {true, ACK, "ESTABLISHED"}}
	tests := []struct {
		name string
		segs []segment
	}{
		{"client closes", append(handshake[:3:3],
			segment{true, FIN | ACK, "FIN_WAIT"}, segment{false, ACK, "FIN_WAIT"},
			segment{false, FIN | ACK, "CLOSING"}, segment{true, ACK, "TIME_WAIT"})},
		{"server closes", append(handshake[:3:3],
			segment{false, FIN | ACK, "FIN_WAIT"}, segment{true, FIN | ACK, "CLOSING"}, segment{false, ACK, "TIME_WAIT"})},
		{"client resets", append(handshake[:3:3], segment{true, RST | ACK, ""})},
		{"server refuses", []segment{{true, SYN, "SYN_SENT"}, {false, RST | ACK, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := resolvedLab(t, labConfig())
			for i, s := range tt.segs {
				out := l.send(s)
				dst := ifOutside
				if !s.fromClient {
					dst = ifInside
				}
				only(t, out, dst, 1) // every segment, the closing ones included, is forwarded
				var want []string
				if s.wantState != "" {
					want = []string{"tcp 198.18.1.10:40000 " + s.wantState}
				}
				if d := cmp.Diff(want, l.connStates()); d != "" {
					t.Fatalf("after segment %d (%#x): (-want +got):\n%s", i, s.flags, d)
				}
			}
			// TIME_WAIT ends by expiry, not by a packet.
			if len(l.connStates()) != 0 {
				l.clk.Advance(31 * time.Second)
				l.sweepAll()
			}
			// Once closed, a late ACK from outside is a no-connection drop.
			nothing(t, l.send(segment{false, ACK, ""}))
			if d := cmp.Diff(map[string]uint64{"no-connection": 1}, l.drops()); d != "" {
				t.Errorf("drops (-want +got):\n%s", d)
			}
			// The PAT xlate outlives its last connection by PATXlate.
			if _, n := l.fw.Xlates(0, 0); n != 2 {
				t.Errorf("xlates = %d, want 2 (static + idle PAT)", n)
			}
			l.clk.Advance(31 * time.Second)
			l.sweepAll()
			if _, n := l.fw.Xlates(0, 0); n != 1 {
				t.Errorf("xlates after PAT timeout = %d, want 1", n)
			}
		})
	}
}

func TestIdleTimeouts(t *testing.T) {
	tests := []struct {
		name  string
		open  func(l *lab)
		limit time.Duration
	}{
		{"embryonic", func(l *lab) { l.send(segment{true, SYN, ""}) }, 30 * time.Second},
		{"established", func(l *lab) {
			l.send(segment{true, SYN, ""})
			l.send(segment{false, SYN | ACK, ""})
			l.send(segment{true, ACK, ""})
		}, time.Hour},
		{"half-closed", func(l *lab) {
			l.send(segment{true, SYN, ""})
			l.send(segment{false, SYN | ACK, ""})
			l.send(segment{true, ACK, ""})
			l.send(segment{true, FIN | ACK, ""})
		}, 10 * time.Minute},
		{"udp", func(l *lab) {
			l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 5000, 53, "q"))
		}, 2 * time.Minute},
		{"icmp", func(l *lab) {
			l.in(ifInside, icmpFrame(client.mac, fwInsideMAC, client.ip, server.ip, header.ICMPv4Echo, 1, 1))
		}, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := resolvedLab(t, labConfig())
			tt.open(l)
			l.clk.Advance(tt.limit)
			l.sweepAll()
			if n := l.fw.ConnCount(); n != 1 {
				t.Fatalf("conn gone at exactly its timeout: %d conns", n)
			}
			l.clk.Advance(time.Millisecond)
			l.sweepAll()
			if n := l.fw.ConnCount(); n != 0 {
				t.Fatalf("conn alive after its timeout: %v", l.connStates())
			}
		})
	}
}

func TestTrafficKeepsConnAlive(t *testing.T) {
	l := resolvedLab(t, labConfig())
	l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 5000, 53, "q"))
	for range 5 {
		l.clk.Advance(time.Minute)
		l.sweepAll()
		only(t, l.in(ifOutside, udpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 53, 5000, "a")), ifInside, 1)
	}
}

func TestExpiredConnNotUsedBeforeSweep(t *testing.T) {
	l := resolvedLab(t, labConfig())
	l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 5000, 53, "q"))
	l.clk.Advance(3 * time.Minute)
	// No sweep yet: the lookup itself notices the expiry.
	nothing(t, l.in(ifOutside, udpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 53, 5000, "a")))
}

func TestStandbyNeverForwards(t *testing.T) {
	l := resolvedLab(t, labConfig())
	l.send(segment{true, SYN, ""})
	l.fw.SetActive(false)
	nothing(t, l.send(segment{false, SYN | ACK, ""})) // to the active MAC, which the standby does not own
	nothing(t, l.in(ifInside, udpFrame(client.mac, fwInsideSbMAC, client.ip, server.ip, 5000, 53, "q")))
	// Ping to the standby address is answered with the standby MAC; the
	// active address is not the standby's to answer.
	out := l.in(ifInside, icmpFrame(client.mac, fwInsideSbMAC, client.ip, insideStandby, header.ICMPv4Echo, 5, 1))
	p := decode(t, only(t, out, ifInside, 1)[0])
	want := pkt{EthSrc: macStr(fwInsideSbMAC[:]), EthDst: macStr(client.mac[:]), Type: "icmp",
		Src: ap(insideStandby, 5), Dst: ap(client.ip, 0), TTL: 64, Flags: header.ICMPv4EchoReply}
	if d := cmp.Diff(want, p); d != "" {
		t.Errorf("standby echo reply (-want +got):\n%s", d)
	}
	nothing(t, l.in(ifInside, icmpFrame(client.mac, fwInsideSbMAC, client.ip, insideIP, header.ICMPv4Echo, 5, 2)))
	// Nothing ages on a standby.
	l.clk.Advance(24 * time.Hour)
	l.sweepAll()
	if n := l.fw.ConnCount(); n != 1 {
		t.Errorf("standby aged out conns: %d left", n)
	}
	if d := cmp.Diff(map[string]uint64{"not-active": 2, "l2-not-for-us": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}
