package firewall

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/firewall/memport"
)

var (
	_ Port = (*memport.Port)(nil)
	_ Port = (*memport.Recorder)(nil)
	_ Port = (*memport.Discard)(nil)
)

// host is a simulated machine on one of the lab's networks.
type host struct {
	ip  [4]byte
	mac [6]byte
}

func mac(last byte, net byte) [6]byte { return [6]byte{0x02, 0xaa, 0, 0, net, last} }

var (
	// inside 198.18.1.0/24
	fwInsideMAC   = [6]byte{0x02, 0xfa, 0, 0, 1, 1}
	fwInsideSbMAC = [6]byte{0x02, 0xfb, 0, 0, 1, 2}
	client        = host{[4]byte{198, 18, 1, 10}, mac(10, 1)}
	client2       = host{[4]byte{198, 18, 1, 11}, mac(11, 1)}
	staticHost    = host{[4]byte{198, 18, 1, 50}, mac(50, 1)}
	// outside 198.19.2.0/24
	fwOutsideMAC   = [6]byte{0x02, 0xfa, 0, 0, 2, 1}
	fwOutsideSbMAC = [6]byte{0x02, 0xfb, 0, 0, 2, 2}
	server         = host{[4]byte{198, 19, 2, 20}, mac(20, 2)}
	router         = host{[4]byte{198, 19, 2, 254}, mac(254, 2)}
	farServer      = [4]byte{198, 19, 100, 5} // behind router
	// dmz 198.18.3.0/24
	fwDMZMAC   = [6]byte{0x02, 0xfa, 0, 0, 3, 1}
	fwDMZSbMAC = [6]byte{0x02, 0xfb, 0, 0, 3, 2}
	dmzHost    = host{[4]byte{198, 18, 3, 30}, mac(30, 3)}

	insideIP       = [4]byte{198, 18, 1, 1}
	insideStandby  = [4]byte{198, 18, 1, 2}
	outsideIP      = [4]byte{198, 19, 2, 1}
	outsideStandby = [4]byte{198, 19, 2, 2}
	staticMapped   = [4]byte{198, 19, 2, 50}
)

const (
	ifInside  = 0
	ifOutside = 1
	ifDMZ     = 2
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// labConfig is the test lab: inside (100) with PAT to outside (0), a
// static NAT for 198.18.1.50, a dmz (50), and a static route behind a
// router on the outside.
func labConfig() Config {
	return Config{
		Interfaces: []InterfaceConfig{
			{Name: "inside", SecurityLevel: 100, Prefix: pfx("198.18.1.1/24"), StandbyAddr: addr("198.18.1.2"),
				ActiveMAC: fwInsideMAC[:], StandbyMAC: fwInsideSbMAC[:]},
			{Name: "outside", SecurityLevel: 0, Prefix: pfx("198.19.2.1/24"), StandbyAddr: addr("198.19.2.2"),
				ActiveMAC: fwOutsideMAC[:], StandbyMAC: fwOutsideSbMAC[:]},
			{Name: "dmz", SecurityLevel: 50, Prefix: pfx("198.18.3.1/24"), StandbyAddr: addr("198.18.3.2"),
				ActiveMAC: fwDMZMAC[:], StandbyMAC: fwDMZSbMAC[:]},
		},
		Routes: []Route{{Interface: "outside", Prefix: pfx("198.19.100.0/24"), NextHop: addr("198.19.2.254")}},
		NAT: []NATRule{
			{Kind: NATStatic, RealInterface: "inside", Real: pfx("198.18.1.50/32"), MappedInterface: "outside", Mapped: addr("198.19.2.50")},
			{Kind: NATDynamicPAT, RealInterface: "inside", Real: pfx("198.18.1.0/24"), MappedInterface: "outside"},
		},
	}
}

// lab is one firewall with recorder ports and a manual clock.
type lab struct {
	t       *testing.T
	fw      *Firewall
	clk     *ManualClock
	ports   []*memport.Recorder
	changes []Change
	hosts   map[tcpHostKey]*tcpHost // simulated TCP endpoints (tcpsim_test.go)
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newLab(t testing.TB, cfg Config) *lab {
	t.Helper()
	l := &lab{clk: NewManualClock(epoch)}
	if tt, ok := t.(*testing.T); ok {
		l.t = tt
	}
	fw, err := New(cfg, Options{Clock: l.clk, OnChange: func(c Change) { l.changes = append(l.changes, c) }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	l.fw = fw
	for _, ic := range cfg.Interfaces {
		r := memport.NewRecorder()
		if err := fw.Attach(ic.Name, r); err != nil {
			t.Fatal(err)
		}
		l.ports = append(l.ports, r)
	}
	fw.SetActive(true)
	return l
}

// in feeds frame into interface ifIdx and returns what each interface sent.
func (l *lab) in(ifIdx int, frame []byte) [][][]byte {
	l.fw.HandleFrame(ifIdx, frame)
	out := make([][][]byte, len(l.ports))
	for i, p := range l.ports {
		out[i] = p.Take()
	}
	l.observe(out)
	return out
}

// neighbour makes the firewall learn h on ifIdx by h ARPing for the
// firewall's address.
func (l *lab) neighbour(ifIdx int, h host) {
	it := l.fw.ifs[ifIdx]
	l.in(ifIdx, arpFrame(header.ARPRequest, broadcastMAC, h.mac, h.ip, zeroMAC, it.addr))
}

func arpFrame(op uint16, ethDst, sha [6]byte, spa [4]byte, tha [6]byte, tpa [4]byte) []byte {
	b := make([]byte, 60) // minimum Ethernet frame with padding
	e := header.Ethernet(b)
	e.SetDestination(ethDst[:])
	e.SetSource(sha[:])
	e.SetEtherType(header.EtherTypeARP)
	a := header.ARP(e.Payload())
	a.SetIPv4OverEthernet()
	a.SetOp(op)
	a.SetSender(sha[:], spa)
	a.SetTarget(tha[:], tpa)
	return b
}

// ipFrame wraps an L4 payload in IPv4 and Ethernet with valid checksums.
func ipFrame(ethSrc, ethDst [6]byte, proto uint8, src, dst [4]byte, ttl uint8, l4 []byte) []byte {
	b := make([]byte, header.EthernetLen+header.IPv4MinimumSize+len(l4))
	e := header.Ethernet(b)
	e.SetDestination(ethDst[:])
	e.SetSource(ethSrc[:])
	e.SetEtherType(header.EtherTypeIPv4)
	ip := header.IPv4(e.Payload())
	ip.SetVersionAndHeaderLength(header.IPv4MinimumSize)
	ip.SetTotalLength(uint16(len(ip)))
	ip.SetID(7)
	ip.SetFlagsFragmentOffset(0x4000)
	ip.SetTTL(ttl)
	ip.SetProtocol(proto)
	ip.SetSourceAddress(src)
	ip.SetDestinationAddress(dst)
	ip.SetChecksum(ip.CalculateChecksum())
	copy(ip[header.IPv4MinimumSize:], l4)
	switch proto {
	case header.ProtocolTCP:
		t := header.TCP(ip.Payload())
		t.SetChecksum(t.CalculateChecksum(src, dst))
	case header.ProtocolUDP:
		u := header.UDP(ip.Payload())
		u.SetChecksum(u.CalculateChecksum(src, dst))
	case header.ProtocolICMP:
		ic := header.ICMPv4(ip.Payload())
		ic.SetChecksum(ic.CalculateChecksum())
	}
	return b
}

func tcpFrame(ethSrc, ethDst [6]byte, src, dst [4]byte, sport, dport uint16, flags uint8, payload string) []byte {
	l4 := make([]byte, header.TCPMinimumSize+len(payload))
	t := header.TCP(l4)
	t.SetSourcePort(sport)
	t.SetDestinationPort(dport)
	t.SetSequenceNumber(1000)
	t.SetAckNumber(2000)
	t.SetDataOffset(header.TCPMinimumSize)
	t.SetFlags(flags)
	t.SetWindowSize(65535)
	copy(l4[header.TCPMinimumSize:], payload)
	return ipFrame(ethSrc, ethDst, header.ProtocolTCP, src, dst, 64, l4)
}

func udpFrame(ethSrc, ethDst [6]byte, src, dst [4]byte, sport, dport uint16, payload string) []byte {
	l4 := make([]byte, header.UDPMinimumSize+len(payload))
	u := header.UDP(l4)
	u.SetSourcePort(sport)
	u.SetDestinationPort(dport)
	u.SetLength(uint16(len(l4)))
	copy(l4[header.UDPMinimumSize:], payload)
	return ipFrame(ethSrc, ethDst, header.ProtocolUDP, src, dst, 64, l4)
}

func icmpFrame(ethSrc, ethDst [6]byte, src, dst [4]byte, typ uint8, id, seq uint16) []byte {
	l4 := make([]byte, header.ICMPv4MinimumSize+8)
	ic := header.ICMPv4(l4)
	ic.SetType(typ)
	ic.SetIdent(id)
	ic.SetSequence(seq)
	copy(ic.Payload(), "pingdata")
	return ipFrame(ethSrc, ethDst, header.ProtocolICMP, src, dst, 64, l4)
}

func withTTL(frame []byte, ttl uint8) []byte {
	ip := header.IPv4(frame[header.EthernetLen:])
	ip.SetTTL(ttl)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
	return frame
}

// pkt is the decoded summary of a frame, for comparisons with cmp.Diff.
type pkt struct {
	EthSrc, EthDst string
	Type           string // "arp" or the IP protocol name
	Src, Dst       string
	TTL            uint8
	Flags          uint8 // TCP flags or ICMP type
	ARPOp          uint16
	Payload        string
}

func macStr(m []byte) string { return net.HardwareAddr(m).String() }
func ap(a [4]byte, p uint16) string {
	return netip.AddrPortFrom(netip.AddrFrom4(a), p).String()
}

// decode summarises frame and verifies every checksum by a full recompute.
func decode(t testing.TB, frame []byte) pkt {
	t.Helper()
	e := header.Ethernet(frame)
	p := pkt{EthSrc: macStr(e.Source()), EthDst: macStr(e.Destination())}
	switch e.EtherType() {
	case header.EtherTypeARP:
		a := header.ARP(e.Payload())
		if !a.IsValid() {
			t.Fatalf("invalid ARP frame % x", frame)
		}
		p.Type, p.ARPOp = "arp", a.Op()
		p.Src = ap(a.SenderProtocolAddress(), 0)
		p.Dst = ap(a.TargetProtocolAddress(), 0)
		p.Payload = macStr(a.SenderHardwareAddress()) + ">" + macStr(a.TargetHardwareAddress())
		return p
	case header.EtherTypeIPv4:
	default:
		t.Fatalf("unexpected EtherType %#x", e.EtherType())
	}
	ip := header.IPv4(e.Payload())
	if err := ip.Check(); err != nil {
		t.Fatalf("bad IPv4: %v", err)
	}
	if !ip.ChecksumValid() {
		t.Errorf("IPv4 header checksum does not verify")
	}
	p.TTL = ip.TTL()
	pl := ip.Payload()
	src, dst := ip.SourceAddress(), ip.DestinationAddress()
	switch ip.Protocol() {
	case header.ProtocolTCP:
		tc := header.TCP(pl)
		if header.Checksum(pl, header.PseudoHeaderChecksum(header.ProtocolTCP, src, dst, uint16(len(pl)))) != 0xffff {
			t.Errorf("TCP checksum does not verify")
		}
		p.Type, p.Flags = "tcp", tc.Flags()
		p.Src, p.Dst = ap(src, tc.SourcePort()), ap(dst, tc.DestinationPort())
		p.Payload = string(pl[tc.DataOffset():])
	case header.ProtocolUDP:
		u := header.UDP(pl)
		if u.Checksum() != 0 && header.Checksum(pl, header.PseudoHeaderChecksum(header.ProtocolUDP, src, dst, uint16(len(pl)))) != 0xffff {
			t.Errorf("UDP checksum does not verify")
		}
		p.Type = "udp"
		p.Src, p.Dst = ap(src, u.SourcePort()), ap(dst, u.DestinationPort())
		p.Payload = string(pl[header.UDPMinimumSize:])
	case header.ProtocolICMP:
		ic := header.ICMPv4(pl)
		if header.Checksum(pl, 0) != 0xffff {
			t.Errorf("ICMP checksum does not verify")
		}
		p.Type, p.Flags = "icmp", ic.Type()
		p.Src, p.Dst = ap(src, ic.Ident()), ap(dst, 0)
		if ic.IsError() {
			p.Src = ap(src, 0)
		}
	}
	return p
}

// only returns the frames of out, requiring that exactly n left on ifIdx
// and none elsewhere.
func only(t testing.TB, out [][][]byte, ifIdx, n int) [][]byte {
	t.Helper()
	for i, frames := range out {
		want := 0
		if i == ifIdx {
			want = n
		}
		if len(frames) != want {
			var got []pkt
			for _, fr := range frames {
				got = append(got, decode(t, fr))
			}
			t.Fatalf("interface %d sent %d frames, want %d: %+v", i, len(frames), want, got)
		}
	}
	return out[ifIdx]
}

func nothing(t testing.TB, out [][][]byte) { t.Helper(); only(t, out, 0, 0) }

// drops returns the drop counters as names, for cmp.Diff.
func (l *lab) drops() map[string]uint64 {
	m := map[string]uint64{}
	for r, v := range l.fw.Drops() {
		m[r.String()] = v
	}
	return m
}

// snapshot calls emit for every entry of table t through SnapshotChunk, the
// bulk-sync path the unit uses, until emit returns false.
func snapshot(fw *Firewall, t Table, emit func(Change) bool) {
	stop := false
	for cur, done := uint64(0), false; !done && !stop; {
		cur, done = fw.SnapshotChunk(t, cur, 512, func(c Change) {
			if !stop && !emit(c) {
				stop = true
			}
		})
	}
}
