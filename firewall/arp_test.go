package firewall

import (
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/google/go-cmp/cmp"
)

func TestARPAnswers(t *testing.T) {
	tests := []struct {
		name   string
		active bool
		ifIdx  int
		target [4]byte
		want   []pkt // replies on ifIdx
	}{
		{"active answers its address", true, ifInside, insideIP, []pkt{{
			EthSrc: macStr(fwInsideMAC[:]), EthDst: macStr(client.mac[:]), Type: "arp", ARPOp: header.ARPReply,
			Src: ap(insideIP, 0), Dst: ap(client.ip, 0), Payload: macStr(fwInsideMAC[:]) + ">" + macStr(client.mac[:])}}},
		{"active leaves the standby address to the standby", true, ifInside, insideStandby, nil},
		{"active proxies the static mapped address", true, ifOutside, staticMapped, []pkt{{
			EthSrc: macStr(fwOutsideMAC[:]), EthDst: macStr(client.mac[:]), Type: "arp", ARPOp: header.ARPReply,
			Src: ap(staticMapped, 0), Dst: ap(client.ip, 0), Payload: macStr(fwOutsideMAC[:]) + ">" + macStr(client.mac[:])}}},
		{"active ignores other hosts", true, ifInside, [4]byte{198, 18, 1, 99}, nil},
		{"standby answers its standby address", false, ifInside, insideStandby, []pkt{{
			EthSrc: macStr(fwInsideSbMAC[:]), EthDst: macStr(client.mac[:]), Type: "arp", ARPOp: header.ARPReply,
			Src: ap(insideStandby, 0), Dst: ap(client.ip, 0), Payload: macStr(fwInsideSbMAC[:]) + ">" + macStr(client.mac[:])}}},
		{"standby does not answer the active address", false, ifInside, insideIP, nil},
		{"standby does not proxy", false, ifOutside, staticMapped, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t, labConfig())
			l.fw.SetActive(tt.active)
			// The requester's own address must be on the interface's network.
			spa := client.ip
			if tt.ifIdx == ifOutside {
				spa = [4]byte{198, 19, 2, 10}
			}
			out := l.in(tt.ifIdx, arpFrame(header.ARPRequest, broadcastMAC, client.mac, spa, zeroMAC, tt.target))
			var got []pkt
			for _, fr := range only(t, out, tt.ifIdx, len(tt.want)) {
				got = append(got, decode(t, fr))
			}
			for i := range tt.want {
				tt.want[i].Dst = ap(spa, 0)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("replies (-want +got):\n%s", d)
			}
		})
	}
}

func TestARPLearnsOnlyRelevantSenders(t *testing.T) {
	l := newLab(t, labConfig())
	// A request for us: learnt.
	l.in(ifInside, arpFrame(header.ARPRequest, broadcastMAC, client.mac, client.ip, zeroMAC, insideIP))
	// A request between two other hosts: not learnt (ASA learns only what concerns it).
	l.in(ifInside, arpFrame(header.ARPRequest, broadcastMAC, client2.mac, client2.ip, zeroMAC, client.ip))
	// A sender off the interface's network: not learnt.
	l.in(ifInside, arpFrame(header.ARPRequest, broadcastMAC, server.mac, server.ip, zeroMAC, insideIP))
	// A gratuitous ARP moving the known client to a new MAC: refused (see
	// TestARPSpoofedClaimsLeaveLiveEntry).
	moved := mac(99, 1)
	l.in(ifInside, arpFrame(header.ARPRequest, broadcastMAC, moved, client.ip, zeroMAC, client.ip))
	var got []string
	for _, e := range l.fw.ARPEntries() {
		got = append(got, e.Interface+" "+e.IP.String()+" "+e.MAC)
	}
	want := []string{"inside 198.18.1.10 " + macStr(client.mac[:])}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ARP table (-want +got):\n%s", d)
	}
	// Only the creation is a change.
	if n := countChanges(l.changes, TableARP); n != 1 {
		t.Errorf("ARP changes = %d, want 1", n)
	}
}

func countChanges(cs []Change, t Table) int {
	n := 0
	for _, c := range cs {
		if c.Table == t {
			n++
		}
	}
	return n
}

func TestARPQueueOverflowAndResolution(t *testing.T) {
	l := newLab(t, labConfig())
	l.neighbour(ifInside, client)
	syn := func(sport uint16) []byte {
		return tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, sport, 80, header.TCPFlagSYN, "")
	}
	// First packet: queued, one ARP request leaves on outside.
	out := l.in(ifInside, syn(40000))
	req := decode(t, only(t, out, ifOutside, 1)[0])
	wantReq := pkt{EthSrc: macStr(fwOutsideMAC[:]), EthDst: "ff:ff:ff:ff:ff:ff", Type: "arp", ARPOp: header.ARPRequest,
		Src: ap(outsideIP, 0), Dst: ap(server.ip, 0), Payload: macStr(fwOutsideMAC[:]) + ">00:00:00:00:00:00"}
	if d := cmp.Diff(wantReq, req); d != "" {
		t.Errorf("ARP request (-want +got):\n%s", d)
	}
	for i := 1; i < arpQueueLen+4; i++ {
		nothing(t, l.in(ifInside, syn(40000+uint16(i))))
	}
	if d := cmp.Diff(map[string]uint64{"no-adjacency": 4}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	// The reply releases the queue, in order, to the server's MAC.
	out = l.in(ifOutside, arpFrame(header.ARPReply, fwOutsideMAC, server.mac, server.ip, fwOutsideMAC, outsideIP))
	frames := only(t, out, ifOutside, arpQueueLen)
	for i, fr := range frames {
		p := decode(t, fr)
		if p.EthDst != macStr(server.mac[:]) || p.Dst != ap(server.ip, 80) || p.Src[:len("198.19.2.1:")] != "198.19.2.1:" {
			t.Errorf("frame %d: %+v", i, p)
		}
	}
}

func TestARPRetryThenTimeout(t *testing.T) {
	l := newLab(t, labConfig())
	l.neighbour(ifInside, client)
	out := l.in(ifInside, tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, header.TCPFlagSYN, ""))
	only(t, out, ifOutside, 1)
	for i := 2; i <= arpMaxRequests; i++ {
		l.clk.Advance(arpRetryInterval)
		l.fw.Maintain()
		if p := decode(t, only(t, l.take(), ifOutside, 1)[0]); p.ARPOp != header.ARPRequest {
			t.Fatalf("retry %d: %+v", i, p)
		}
	}
	l.clk.Advance(arpRetryInterval)
	l.fw.Maintain()
	nothing(t, l.take())
	if d := cmp.Diff(map[string]uint64{"arp-timeout": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

func (l *lab) take() [][][]byte {
	out := make([][][]byte, len(l.ports))
	for i, p := range l.ports {
		out[i] = p.Take()
	}
	return out
}

func TestARPAgeing(t *testing.T) {
	l := newLab(t, labConfig())
	l.neighbour(ifInside, client)
	l.clk.Advance(4*time.Hour - time.Second)
	l.fw.Maintain()
	if n := len(l.fw.ARPEntries()); n != 1 {
		t.Fatalf("entry aged out early: %d entries", n)
	}
	// A standby never ages on its own.
	l.fw.SetActive(false)
	l.clk.Advance(time.Hour)
	l.fw.Maintain()
	if n := len(l.fw.ARPEntries()); n != 1 {
		t.Fatalf("standby aged an entry out: %d entries", n)
	}
	// Takeover refreshes; then the timeout runs from the takeover.
	l.fw.SetActive(true)
	l.clk.Advance(4*time.Hour + time.Second)
	l.fw.Maintain()
	if n := len(l.fw.ARPEntries()); n != 0 {
		t.Fatalf("entry did not age out: %d entries", n)
	}
}

func TestGratuitousARP(t *testing.T) {
	l := newLab(t, labConfig())
	l.fw.SendGratuitousARP()
	out := l.take()
	garp := func(m [6]byte, ip [4]byte) pkt {
		return pkt{EthSrc: macStr(m[:]), EthDst: "ff:ff:ff:ff:ff:ff", Type: "arp", ARPOp: header.ARPRequest,
			Src: ap(ip, 0), Dst: ap(ip, 0), Payload: macStr(m[:]) + ">00:00:00:00:00:00"}
	}
	want := [][]pkt{
		{garp(fwInsideMAC, insideIP)},
		{garp(fwOutsideMAC, outsideIP), garp(fwOutsideMAC, staticMapped)},
		{garp(fwDMZMAC, [4]byte{198, 18, 3, 1})},
	}
	var got [][]pkt
	for _, frames := range out {
		var ps []pkt
		for _, fr := range frames {
			ps = append(ps, decode(t, fr))
		}
		got = append(got, ps)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("GARPs (-want +got):\n%s", d)
	}
}
