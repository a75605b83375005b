package firewall

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/firewall/memport"
	"github.com/google/go-cmp/cmp"
)

// The transparent lab: one subnet 198.18.5.0/24 bridged between inside
// (100), outside (0) and dmz (50); three interfaces so that flooding and
// known unicast differ.
var (
	stA           = host{[4]byte{198, 18, 5, 10}, mac(10, 5)} // on inside
	stA2          = host{[4]byte{198, 18, 5, 11}, mac(11, 5)} // on inside
	stB           = host{[4]byte{198, 18, 5, 20}, mac(20, 5)} // on outside
	stC           = host{[4]byte{198, 18, 5, 30}, mac(30, 5)} // on dmz
	mgmtIP        = [4]byte{198, 18, 5, 1}
	mgmtStandbyIP = [4]byte{198, 18, 5, 2}
)

func transparentConfig() Config {
	return Config{
		Mode: ModeTransparent,
		Interfaces: []InterfaceConfig{
			{Name: "inside", SecurityLevel: 100, ActiveMAC: fwInsideMAC[:], StandbyMAC: fwInsideSbMAC[:]},
			{Name: "outside", SecurityLevel: 0, ActiveMAC: fwOutsideMAC[:], StandbyMAC: fwOutsideSbMAC[:]},
			{Name: "dmz", SecurityLevel: 50, ActiveMAC: fwDMZMAC[:], StandbyMAC: fwDMZSbMAC[:]},
		},
		ManagementAddr:        pfx("198.18.5.1/24"),
		ManagementStandbyAddr: addr("198.18.5.2"),
	}
}

// station makes the bridge learn h on ifIdx: h broadcasts a gratuitous ARP.
func (l *lab) station(ifIdx int, h host) [][][]byte {
	return l.in(ifIdx, arpFrame(header.ARPRequest, broadcastMAC, h.mac, h.ip, zeroMAC, h.ip))
}

// bridgeLab is an active transparent unit that knows A, B and C.
func bridgeLab(t testing.TB, cfg Config) *lab {
	l := newLab(t, cfg)
	l.station(ifInside, stA)
	l.station(ifOutside, stB)
	l.station(ifDMZ, stC)
	l.changes = nil
	return l
}

// counts returns how many frames left on each interface.
func counts(out [][][]byte) []int {
	n := make([]int, len(out))
	for i, fr := range out {
		n[i] = len(fr)
	}
	return n
}

func bridgeKeys(fw *Firewall) []string {
	var out []string
	for _, e := range fw.BridgeEntries() {
		out = append(out, e.MAC+" "+e.Interface)
	}
	return out
}

func TestTransparentConfig(t *testing.T) {
	tests := []struct {
		name string
		mut  func(c *Config)
		ok   bool
	}{
		{"valid", func(*Config) {}, true},
		{"no management address", func(c *Config) { c.ManagementAddr, c.ManagementStandbyAddr = netip.Prefix{}, netip.Addr{} }, true},
		{"allowed ethertypes", func(c *Config) { c.AllowEtherTypes = []uint16{0x86dd, 0x0800, 0x86dd} }, true},
		{"interface with an address", func(c *Config) { c.Interfaces[0].Prefix = pfx("198.18.5.3/24") }, false},
		{"interface with a standby address", func(c *Config) { c.Interfaces[1].StandbyAddr = addr("198.18.5.4") }, false},
		{"routes", func(c *Config) {
			c.Routes = []Route{{Interface: "outside", Prefix: pfx("198.19.0.0/16"), NextHop: addr("198.18.5.254")}}
		}, false},
		{"nat", func(c *Config) {
			c.NAT = []NATRule{{Kind: NATDynamicPAT, RealInterface: "inside", Real: pfx("198.18.5.0/24"), MappedInterface: "outside"}}
		}, false},
		{"unknown mode", func(c *Config) { c.Mode = "bridged" }, false},
		{"management /32", func(c *Config) { c.ManagementAddr = pfx("198.18.5.1/32") }, false},
		{"standby outside the management net", func(c *Config) { c.ManagementStandbyAddr = addr("198.19.5.2") }, false},
		{"standby equals active", func(c *Config) { c.ManagementStandbyAddr = addr("198.18.5.1") }, false},
		{"standby without active", func(c *Config) { c.ManagementAddr = netip.Prefix{} }, false},
		{"802.3 length as ethertype", func(c *Config) { c.AllowEtherTypes = []uint16{0x05dc} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := transparentConfig()
			tt.mut(&cfg)
			_, err := New(cfg, Options{})
			if tt.ok && err != nil {
				t.Fatalf("New = %v, want success", err)
			}
			if !tt.ok && !errors.Is(err, errConfig) {
				t.Fatalf("New = %v, want a config error", err)
			}
		})
	}
	// Transparent-only settings are refused in routed mode.
	cfg := labConfig()
	cfg.ManagementAddr = pfx("198.18.1.5/24")
	if _, err := New(cfg, Options{}); !errors.Is(err, errConfig) {
		t.Errorf("routed mode with a management address: New = %v, want a config error", err)
	}
}

func TestBridgeLearningFloodingAndKnownUnicast(t *testing.T) {
	l := newLab(t, transparentConfig())
	// A's broadcast floods to the other interfaces and teaches the bridge A.
	req := arpFrame(header.ARPRequest, broadcastMAC, stA.mac, stA.ip, zeroMAC, stB.ip)
	out := l.in(ifInside, slices.Clone(req))
	if d := cmp.Diff([]int{0, 1, 1}, counts(out)); d != "" {
		t.Fatalf("broadcast (-want +got):\n%s", d)
	}
	if !bytes.Equal(out[ifOutside][0], req) || !bytes.Equal(out[ifDMZ][0], req) {
		t.Errorf("flooded frame changed")
	}
	// B answers A: A is known, so it goes to inside only.
	out = l.in(ifOutside, arpFrame(header.ARPReply, stA.mac, stB.mac, stB.ip, stA.mac, stA.ip))
	if d := cmp.Diff([]int{1, 0, 0}, counts(out)); d != "" {
		t.Fatalf("known unicast (-want +got):\n%s", d)
	}
	// C sends to a MAC nobody has seen: flooded to inside and outside.
	out = l.in(ifDMZ, arpFrame(header.ARPReply, mac(99, 5), stC.mac, stC.ip, mac(99, 5), [4]byte{198, 18, 5, 99}))
	if d := cmp.Diff([]int{1, 1, 0}, counts(out)); d != "" {
		t.Fatalf("unknown unicast (-want +got):\n%s", d)
	}
	want := []string{macStr(stA.mac[:]) + " inside", macStr(stB.mac[:]) + " outside", macStr(stC.mac[:]) + " dmz"}
	if d := cmp.Diff(want, bridgeKeys(l.fw)); d != "" {
		t.Errorf("bridge table (-want +got):\n%s", d)
	}
	// One change record per new station; a frame from a known station on
	// its interface records nothing, a move records the new interface.
	var recs []string
	for _, c := range l.changes {
		recs = append(recs, fmt.Sprintf("%s %s %s %s", c.Table, c.Op, macStr(c.Bridge.MAC[:]), c.Bridge.Interface))
	}
	wantRecs := []string{
		"bridge upsert " + macStr(stA.mac[:]) + " inside",
		"bridge upsert " + macStr(stB.mac[:]) + " outside",
		"bridge upsert " + macStr(stC.mac[:]) + " dmz",
	}
	if d := cmp.Diff(wantRecs, recs); d != "" {
		t.Errorf("change records (-want +got):\n%s", d)
	}
	l.changes = nil
	l.station(ifInside, stA)
	if len(l.changes) != 0 {
		t.Errorf("a refresh emitted %d change records", len(l.changes))
	}
	l.station(ifDMZ, stA) // A moved behind dmz
	if len(l.changes) != 1 || l.changes[0].Bridge.Interface != "dmz" {
		t.Errorf("a move emitted %+v, want one upsert to dmz", l.changes)
	}
	if d := cmp.Diff(map[string]uint64{}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

func TestBridgeIntraInterfaceFilter(t *testing.T) {
	l := bridgeLab(t, transparentConfig())
	l.station(ifInside, stA2)
	// A talks to A2 on the same segment: the switch delivered it already.
	nothing(t, l.in(ifInside, arpFrame(header.ARPReply, stA2.mac, stA.mac, stA.ip, stA2.mac, stA2.ip)))
	nothing(t, l.in(ifInside, udpFrame(stA.mac, stA2.mac, stA.ip, stA2.ip, 1000, 53, "q")))
	if d := cmp.Diff(map[string]uint64{"intra-interface": 2}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	if l.fw.ConnCount() != 0 {
		t.Errorf("an intra-interface frame created a connection")
	}
}

// maintainAll runs Maintain enough times for one full pass of every
// incremental sweep.
func (l *lab) maintainAll() {
	for range numBridgeShards / bridgeSweepShardsPerCall {
		l.fw.Maintain()
	}
}

func TestBridgeAging(t *testing.T) {
	l := bridgeLab(t, transparentConfig())
	l.clk.Advance(4 * time.Minute)
	l.station(ifInside, stA) // A refreshes; B and C stay silent
	l.maintainAll()
	if got := l.fw.BridgeCount(); got != 3 {
		t.Fatalf("after 4m: %d entries, want 3", got)
	}
	l.clk.Advance(90 * time.Second) // B and C idle 5m30s, A 1m30s
	l.maintainAll()
	if d := cmp.Diff([]string{macStr(stA.mac[:]) + " inside"}, bridgeKeys(l.fw)); d != "" {
		t.Errorf("after ageing (-want +got):\n%s", d)
	}
	var dels []string
	for _, c := range l.changes {
		if c.Table == TableBridge && c.Op == OpDelete {
			dels = append(dels, macStr(c.Bridge.MAC[:]))
		}
	}
	slices.Sort(dels)
	if d := cmp.Diff([]string{macStr(stB.mac[:]), macStr(stC.mac[:])}, dels); d != "" {
		t.Errorf("delete records (-want +got):\n%s", d)
	}
	// A standby never ages entries on its own.
	l.fw.SetActive(false)
	l.clk.Advance(time.Hour)
	l.maintainAll()
	if got := l.fw.BridgeCount(); got != 1 {
		t.Errorf("standby aged its entries: %d left, want 1", got)
	}
}

func TestBridgedPolicy(t *testing.T) {
	tests := []struct {
		name     string
		acls     map[string][]ACE
		groups   []AccessGroup
		in       int
		frame    []byte
		want     []int // frames per interface
		wantDrop string
	}{
		{name: "higher to lower", in: ifInside, want: []int{0, 1, 0},
			frame: tcpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 40000, 80, SYN, "")},
		{name: "lower to higher without ACL", in: ifOutside, want: []int{0, 0, 0}, wantDrop: "security-level",
			frame: tcpFrame(stB.mac, stA.mac, stB.ip, stA.ip, 40000, 22, SYN, "")},
		{name: "lower to higher permitted by ACL", in: ifOutside, want: []int{1, 0, 0},
			acls:   map[string][]ACE{"o": {{Permit: true, Protocol: "tcp", Destination: pfx("198.18.5.10/32"), DstPortLow: 22}}},
			groups: []AccessGroup{{AccessList: "o", Interface: "outside"}},
			frame:  tcpFrame(stB.mac, stA.mac, stB.ip, stA.ip, 40000, 22, SYN, "")},
		{name: "ACL deny", in: ifOutside, want: []int{0, 0, 0}, wantDrop: "acl-deny",
			acls:   map[string][]ACE{"o": {{Permit: true, Protocol: "tcp", Destination: pfx("198.18.5.10/32"), DstPortLow: 22}}},
			groups: []AccessGroup{{AccessList: "o", Interface: "outside"}},
			frame:  tcpFrame(stB.mac, stA.mac, stB.ip, stA.ip, 40000, 23, SYN, "")},
		{name: "ACL replaces the implicit permit", in: ifInside, want: []int{0, 0, 0}, wantDrop: "acl-deny",
			acls:   map[string][]ACE{"i": {{Permit: true, Protocol: "tcp"}}},
			groups: []AccessGroup{{AccessList: "i", Interface: "inside"}},
			frame:  udpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 1000, 53, "q")},
		{name: "bare ACK", in: ifOutside, want: []int{0, 0, 0}, wantDrop: "no-connection",
			frame: tcpFrame(stB.mac, stA.mac, stB.ip, stA.ip, 80, 40000, ACK, "")},
		{name: "bare ACK from the trusted side", in: ifInside, want: []int{0, 0, 0}, wantDrop: "no-connection",
			frame: tcpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 40000, 80, ACK, "")},
		{name: "echo reply without request", in: ifOutside, want: []int{0, 0, 0}, wantDrop: "no-connection",
			frame: icmpFrame(stB.mac, stA.mac, stB.ip, stA.ip, header.ICMPv4EchoReply, 9, 1)},
		{name: "ICMP error about no connection", in: ifOutside, want: []int{0, 0, 0}, wantDrop: "no-connection",
			frame: icmpErrorFrame(stB.mac, stA.mac, stB.ip, stA.ip, header.ICMPv4DstUnreachable, 3,
				udpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 1000, 53, ""))},
		{name: "middle to lower", in: ifDMZ, want: []int{0, 1, 0},
			frame: udpFrame(stC.mac, stB.mac, stC.ip, stB.ip, 1000, 53, "q")},
		{name: "unknown destination floods to the permitted interfaces", in: ifDMZ, want: []int{0, 1, 0},
			frame: udpFrame(stC.mac, mac(99, 5), stC.ip, [4]byte{198, 18, 5, 99}, 1000, 53, "q")},
		{name: "unknown destination floods to all lower", in: ifInside, want: []int{0, 1, 1},
			frame: icmpFrame(stA.mac, mac(99, 5), stA.ip, [4]byte{198, 18, 5, 99}, header.ICMPv4Echo, 9, 1)},
		{name: "bad IP checksum", in: ifInside, want: []int{0, 0, 0}, wantDrop: "bad-ip-checksum",
			frame: func() []byte {
				b := udpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 1000, 53, "q")
				b[24] ^= 0xff
				return b
			}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := transparentConfig()
			cfg.AccessLists, cfg.AccessGroups = tt.acls, tt.groups
			l := bridgeLab(t, cfg)
			sent := slices.Clone(tt.frame)
			out := l.in(tt.in, tt.frame)
			if d := cmp.Diff(tt.want, counts(out)); d != "" {
				t.Fatalf("frames per interface (-want +got):\n%s", d)
			}
			for _, frames := range out {
				for _, fr := range frames {
					if !bytes.Equal(fr, sent) {
						t.Errorf("bridged frame changed:\n got % x\nwant % x", fr, sent)
					}
				}
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

// bseg is one TCP segment of the A->B:80 test connection, bridged.
func (l *lab) bseg(fromA bool, flags uint8, payload string) [][][]byte {
	if fromA {
		return l.in(ifInside, l.tcpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 40000, 80, flags, payload))
	}
	return l.in(ifOutside, l.tcpFrame(stB.mac, stA.mac, stB.ip, stA.ip, 80, 40000, flags, payload))
}

func TestBridgedTCPSession(t *testing.T) {
	l := bridgeLab(t, transparentConfig())
	steps := []struct {
		fromA     bool
		flags     uint8
		payload   string
		wantState string // "" = gone
	}{
		{true, SYN, "", "SYN_SENT"},
		{false, SYN | ACK, "", "SYN_RCVD"},
		{true, ACK, "", "ESTABLISHED"},
		{true, ACK | PSH, "GET / HTTP/1.0\r\n\r\n", "ESTABLISHED"},
		{false, ACK | PSH, "HTTP/1.0 200 OK\r\n\r\n", "ESTABLISHED"},
		{true, FIN | ACK, "", "FIN_WAIT"},
		{false, FIN | ACK, "", "CLOSING"},
		{true, ACK, "", "TIME_WAIT"}, // kept for the last ACK and retransmitted FINs until it expires
	}
	for i, s := range steps {
		out := l.bseg(s.fromA, s.flags, s.payload)
		wantIf := ifOutside
		if !s.fromA {
			wantIf = ifInside
		}
		p := decode(t, only(t, out, wantIf, 1)[0])
		if p.TTL != 64 {
			t.Errorf("step %d: TTL %d, want 64 (a bridge does not route)", i, p.TTL)
		}
		conns, _ := l.fw.Conns(0, 10)
		got := ""
		if len(conns) == 1 {
			got = conns[0].State
			if i == 3 {
				c := conns[0]
				c.Age, c.Idle = 0, 0
				want := ConnInfo{Protocol: "tcp", InInterface: "inside", OutInterface: "outside",
					OrigSrc: "198.18.5.10:40000", OrigDst: "198.18.5.20:80", ReplySrc: "198.18.5.20:80", ReplyDst: "198.18.5.10:40000",
					State: "ESTABLISHED", HTTP: true, Packets: 4, Bytes: 40*3 + 58}
				if d := cmp.Diff(want, c); d != "" {
					t.Errorf("connection (-want +got):\n%s", d)
				}
			}
		}
		if got != s.wantState {
			t.Fatalf("step %d: state %q, want %q", i, got, s.wantState)
		}
	}
	if d := cmp.Diff(map[string]uint64{}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

func TestBridgedEstablishedToUnknownMACFollowsTheConnection(t *testing.T) {
	l := bridgeLab(t, transparentConfig())
	l.bseg(true, SYN, "")
	l.bseg(false, SYN|ACK, "")
	l.bseg(true, ACK, "")
	if err := l.fw.ResetTable(TableBridge); err != nil { // as if every station aged out
		t.Fatal(err)
	}
	// B is unknown now, but the connection says it is behind outside: no flood to dmz.
	only(t, l.bseg(true, ACK|PSH, "x"), ifOutside, 1)
	only(t, l.bseg(false, ACK|PSH, "y"), ifInside, 1)
	// An ICMP error about the connection goes to the side its connection says.
	out := l.in(ifOutside, icmpErrorFrame(stB.mac, stA.mac, stB.ip, stA.ip, header.ICMPv4DstUnreachable, 4,
		tcpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 40000, 80, ACK, "")))
	only(t, out, ifInside, 1)
}

func TestBridgeEtherTypesAndL2Filters(t *testing.T) {
	ipv6 := func(src, dst [6]byte) []byte {
		b := make([]byte, 60)
		e := header.Ethernet(b)
		e.SetDestination(dst[:])
		e.SetSource(src[:])
		e.SetEtherType(0x86dd)
		return b
	}
	tests := []struct {
		name     string
		allow    []uint16
		in       int
		frame    []byte
		want     []int
		wantDrop string
	}{
		{name: "ipv6 not allowed", in: ifInside, frame: ipv6(stA.mac, stB.mac), want: []int{0, 0, 0}, wantDrop: "unsupported-ethertype"},
		{name: "ipv6 allowed", allow: []uint16{0x86dd}, in: ifInside, frame: ipv6(stA.mac, stB.mac), want: []int{0, 1, 0}},
		{name: "allowed and flooded", allow: []uint16{0x86dd}, in: ifInside, frame: ipv6(stA.mac, broadcastMAC), want: []int{0, 1, 1}},
		{name: "multicast source", in: ifInside, frame: udpFrame([6]byte{1, 0, 0x5e, 0, 0, 1}, stB.mac, stA.ip, stB.ip, 1, 2, ""),
			want: []int{0, 0, 0}, wantDrop: "l2-bad-source"},
		{name: "a unit's MAC as source", in: ifInside, frame: udpFrame(fwOutsideSbMAC, stB.mac, stA.ip, stB.ip, 1, 2, ""),
			want: []int{0, 0, 0}, wantDrop: "l2-bad-source"},
		{name: "to our MAC, not management", in: ifInside, frame: udpFrame(stA.mac, fwInsideMAC, stA.ip, stB.ip, 1, 2, ""),
			want: []int{0, 0, 0}, wantDrop: "to-self"},
		{name: "to the peer's standby MAC", in: ifInside, frame: udpFrame(stA.mac, fwInsideSbMAC, stA.ip, mgmtStandbyIP, 1, 2, ""),
			want: []int{0, 0, 0}, wantDrop: "l2-not-for-us"},
		{name: "truncated ARP", in: ifInside, frame: arpFrame(header.ARPRequest, broadcastMAC, stA.mac, stA.ip, zeroMAC, stB.ip)[:30],
			want: []int{0, 0, 0}, wantDrop: "truncated"},
		{name: "runt", in: ifInside, frame: make([]byte, 10), want: []int{0, 0, 0}, wantDrop: "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := transparentConfig()
			cfg.AllowEtherTypes = tt.allow
			l := bridgeLab(t, cfg)
			out := l.in(tt.in, tt.frame)
			if d := cmp.Diff(tt.want, counts(out)); d != "" {
				t.Fatalf("frames per interface (-want +got):\n%s", d)
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

func TestBridgeManagementAddress(t *testing.T) {
	l := bridgeLab(t, transparentConfig())
	// ARP for the management address on outside: answered, not bridged.
	out := l.in(ifOutside, arpFrame(header.ARPRequest, broadcastMAC, stB.mac, stB.ip, zeroMAC, mgmtIP))
	got := decode(t, only(t, out, ifOutside, 1)[0])
	want := pkt{EthSrc: macStr(fwOutsideMAC[:]), EthDst: macStr(stB.mac[:]), Type: "arp", ARPOp: header.ARPReply,
		Src: ap(mgmtIP, 0), Dst: ap(stB.ip, 0), Payload: macStr(fwOutsideMAC[:]) + ">" + macStr(stB.mac[:])}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ARP reply (-want +got):\n%s", d)
	}
	// Ping to it from inside: the reply goes back to A on inside.
	out = l.in(ifInside, icmpFrame(stA.mac, fwInsideMAC, stA.ip, mgmtIP, header.ICMPv4Echo, 5, 1))
	got = decode(t, only(t, out, ifInside, 1)[0])
	want = pkt{EthSrc: macStr(fwInsideMAC[:]), EthDst: macStr(stA.mac[:]), Type: "icmp",
		Src: ap(mgmtIP, 5), Dst: ap(stA.ip, 0), TTL: 64, Flags: header.ICMPv4EchoReply}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("echo reply (-want +got):\n%s", d)
	}
	// The active does not answer the standby address: the ARP is bridged.
	out = l.in(ifInside, arpFrame(header.ARPRequest, broadcastMAC, stA.mac, stA.ip, zeroMAC, mgmtStandbyIP))
	if d := cmp.Diff([]int{0, 1, 1}, counts(out)); d != "" {
		t.Errorf("ARP for the standby address on the active (-want +got):\n%s", d)
	}

	// The standby answers only its standby address, with the standby MAC.
	l.fw.SetActive(false)
	out = l.in(ifInside, arpFrame(header.ARPRequest, broadcastMAC, stA.mac, stA.ip, zeroMAC, mgmtStandbyIP))
	if p := decode(t, only(t, out, ifInside, 1)[0]); p.EthSrc != macStr(fwInsideSbMAC[:]) || p.Src != ap(mgmtStandbyIP, 0) {
		t.Errorf("standby ARP reply: %+v", p)
	}
	out = l.in(ifOutside, icmpFrame(stB.mac, fwOutsideSbMAC, stB.ip, mgmtStandbyIP, header.ICMPv4Echo, 6, 1))
	if p := decode(t, only(t, out, ifOutside, 1)[0]); p.Flags != header.ICMPv4EchoReply || p.EthDst != macStr(stB.mac[:]) {
		t.Errorf("standby echo reply: %+v", p)
	}
	nothing(t, l.in(ifInside, arpFrame(header.ARPRequest, broadcastMAC, stA.mac, stA.ip, zeroMAC, mgmtIP)))
	if d := cmp.Diff(map[string]uint64{"not-active": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

func TestStandbyBlocksEveryDataFrame(t *testing.T) {
	cfg := transparentConfig()
	cfg.AllowEtherTypes = []uint16{0x86dd}
	l := newLab(t, cfg)
	l.fw.SetActive(false)
	// A connection the standby knows through replication still does not pass.
	l.fw.ApplyChange(Change{Table: TableConn, Op: OpUpsert, Conn: ConnRecord{
		Orig:        Tuple{Proto: 6, Src: stA.ip, Dst: stB.ip, SrcPort: 40000, DstPort: 80},
		Reply:       Tuple{Proto: 6, Src: stB.ip, Dst: stA.ip, SrcPort: 80, DstPort: 40000},
		InInterface: "inside", OutInterface: "outside", State: TCPStateEstablished}})
	l.fw.ApplyChange(Change{Table: TableBridge, Op: OpUpsert, Bridge: BridgeRecord{MAC: stB.mac, Interface: "outside"}})
	ipv6 := make([]byte, 60)
	header.Ethernet(ipv6).SetDestination(broadcastMAC[:])
	header.Ethernet(ipv6).SetSource(stA.mac[:])
	header.Ethernet(ipv6).SetEtherType(0x86dd)
	frames := []struct {
		in    int
		frame []byte
	}{
		{ifInside, arpFrame(header.ARPRequest, broadcastMAC, stA.mac, stA.ip, zeroMAC, stB.ip)},
		{ifInside, tcpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 40000, 80, ACK|PSH, "data")},
		{ifOutside, tcpFrame(stB.mac, stA.mac, stB.ip, stA.ip, 80, 40000, ACK|PSH, "data")},
		{ifInside, tcpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 40001, 80, SYN, "")},
		{ifDMZ, ipv6},
		{ifOutside, icmpFrame(stB.mac, fwOutsideMAC, stB.ip, mgmtIP, header.ICMPv4Echo, 1, 1)},
	}
	for i, f := range frames {
		if out := l.in(f.in, f.frame); slices.ContainsFunc(out, func(fr [][]byte) bool { return len(fr) > 0 }) {
			t.Errorf("frame %d: the standby sent %v", i, counts(out))
		}
	}
	if d := cmp.Diff(map[string]uint64{"not-active": uint64(len(frames))}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{macStr(stB.mac[:]) + " outside"}, bridgeKeys(l.fw)); d != "" {
		t.Errorf("the standby learnt stations (-want +got):\n%s", d)
	}
}

// replicatedPair is an active transparent unit a with traffic and a
// standby b that applied a's change stream through the wire encoding.
func replicatedPair(t *testing.T) (a, b *lab) {
	t.Helper()
	a = newLab(t, transparentConfig())
	b = newLab(t, transparentConfig())
	b.fw.SetActive(false)
	a.fw.onChange = func(c Change) {
		got, err := ParseChange(c.AppendBinary(nil))
		if err != nil {
			t.Fatalf("ParseChange(%s %s): %v", c.Table, c.Op, err)
		}
		if err := b.fw.ApplyChange(got); err != nil {
			t.Fatalf("apply %s %s: %v", c.Table, c.Op, err)
		}
	}
	a.station(ifInside, stA)
	a.station(ifOutside, stB)
	a.station(ifDMZ, stC)
	a.station(ifInside, stA2)
	a.station(ifDMZ, stA2) // a move
	a.bseg(true, SYN, "")
	a.bseg(false, SYN|ACK, "")
	a.bseg(true, ACK, "")
	a.in(ifDMZ, udpFrame(stC.mac, stB.mac, stC.ip, stB.ip, 5000, 53, "q"))
	a.clk.Advance(6 * time.Minute)
	a.station(ifOutside, stB)
	a.station(ifInside, stA)
	a.maintainAll() // C and A2 age out
	return a, b
}

func TestBridgeReplicationGivesEqualDigests(t *testing.T) {
	a, b := replicatedPair(t)
	if d := cmp.Diff([]string{macStr(stA.mac[:]) + " inside", macStr(stB.mac[:]) + " outside"}, bridgeKeys(a.fw)); d != "" {
		t.Fatalf("active bridge table (-want +got):\n%s", d)
	}
	if d := cmp.Diff(bridgeKeys(a.fw), bridgeKeys(b.fw)); d != "" {
		t.Errorf("bridge tables differ (-active +standby):\n%s", d)
	}
	for _, tb := range []Table{TableBridge, TableConn} {
		if da, db := a.fw.Digest(tb), b.fw.Digest(tb); da != db || da == 0 {
			t.Errorf("%s digest: active %#x, standby %#x", tb, da, db)
		}
	}
	// A bulk sync into a third unit with stale entries gives the same.
	c := newLab(t, transparentConfig())
	c.fw.SetActive(false)
	c.fw.ApplyChange(Change{Table: TableBridge, Op: OpUpsert, Bridge: BridgeRecord{MAC: stC.mac, Interface: "dmz"}})
	bulk(t, a.fw, c.fw)
	for _, tb := range Tables {
		if da, dc := a.fw.Digest(tb), c.fw.Digest(tb); da != dc {
			t.Errorf("%s digest after bulk sync: active %#x, new standby %#x", tb, da, dc)
		}
	}
	if d := cmp.Diff(bridgeKeys(a.fw), bridgeKeys(c.fw)); d != "" {
		t.Errorf("bridge tables after bulk sync (-active +standby):\n%s", d)
	}
	// A digest notices a difference.
	before := b.fw.Digest(TableBridge)
	b.fw.ApplyChange(Change{Table: TableBridge, Op: OpUpsert, Bridge: BridgeRecord{MAC: stB.mac, Interface: "dmz"}})
	if b.fw.Digest(TableBridge) == before {
		t.Errorf("moving a station did not change the digest")
	}
}

func TestBridgeApplyChangeErrors(t *testing.T) {
	l := newLab(t, transparentConfig())
	for _, r := range []BridgeRecord{
		{MAC: stA.mac, Interface: "nope"},
		{MAC: broadcastMAC, Interface: "inside"},
		{MAC: zeroMAC, Interface: "inside"},
	} {
		if err := l.fw.ApplyChange(Change{Table: TableBridge, Op: OpUpsert, Bridge: r}); err == nil {
			t.Errorf("ApplyChange accepted %+v", r)
		}
	}
	if l.fw.BridgeCount() != 0 || l.fw.Digest(TableBridge) != 0 {
		t.Errorf("rejected records left %d entries, digest %#x", l.fw.BridgeCount(), l.fw.Digest(TableBridge))
	}
}

func TestTakeoverBridgesAtOnceWithoutFlooding(t *testing.T) {
	a, b := replicatedPair(t)
	a.fw.SetActive(false) // the old active fails
	b.clk.Advance(10 * time.Minute)
	b.fw.SetActive(true)
	b.maintainAll() // nothing ages out at the moment of takeover
	// The first frames after takeover go to the stations the replicated
	// table knows (C aged out, so its frames teach nothing about A or B),
	// each to its one interface, never flooded.
	only(t, b.in(ifDMZ, udpFrame(stC.mac, stB.mac, stC.ip, stB.ip, 7000, 53, "new")), ifOutside, 1)
	only(t, b.in(ifDMZ, arpFrame(header.ARPReply, stA.mac, stC.mac, stC.ip, stA.mac, stA.ip)), ifInside, 1)
	// Established data both ways.
	only(t, b.bseg(true, ACK|PSH, "after"), ifOutside, 1)
	only(t, b.bseg(false, ACK|PSH, "after"), ifInside, 1)
	if d := cmp.Diff(map[string]uint64{}, b.drops()); d != "" {
		t.Errorf("drops after takeover (-want +got):\n%s", d)
	}
	// Without the replicated table the same new flow floods: the test can tell.
	fresh := newLab(t, transparentConfig())
	fresh.station(ifInside, stA)
	if d := cmp.Diff([]int{0, 1, 1}, counts(fresh.in(ifInside, udpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 7000, 53, "new")))); d != "" {
		t.Errorf("a unit without the table (-want +got):\n%s", d)
	}
}

func TestAnnounceBridge(t *testing.T) {
	l := bridgeLab(t, transparentConfig())
	l.fw.SendGratuitousARP()
	type frame struct {
		Iface, Kind, Src, Dst, Addr string
	}
	var got []frame
	names := []string{"inside", "outside", "dmz"}
	for i, p := range l.ports {
		for _, fr := range p.Take() {
			e := header.Ethernet(fr)
			a := header.ARP(e.Payload())
			f := frame{Iface: names[i], Src: macStr(e.Source()), Dst: macStr(e.Destination())}
			switch {
			case e.EtherType() == EtherTypeRARP && a.IsValid() && a.Op() == rarpRequestReverse &&
				bytes.Equal(a.SenderHardwareAddress(), e.Source()) && bytes.Equal(a.TargetHardwareAddress(), e.Source()):
				f.Kind = "rarp"
				if len(fr) < minEthernetFrame {
					t.Errorf("RARP frame of %d bytes, want %d", len(fr), minEthernetFrame)
				}
			case e.EtherType() == header.EtherTypeARP && a.IsValid():
				f.Kind = "garp"
				f.Addr = netip.AddrFrom4(a.SenderProtocolAddress()).String() + "=" + netip.AddrFrom4(a.TargetProtocolAddress()).String()
			default:
				f.Kind = fmt.Sprintf("%#04x", e.EtherType())
			}
			got = append(got, f)
		}
	}
	bc := macStr(broadcastMAC[:])
	m := "198.18.5.1=198.18.5.1"
	want := []frame{
		{"dmz", "garp", macStr(fwDMZMAC[:]), bc, m},
		{"dmz", "rarp", macStr(stA.mac[:]), bc, ""},
		{"dmz", "rarp", macStr(stB.mac[:]), bc, ""},
		{"inside", "garp", macStr(fwInsideMAC[:]), bc, m},
		{"inside", "rarp", macStr(stB.mac[:]), bc, ""},
		{"inside", "rarp", macStr(stC.mac[:]), bc, ""},
		{"outside", "garp", macStr(fwOutsideMAC[:]), bc, m},
		{"outside", "rarp", macStr(stA.mac[:]), bc, ""},
		{"outside", "rarp", macStr(stC.mac[:]), bc, ""},
	}
	cmpFrame := func(x, y frame) int {
		return strings.Compare(x.Iface+x.Kind+x.Src, y.Iface+y.Kind+y.Src)
	}
	slices.SortFunc(got, cmpFrame)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("announcement frames (-want +got):\n%s", d)
	}
	// A standby announces nothing: it would pull traffic into its block.
	l.fw.SetActive(false)
	if n := l.fw.AnnounceBridge(); n != 0 {
		t.Errorf("standby AnnounceBridge sent %d frames", n)
	}
	// The burst is bounded.
	for i := range announceLimit + 10 {
		l.fw.ApplyChange(Change{Table: TableBridge, Op: OpUpsert, Bridge: BridgeRecord{
			MAC: [6]byte{0x02, 0xbb, 0, byte(i >> 16), byte(i >> 8), byte(i)}, Interface: "inside"}})
	}
	l.fw.SetActive(true)
	if n := l.fw.AnnounceBridge(); n != 2*announceLimit {
		t.Errorf("AnnounceBridge sent %d frames, want %d", n, 2*announceLimit)
	}
	for _, p := range l.ports {
		p.Take()
	}
}

func TestBridgeChangeRoundTripAndErrors(t *testing.T) {
	c := Change{Table: TableBridge, Op: OpUpsert, Bridge: BridgeRecord{MAC: stA.mac, Interface: "inside", Updated: 1234}}
	b := c.AppendBinary(nil)
	got, err := ParseChange(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(c, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	withMAC := func(m [6]byte) []byte {
		x := c
		x.Bridge.MAC = m
		return x.AppendBinary(nil)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"short", b[:len(b)-1], io.ErrUnexpectedEOF},
		{"multicast MAC", withMAC([6]byte{1, 0, 0x5e, 0, 0, 1}), ErrChangeField},
		{"zero MAC", withMAC(zeroMAC), ErrChangeField},
		{"no interface", func() []byte { x := c; x.Bridge.Interface = ""; return x.AppendBinary(nil) }(), ErrChangeField},
		{"table after bridge", func() []byte { x := slices.Clone(b); x[1] = byte(numTables); return x }(), ErrChangeTable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseChange(tt.in); !errors.Is(err, tt.want) {
				t.Errorf("ParseChange = %v, want %v", err, tt.want)
			}
		})
	}
	// The existing tables keep their ids on the wire.
	if TableConn != 1 || TableXlate != 2 || TableARP != 3 || TableBridge != 4 {
		t.Errorf("table ids changed: conn %d xlate %d arp %d bridge %d", TableConn, TableXlate, TableARP, TableBridge)
	}
}

func bridgeFastPathCases() []fastPathCase {
	establish := func(l *lab) {
		l.bseg(true, SYN, "")
		l.bseg(false, SYN|ACK, "")
		l.bseg(true, ACK, "")
	}
	payload := string(make([]byte, 1400))
	return []fastPathCase{
		{"bridged-tcp-out", establish, ifInside, nil, func(l *lab) []byte {
			return l.tcpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 40000, 80, ACK|PSH, payload)
		}},
		{"bridged-tcp-in", establish, ifOutside, nil, func(l *lab) []byte {
			return l.tcpFrame(stB.mac, stA.mac, stB.ip, stA.ip, 80, 40000, ACK|PSH, payload)
		}},
		{"bridged-arp", func(*lab) {}, ifInside, arpFrame(header.ARPReply, stB.mac, stA.mac, stA.ip, stB.mac, stB.ip), nil},
	}
}

func TestBridgeFastPathAllocatesNothing(t *testing.T) {
	for _, tc := range bridgeFastPathCases() {
		t.Run(tc.name, func(t *testing.T) {
			l := bridgeLab(t, transparentConfig())
			tc.setup(l)
			for _, it := range l.fw.ifs {
				it.port = memport.NewDiscard()
			}
			tmpl := tc.build(l)
			frame := make([]byte, len(tmpl))
			before := l.fw.InterfaceStats()
			allocs := testing.AllocsPerRun(1000, func() {
				copy(frame, tmpl)
				l.fw.HandleFrame(tc.in, frame)
			})
			if allocs != 0 {
				t.Errorf("%v allocations per frame, want 0", allocs)
			}
			var tx uint64
			for i, s := range l.fw.InterfaceStats() {
				tx += s.TxPackets - before[i].TxPackets
			}
			if tx < 1000 {
				t.Errorf("only %d frames bridged; the case does not exercise the fast path (drops %v)", tx, l.fw.Drops())
			}
		})
	}
}

func BenchmarkBridgeFastPath(b *testing.B) {
	for _, tc := range bridgeFastPathCases() {
		b.Run(tc.name, func(b *testing.B) {
			l := bridgeLab(b, transparentConfig())
			tc.setup(l)
			benchFrame(b, l, tc.in, tc.build(l), "ns/frame")
		})
	}
}

// FuzzBridgeFrame runs arbitrary frames through the transparent path of an
// active unit with learnt stations and an established connection. Every
// verdict must be counted, and every frame sent must be either the input
// unchanged (a bridge never rewrites) or an answer from the unit's own
// MAC on the ingress interface.
func FuzzBridgeFrame(f *testing.F) {
	f.Add(uint8(ifInside), tcpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 40000, 80, ACK|PSH, "x"))
	f.Add(uint8(ifOutside), tcpFrame(stB.mac, stA.mac, stB.ip, stA.ip, 80, 40000, ACK, ""))
	f.Add(uint8(ifInside), udpFrame(stA.mac, mac(99, 5), stA.ip, [4]byte{198, 18, 5, 99}, 5000, 53, "q"))
	f.Add(uint8(ifDMZ), icmpFrame(stC.mac, fwDMZMAC, stC.ip, mgmtIP, header.ICMPv4Echo, 1, 1))
	f.Add(uint8(ifOutside), arpFrame(header.ARPRequest, broadcastMAC, stB.mac, stB.ip, zeroMAC, mgmtIP))
	f.Add(uint8(ifOutside), icmpErrorFrame(stB.mac, stA.mac, stB.ip, stA.ip, header.ICMPv4DstUnreachable, 3,
		tcpFrame(stA.mac, stB.mac, stA.ip, stB.ip, 40000, 80, SYN, "")))
	f.Add(uint8(ifInside+4), arpFrame(header.ARPRequest, broadcastMAC, stA.mac, stA.ip, zeroMAC, mgmtStandbyIP))
	f.Fuzz(func(t *testing.T, ingress uint8, input []byte) {
		cfg := transparentConfig()
		cfg.AllowEtherTypes = []uint16{0x86dd}
		l := bridgeLab(t, cfg)
		l.bseg(true, SYN, "")
		l.take()
		if ingress >= 4 { // the high values play the standby
			l.fw.SetActive(false)
		}
		in := int(ingress % 4) // 3 is out of range on purpose
		frame := slices.Clone(input)
		before := l.fw.Drops()
		w := l.fw.workers.Get().(*worker)
		w.now = l.fw.now()
		r := w.handle(in, frame)
		w.flush()
		after := l.fw.Drops()
		if r != dropNone && after[r] != before[r]+1 {
			t.Fatalf("verdict %s not counted: before %d after %d", r, before[r], after[r])
		}
		for i, p := range l.ports {
			for _, fr := range p.Take() {
				src := [6]byte(header.Ethernet(fr).Source())
				if l.fw.isUnitMAC(src) {
					if i != in {
						t.Fatalf("an answer left on interface %d, not the ingress %d", i, in)
					}
					continue
				}
				if ingress >= 4 {
					t.Fatalf("the standby bridged a frame")
				}
				if i == in {
					t.Fatalf("a frame was bridged back out of its ingress interface %d", in)
				}
				if !bytes.HasPrefix(input, fr) || len(fr) < header.EthernetLen {
					t.Fatalf("bridged frame differs from the input:\n got % x\nwant % x", fr, input)
				}
			}
		}
	})
}

// TestBridgeConcurrentUse learns, moves, ages and bridges from two
// goroutines while snapshots, listings and announcements run, for the
// race detector.
func TestBridgeConcurrentUse(t *testing.T) {
	l := bridgeLab(t, transparentConfig())
	var changes atomic.Int64
	l.fw.onChange = func(Change) { changes.Add(1) }
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			for i := range 2000 {
				src := host{[4]byte{198, 18, 5, byte(100 + i%50)}, [6]byte{0x02, 0xcc, 0, 0, byte(g), byte(i % 50)}}
				ifIdx := (i / 50) % 3 // stations move between interfaces
				l.fw.HandleFrame(ifIdx, arpFrame(header.ARPRequest, broadcastMAC, src.mac, src.ip, zeroMAC, stB.ip))
				l.fw.HandleFrame(ifInside, udpFrame(stA.mac, stB.mac, stA.ip, stB.ip, uint16(20000+g*5000+i%500), 53, "q"))
				l.fw.HandleFrame(ifOutside, udpFrame(stB.mac, stA.mac, stB.ip, stA.ip, 53, uint16(20000+g*5000+i%500), "a"))
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			l.clk.Advance(time.Minute)
			l.fw.Maintain()
			l.fw.SnapshotChunk(TableBridge, 0, 512, func(Change) {})
			l.fw.BridgeEntries()
			l.fw.AnnounceBridge()
			l.fw.DigestsLocked(func(map[Table]uint64) {})
		}
	})
	wg.Wait()
	if changes.Load() == 0 {
		t.Error("the concurrent run recorded no change")
	}
	for _, p := range l.ports {
		p.Take()
	}
}
