package firewall

import (
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/google/go-cmp/cmp"
)

// junkMAC is the i-th source MAC of a MAC flood.
func junkMAC(i int) [6]byte { return [6]byte{0x02, 0xee, 0, byte(i >> 16), byte(i >> 8), byte(i)} }

// macFlood sends n frames from distinct junk MACs into ifIdx, as a MAC
// flooding tool does (broadcast ARP, so that they reach the bridge).
func (l *lab) macFlood(ifIdx, from, n int) {
	for i := from; i < from+n; i++ {
		l.in(ifIdx, arpFrame(header.ARPRequest, broadcastMAC, junkMAC(i), [4]byte{198, 18, 5, 99}, zeroMAC, [4]byte{198, 18, 5, 98}))
	}
}

func TestBridgeMACLimitPerInterface(t *testing.T) {
	cfg := transparentConfig()
	cfg.Limits.MACsPerInterface = 4
	l := bridgeLab(t, cfg) // A on inside, B on outside, C on dmz
	l.macFlood(ifInside, 0, 100)
	if got := l.fw.bridge.perIf[ifInside].Load(); got != 4 {
		t.Errorf("%d stations learnt on inside, want the limit of 4", got)
	}
	if d := cmp.Diff(map[string]uint64{"l2-mac-limit": 97}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	// A, learnt before the flood, is still known and still forwards.
	only(t, l.in(ifInside, udpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 7000, 53, "x")), ifOutside, 1)
	// The other segments still learn.
	l.station(ifDMZ, stA2)
	if i, ok := l.fw.lookupMAC(stA2.mac); !ok || i != ifDMZ {
		t.Errorf("a new station on dmz was not learnt during a flood on inside")
	}
	// A station moving onto the full interface is refused too.
	l.in(ifInside, arpFrame(header.ARPRequest, broadcastMAC, stC.mac, stC.ip, zeroMAC, stC.ip))
	if i, _ := l.fw.lookupMAC(stC.mac); i != ifDMZ {
		t.Errorf("C moved onto the full inside interface")
	}
	// Once the junk ages out (A keeps talking), inside learns again.
	for range 2 {
		l.clk.Advance(3 * time.Minute)
		l.station(ifInside, stA)
		l.maintainAll()
	}
	if got := l.fw.bridge.perIf[ifInside].Load(); got != 1 {
		t.Errorf("%d stations on inside after the junk aged out, want 1 (A)", got)
	}
	l.macFlood(ifInside, 1000, 1)
	if _, ok := l.fw.lookupMAC(junkMAC(1000)); !ok {
		t.Errorf("a new station was not learnt after the junk aged out")
	}
}

// TestAnnounceAfterMACFloodPutsRealStationsFirst is the takeover after a
// MAC flood: the replicated table holds more junk than one announcement,
// and the new active must announce the stations with connections first.
func TestAnnounceAfterMACFloodPutsRealStationsFirst(t *testing.T) {
	cfg := transparentConfig()
	cfg.Limits.MACsPerInterface = -1 // no port security: the flood fills the table
	a := newLab(t, cfg)
	a.station(ifInside, stA)
	a.station(ifOutside, stB)
	a.station(ifDMZ, stC)
	a.bseg(true, SYN, "")
	a.bseg(false, SYN|ACK, "")
	a.bseg(true, ACK, "")
	a.clk.Advance(time.Second)
	a.macFlood(ifDMZ, 0, 2*announceLimit) // newer than every real station

	// The standby learns the table from the change stream, and another
	// from a bulk sync; both must order alike.
	b := newLab(t, cfg)
	b.fw.SetActive(false)
	for _, c := range a.changes {
		if err := b.fw.ApplyChange(c); err != nil {
			t.Fatal(err)
		}
	}
	c := newLab(t, cfg)
	c.fw.SetActive(false)
	bulk(t, a.fw, c.fw)
	for name, u := range map[string]*lab{"stream": b, "bulk": c} {
		if da, db := a.fw.Digest(TableBridge), u.fw.Digest(TableBridge); da != db {
			t.Errorf("%s: bridge digest active %#x, standby %#x", name, da, db)
		}
		u.clk.Advance(30 * time.Second) // failure detection
		u.fw.SetActive(true)
		recs := u.fw.announceOrder(announceLimit, u.fw.now())
		if len(recs) != announceLimit {
			t.Fatalf("%s: %d stations to announce, want %d", name, len(recs), announceLimit)
		}
		got := []string{macStr(recs[0].MAC[:]), macStr(recs[1].MAC[:])}
		want := []string{macStr(stA.mac[:]), macStr(stB.mac[:])}
		if got[0] > got[1] {
			got[0], got[1] = got[1], got[0]
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: first announced (-want +got):\n%s", name, d)
		}
		// The RARP for A leaves on outside among the first frames.
		for _, p := range u.ports {
			p.Take()
		}
		u.fw.AnnounceBridge()
		out := u.ports[ifOutside].Take()
		if len(out) == 0 || (macStr(header.Ethernet(out[0]).Source()) != macStr(stA.mac[:]) &&
			macStr(header.Ethernet(out[1]).Source()) != macStr(stA.mac[:])) {
			t.Errorf("%s: A is not among the first announcements on outside", name)
		}
	}
}

// TestAnnounceOrderByRecency: without connections the most recently seen
// stations go first, and taking over does not erase that order.
func TestAnnounceOrderByRecency(t *testing.T) {
	cfg := transparentConfig()
	cfg.Limits.MACsPerInterface = -1
	l := bridgeLab(t, cfg)
	l.clk.Advance(time.Second)
	l.macFlood(ifDMZ, 0, 10)
	l.clk.Advance(time.Second)
	l.station(ifOutside, stB) // B speaks again, after the junk
	l.fw.SetActive(false)
	l.clk.Advance(time.Minute)
	l.fw.SetActive(true)
	recs := l.fw.announceOrder(3, l.fw.now())
	if got := macStr(recs[0].MAC[:]); got != macStr(stB.mac[:]) {
		t.Errorf("first announced %s, want B, the most recently seen", got)
	}
	if got := macStr(recs[1].MAC[:]); got == macStr(stA.mac[:]) || got == macStr(stC.mac[:]) {
		t.Errorf("second announced %s, want junk seen after A and C", got)
	}
}
