package firewall

import (
	"net/netip"
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/google/go-cmp/cmp"
)

var attacker = host{[4]byte{198, 18, 1, 66}, mac(66, 1)}

// arpTable lists the replicated entries as "interface ip mac".
func (l *lab) arpTable() []string {
	var got []string
	for _, e := range l.fw.ARPEntries() {
		got = append(got, e.Interface+" "+e.IP.String()+" "+e.MAC)
	}
	return got
}

// probeOf is the unicast request the firewall sends to confirm that mac
// still owns ip on the inside.
func probeOf(m [6]byte, ip [4]byte) pkt {
	return pkt{EthSrc: macStr(fwInsideMAC[:]), EthDst: macStr(m[:]), Type: "arp", ARPOp: header.ARPRequest,
		Src: ap(insideIP, 0), Dst: ap(ip, 0), Payload: macStr(fwInsideMAC[:]) + ">00:00:00:00:00:00"}
}

func TestARPSpoofedClaimsLeaveLiveEntry(t *testing.T) {
	frames := map[string][]byte{
		"reply to us":              arpFrame(header.ARPReply, fwInsideMAC, attacker.mac, client.ip, fwInsideMAC, insideIP),
		"request for us":           arpFrame(header.ARPRequest, broadcastMAC, attacker.mac, client.ip, zeroMAC, insideIP),
		"gratuitous request":       arpFrame(header.ARPRequest, broadcastMAC, attacker.mac, client.ip, zeroMAC, client.ip),
		"gratuitous reply":         arpFrame(header.ARPReply, broadcastMAC, attacker.mac, client.ip, broadcastMAC, client.ip),
		"request for another host": arpFrame(header.ARPRequest, broadcastMAC, attacker.mac, client.ip, zeroMAC, client2.ip),
	}
	want := []string{"inside 198.18.1.10 " + macStr(client.mac[:])}
	for name, fr := range frames {
		t.Run(name, func(t *testing.T) {
			l := newLab(t, labConfig())
			l.neighbour(ifInside, client)
			l.take()
			l.changes = nil
			out := l.in(ifInside, fr)
			// Nothing moved, on this unit or in the stream to the standby.
			if d := cmp.Diff(want, l.arpTable()); d != "" {
				t.Errorf("ARP table (-want +got):\n%s", d)
			}
			if len(l.changes) != 0 {
				t.Errorf("changes %+v, want none", l.changes)
			}
			if d := cmp.Diff(map[string]uint64{"arp-conflict": 1}, l.drops()); d != "" {
				t.Errorf("drops (-want +got):\n%s", d)
			}
			// The old owner is asked, by unicast, and only it.
			if d := cmp.Diff(probeOf(client.mac, client.ip), decode(t, only(t, out, ifInside, 1)[0])); d != "" {
				t.Errorf("probe (-want +got):\n%s", d)
			}
			// It answers: the entry is confirmed and outlives the probe time.
			nothing(t, l.in(ifInside, arpFrame(header.ARPReply, fwInsideMAC, client.mac, client.ip, fwInsideMAC, insideIP)))
			for range arpProbes + 1 {
				l.clk.Advance(arpRetryInterval)
				l.fw.Maintain()
				nothing(t, l.take())
			}
			if d := cmp.Diff(want, l.arpTable()); d != "" {
				t.Errorf("after the probes, ARP table (-want +got):\n%s", d)
			}
			// A second forgery starts a new probe; one probe at a time.
			only(t, l.in(ifInside, fr), ifInside, 1)
			nothing(t, l.in(ifInside, fr))
		})
	}
}

// TestARPMovedHostRelearnt: a host that really changed its MAC is not
// stuck behind the protection: its old MAC does not answer the probes, the
// entry goes, and the next packet resolves the new MAC by broadcast.
func TestARPMovedHostRelearnt(t *testing.T) {
	l := resolvedLab(t, labConfig())
	moved := host{client.ip, mac(77, 1)}
	only(t, l.in(ifInside, arpFrame(header.ARPRequest, broadcastMAC, moved.mac, moved.ip, zeroMAC, insideIP)), ifInside, 1)
	l.clk.Advance(arpRetryInterval)
	l.fw.Maintain()
	if d := cmp.Diff(probeOf(client.mac, client.ip), decode(t, only(t, l.take(), ifInside, 1)[0])); d != "" {
		t.Errorf("second probe (-want +got):\n%s", d)
	}
	l.clk.Advance(arpRetryInterval)
	l.fw.Maintain()
	nothing(t, l.take())
	for _, e := range l.arpTable() {
		if e == "inside 198.18.1.10 "+macStr(client.mac[:]) {
			t.Fatalf("stale entry kept: %v", l.arpTable())
		}
	}
	if n := len(l.changes); n != 1 || l.changes[0].Op != OpDelete {
		t.Fatalf("changes %+v, want one delete", l.changes)
	}
	// Traffic to the host: queued, resolved by broadcast, delivered to the new MAC.
	l.in(ifOutside, udpFrame(server.mac, fwOutsideMAC, server.ip, staticMapped, 53, 5000, "x")) // to the static host: unrelated
	l.take()
	out := l.in(ifInside, icmpFrame(moved.mac, fwInsideMAC, moved.ip, insideIP, header.ICMPv4Echo, 1, 1))
	if p := decode(t, only(t, out, ifInside, 1)[0]); p.EthDst != "ff:ff:ff:ff:ff:ff" || p.ARPOp != header.ARPRequest {
		t.Fatalf("want a broadcast request, got %+v", p)
	}
	out = l.in(ifInside, arpFrame(header.ARPReply, fwInsideMAC, moved.mac, moved.ip, fwInsideMAC, insideIP))
	if p := decode(t, only(t, out, ifInside, 1)[0]); p.Type != "icmp" || p.EthDst != macStr(moved.mac[:]) {
		t.Fatalf("echo reply %+v, want it to the new MAC", p)
	}
}

func TestARPUnsolicitedCreatesNothing(t *testing.T) {
	// Each frame is built for the role's own MAC and address.
	for name, in := range map[string]struct {
		frame func(fwMAC [6]byte, fwIP [4]byte) []byte
		drop  string
	}{
		"unsolicited reply": {func(m [6]byte, ip [4]byte) []byte {
			return arpFrame(header.ARPReply, m, server.mac, server.ip, m, ip)
		}, ""},
		"gratuitous request": {func([6]byte, [4]byte) []byte {
			return arpFrame(header.ARPRequest, broadcastMAC, server.mac, server.ip, zeroMAC, server.ip)
		}, ""},
		"gratuitous reply": {func([6]byte, [4]byte) []byte {
			return arpFrame(header.ARPReply, broadcastMAC, server.mac, server.ip, broadcastMAC, server.ip)
		}, ""},
		"request between hosts": {func([6]byte, [4]byte) []byte {
			return arpFrame(header.ARPRequest, broadcastMAC, server.mac, server.ip, zeroMAC, router.ip)
		}, ""},
		"request for us from off the subnet": {func(_ [6]byte, ip [4]byte) []byte {
			return arpFrame(header.ARPRequest, broadcastMAC, server.mac, [4]byte{10, 1, 1, 1}, zeroMAC, ip)
		}, "arp-nonconnected"},
		"request for us from the subnet's broadcast address": {func(_ [6]byte, ip [4]byte) []byte {
			return arpFrame(header.ARPRequest, broadcastMAC, server.mac, [4]byte{198, 19, 2, 255}, zeroMAC, ip)
		}, "arp-nonconnected"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, active := range []bool{true, false} {
				l := newLab(t, labConfig())
				l.fw.SetActive(active)
				fr := in.frame(fwOutsideMAC, outsideIP)
				if !active {
					fr = in.frame(fwOutsideSbMAC, outsideStandby)
				}
				nothing(t, l.in(ifOutside, fr))
				if got := l.arpTable(); len(got) != 0 || len(l.changes) != 0 || len(l.fw.arp.local) != 0 {
					t.Errorf("active %v: entries %v, local %v, changes %v", active, got, l.fw.arp.local, l.changes)
				}
				want := map[string]uint64{}
				if in.drop != "" {
					want[in.drop] = 1
				}
				if d := cmp.Diff(want, l.drops()); d != "" {
					t.Errorf("active %v: drops (-want +got):\n%s", active, d)
				}
			}
		})
	}
}

func TestARPDefendsOwnAddresses(t *testing.T) {
	garp := func(m [6]byte, ip [4]byte) pkt {
		return pkt{EthSrc: macStr(m[:]), EthDst: "ff:ff:ff:ff:ff:ff", Type: "arp", ARPOp: header.ARPRequest,
			Src: ap(ip, 0), Dst: ap(ip, 0), Payload: macStr(m[:]) + ">00:00:00:00:00:00"}
	}
	l := newLab(t, labConfig())
	claim := arpFrame(header.ARPRequest, broadcastMAC, attacker.mac, insideIP, zeroMAC, insideIP)
	out := l.in(ifInside, claim)
	if d := cmp.Diff(garp(fwInsideMAC, insideIP), decode(t, only(t, out, ifInside, 1)[0])); d != "" {
		t.Errorf("defence (-want +got):\n%s", d)
	}
	// Rate-limited per interface: a second claim within the interval is only counted.
	nothing(t, l.in(ifInside, arpFrame(header.ARPReply, fwInsideMAC, attacker.mac, insideIP, fwInsideMAC, insideIP)))
	l.clk.Advance(arpDefendInterval)
	only(t, l.in(ifInside, claim), ifInside, 1)
	// A NAT mapped address is defended like the interface's.
	out = l.in(ifOutside, arpFrame(header.ARPReply, broadcastMAC, server.mac, staticMapped, broadcastMAC, staticMapped))
	if d := cmp.Diff(garp(fwOutsideMAC, staticMapped), decode(t, only(t, out, ifOutside, 1)[0])); d != "" {
		t.Errorf("defence of the mapped address (-want +got):\n%s", d)
	}
	if d := cmp.Diff(map[string]uint64{"arp-addr-conflict": 4}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	if len(l.arpTable()) != 0 || len(l.changes) != 0 {
		t.Errorf("a claim of our address changed the table: %v %v", l.arpTable(), l.changes)
	}
	// Our own announcement looped back is not a conflict.
	nothing(t, l.in(ifInside, arpFrame(header.ARPRequest, broadcastMAC, fwInsideMAC, insideIP, zeroMAC, insideIP)))

	// The standby counts a claim of its address but leaves the defence to the active.
	l.fw.SetActive(false)
	l.clk.Advance(arpDefendInterval)
	nothing(t, l.in(ifInside, arpFrame(header.ARPRequest, broadcastMAC, attacker.mac, insideStandby, zeroMAC, insideStandby)))
	if got := l.drops()["arp-addr-conflict"]; got != 5 {
		t.Errorf("arp-addr-conflict = %d, want 5", got)
	}
}

// TestARPPendingQueueHoldsBurst: twenty connections opened at once towards
// an unresolved next hop all get through once it answers.
func TestARPPendingQueueHoldsBurst(t *testing.T) {
	l := newLab(t, labConfig())
	l.neighbour(ifInside, client)
	l.take()
	const n = 20
	for i := range n {
		out := l.in(ifInside, tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, uint16(40000+i), 80, SYN, ""))
		if want := min(1, 1-i); want == 1 {
			only(t, out, ifOutside, 1) // the one request
		} else {
			nothing(t, out)
		}
	}
	out := l.in(ifOutside, arpFrame(header.ARPReply, fwOutsideMAC, server.mac, server.ip, fwOutsideMAC, outsideIP))
	frames := only(t, out, ifOutside, n)
	for i, fr := range frames {
		if p := decode(t, fr); p.Type != "tcp" || p.Flags != SYN || p.EthDst != macStr(server.mac[:]) {
			t.Errorf("frame %d: %+v", i, p)
		}
	}
	if len(l.drops()) != 0 {
		t.Errorf("drops %v", l.drops())
	}
}

// TestARPPendingBytesBounded: the queue of one next hop is bounded in
// bytes as well as frames, and the accounting returns to zero.
func TestARPPendingBytesBounded(t *testing.T) {
	l := newLab(t, labConfig())
	l.neighbour(ifInside, client)
	l.take()
	payload := string(make([]byte, 1400))
	var size int
	for i := range 60 {
		fr := udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, uint16(5000+i), 53, payload)
		size = len(fr)
		l.in(ifInside, fr)
	}
	fit := arpQueueBytes / size
	if d := cmp.Diff(map[string]uint64{"no-adjacency": uint64(60 - fit)}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	if got := l.fw.arp.queuedBytes; got != fit*size {
		t.Errorf("queued bytes %d, want %d", got, fit*size)
	}
	for range arpMaxRequests {
		l.clk.Advance(arpRetryInterval)
		l.fw.Maintain()
	}
	if l.fw.arp.queuedBytes != 0 || l.fw.arp.pendingIf[ifOutside] != 0 {
		t.Errorf("after timeout: %d bytes, %d pending", l.fw.arp.queuedBytes, l.fw.arp.pendingIf[ifOutside])
	}
}

// TestARPPendingNextHopsBounded: at most arpMaxPendingPerIf next hops are
// resolved at once on an interface (a scan of a large subnet).
func TestARPPendingNextHopsBounded(t *testing.T) {
	cfg := labConfig()
	cfg.Interfaces[ifDMZ].Prefix, cfg.Interfaces[ifDMZ].StandbyAddr = pfx("10.3.0.1/16"), addr("10.3.0.2")
	l := newLab(t, cfg)
	l.neighbour(ifInside, client)
	l.take()
	requests := 0
	for i := range arpMaxPendingPerIf + 10 {
		dst := [4]byte{10, 3, byte(1 + i/250), byte(1 + i%250)}
		out := l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, dst, 5000, 53, ""))
		requests += len(out[ifDMZ])
	}
	if requests != arpMaxPendingPerIf {
		t.Errorf("%d requests, want %d", requests, arpMaxPendingPerIf)
	}
	if got := l.drops()["no-adjacency"]; got != 10 {
		t.Errorf("no-adjacency = %d, want 10", got)
	}
}

func TestARPNeverForInvalidTargets(t *testing.T) {
	in := &iface{netAddr: u32([4]byte{198, 19, 2, 0}), mask: maskOf(24), addr: outsideIP}
	for _, tt := range []struct {
		ip   string
		want bool
	}{
		{"198.19.2.20", true}, {"198.19.2.0", false}, {"198.19.2.255", false}, {"198.19.3.1", false},
		{"0.0.0.0", false}, {"224.0.0.1", false}, {"255.255.255.255", false},
	} {
		if got := neighbourAddr(in, netip.MustParseAddr(tt.ip).As4()); got != tt.want {
			t.Errorf("neighbourAddr(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}

	// With the ingress checks off, the last line of defence: the firewall
	// still never ARPs for a directed broadcast or a spoofed off-subnet source.
	cfg := labConfig()
	cfg.DisableMartianCheck, cfg.DisableReversePathCheck = true, true
	l := resolvedLab(t, cfg)
	nothing(t, l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, [4]byte{198, 18, 3, 255}, 5000, 53, "")))
	spoofed := [4]byte{10, 99, 0, 5}
	only(t, l.in(ifInside, udpFrame(client.mac, fwInsideMAC, spoofed, dmzHost.ip, 5000, 53, "")), ifDMZ, 1)
	nothing(t, l.in(ifDMZ, udpFrame(dmzHost.mac, fwDMZMAC, dmzHost.ip, spoofed, 53, 5000, "")))
	if d := cmp.Diff(map[string]uint64{"arp-invalid-target": 2}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	if len(l.fw.arp.pending) != 0 {
		t.Errorf("pending resolutions %v", l.fw.arp.pending)
	}
}

// TestARPStandbyLocalEntriesAge: the neighbours a standby learns for its
// own traffic age like the active's, and a takeover forgets them.
func TestARPStandbyLocalEntriesAge(t *testing.T) {
	l := newLab(t, labConfig())
	l.fw.SetActive(false)
	l.in(ifInside, arpFrame(header.ARPRequest, broadcastMAC, client.mac, client.ip, zeroMAC, insideStandby))
	if len(l.fw.arp.local) != 1 {
		t.Fatalf("standby did not learn: %v", l.fw.arp.local)
	}
	l.clk.Advance(l.fw.timeouts.ARP - time.Second)
	l.fw.Maintain()
	if len(l.fw.arp.local) != 1 {
		t.Fatalf("aged out early")
	}
	l.clk.Advance(2 * time.Second)
	l.fw.Maintain()
	if len(l.fw.arp.local) != 0 {
		t.Fatalf("standby's own entry never aged: %v", l.fw.arp.local)
	}
}

// TestARPTakeoverRevalidates: a host changed its MAC while the unit was
// standby (it learnt the old one itself, or from the active). After the
// takeover the unit must not send to the old MAC for hours: it probes
// every entry and relearns those whose owner is gone.
func TestARPTakeoverRevalidates(t *testing.T) {
	moved := host{client.ip, mac(77, 1)}
	t.Run("standby's own entry", func(t *testing.T) {
		l := newLab(t, labConfig())
		l.fw.SetActive(false)
		l.in(ifInside, arpFrame(header.ARPRequest, broadcastMAC, client.mac, client.ip, zeroMAC, insideStandby))
		l.take()
		l.fw.SetActive(true)
		// The moved host pings the active address: the reply must not go to the old MAC.
		out := l.in(ifInside, icmpFrame(moved.mac, fwInsideMAC, moved.ip, insideIP, header.ICMPv4Echo, 1, 1))
		if p := decode(t, only(t, out, ifInside, 1)[0]); p.Type != "arp" || p.EthDst != "ff:ff:ff:ff:ff:ff" {
			t.Fatalf("want a broadcast request, got %+v", p)
		}
	})
	t.Run("replicated entry", func(t *testing.T) {
		l := newLab(t, labConfig())
		l.neighbour(ifInside, client)
		l.fw.SetActive(false)
		l.clk.Advance(time.Hour)
		l.fw.Maintain()
		l.take()
		l.changes = nil
		l.fw.SetActive(true)
		// The first Maintain probes the entry's MAC.
		l.fw.Maintain()
		if d := cmp.Diff(probeOf(client.mac, client.ip), decode(t, only(t, l.take(), ifInside, 1)[0])); d != "" {
			t.Errorf("probe (-want +got):\n%s", d)
		}
		// Until it fails, the entry is used: no flow stalls at takeover.
		if got := l.arpTable(); len(got) != 1 {
			t.Fatalf("entry gone at once: %v", got)
		}
		for range arpProbes {
			l.clk.Advance(arpRetryInterval)
			l.fw.Maintain()
		}
		if got := l.arpTable(); len(got) != 0 {
			t.Fatalf("unanswered entry kept: %v", got)
		}
		if n := countChanges(l.changes, TableARP); n != 1 {
			t.Errorf("%d ARP changes, want the delete", n)
		}
	})
	t.Run("answered probe keeps the entry", func(t *testing.T) {
		l := newLab(t, labConfig())
		l.neighbour(ifInside, client)
		l.fw.SetActive(false)
		l.fw.SetActive(true)
		l.fw.Maintain()
		only(t, l.take(), ifInside, 1)
		l.in(ifInside, arpFrame(header.ARPReply, fwInsideMAC, client.mac, client.ip, fwInsideMAC, insideIP))
		for range arpProbes + 1 {
			l.clk.Advance(arpRetryInterval)
			l.fw.Maintain()
		}
		nothing(t, l.take())
		if got := l.arpTable(); len(got) != 1 {
			t.Fatalf("confirmed entry lost: %v", got)
		}
	})
	t.Run("revalidation is paced", func(t *testing.T) {
		l := newLab(t, labConfig())
		for i := range arpRevalidatePerCall + 5 {
			h := host{[4]byte{198, 19, 2, byte(100 + i)}, mac(byte(100+i), 2)}
			l.neighbour(ifOutside, h)
		}
		l.take()
		l.fw.SetActive(false)
		l.fw.SetActive(true)
		l.fw.Maintain()
		if got := len(l.take()[ifOutside]); got != arpRevalidatePerCall {
			t.Errorf("first Maintain sent %d probes, want %d", got, arpRevalidatePerCall)
		}
		l.fw.Maintain()
		if got := len(l.take()[ifOutside]); got != 5 {
			t.Errorf("second Maintain sent %d probes, want 5", got)
		}
	})
}
