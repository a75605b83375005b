package firewall

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/firewall/memport"
	"github.com/google/go-cmp/cmp"
)

// pattern returns n bytes that differ from offset to offset, so that a
// fragment put back in the wrong place breaks the checksum.
func pattern(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return string(b)
}

// withoutDF clears the DF bit of an IPv4 frame.
func withoutDF(frame []byte) []byte {
	ip := header.IPv4(frame[header.EthernetLen:])
	ip.SetFlagsFragmentOffset(0)
	ip.SetChecksum(ip.CalculateChecksum())
	return frame
}

// bigUDP is a UDP datagram of total IP length size, DF clear.
func bigUDP(ethSrc, ethDst [6]byte, src, dst [4]byte, sport, dport uint16, size int) []byte {
	return withoutDF(udpFrame(ethSrc, ethDst, src, dst, sport, dport, pattern(size-header.IPv4MinimumSize-header.UDPMinimumSize)))
}

// bigEcho is an ICMP echo (or reply) of total IP length size, DF clear.
func bigEcho(ethSrc, ethDst [6]byte, src, dst [4]byte, typ uint8, id uint16, size int) []byte {
	l4 := make([]byte, size-header.IPv4MinimumSize)
	ic := header.ICMPv4(l4)
	ic.SetType(typ)
	ic.SetIdent(id)
	ic.SetSequence(1)
	copy(ic.Payload(), pattern(len(ic.Payload())))
	return withoutDF(ipFrame(ethSrc, ethDst, header.ProtocolICMP, src, dst, 64, l4))
}

// fragmentsOf splits an unfragmented IPv4 frame into fragments of at most
// mtu bytes, as a host would.
func fragmentsOf(t testing.TB, frame []byte, mtu int) [][]byte {
	t.Helper()
	ip := header.IPv4(frame[header.EthernetLen:])
	hl := ip.HeaderLength()
	payload := ip.Payload()
	step := (mtu - hl) &^ 7
	var out [][]byte
	for off := 0; off < len(payload); off += step {
		n := min(step, len(payload)-off)
		fr := make([]byte, header.EthernetLen+hl+n)
		copy(fr, frame[:header.EthernetLen+hl])
		copy(fr[header.EthernetLen+hl:], payload[off:off+n])
		out = append(out, setFrag(fr, off, off+n < len(payload)))
	}
	return out
}

// setFrag sets a fragment's offset and MF bit, with a valid checksum.
func setFrag(fr []byte, off int, mf bool) []byte {
	ip := header.IPv4(fr[header.EthernetLen:])
	ip.SetTotalLength(uint16(len(fr) - header.EthernetLen))
	fo := uint16(off / 8)
	if mf {
		fo |= 0x2000
	}
	ip.SetFlagsFragmentOffset(fo)
	ip.SetChecksum(ip.CalculateChecksum())
	return fr
}

// reassemble puts the fragments a host received back together into one
// frame (what the host's stack would deliver), checking that they are
// fragments of one datagram with valid header checksums that cover it
// exactly once.
func reassemble(t testing.TB, frames [][]byte) []byte {
	t.Helper()
	type piece struct {
		off  int
		data []byte
		mf   bool
	}
	var ps []piece
	var first header.IPv4
	for _, fr := range frames {
		ip := header.IPv4(fr[header.EthernetLen:])
		if err := ip.Check(); err != nil || !ip.ChecksumValid() {
			t.Fatalf("fragment with a bad IP header (%v) % x", err, fr[:34])
		}
		if first == nil {
			first = ip
		}
		if ip.ID() != first.ID() || ip.SourceAddress() != first.SourceAddress() ||
			ip.DestinationAddress() != first.DestinationAddress() || ip.Protocol() != first.Protocol() || ip.TTL() != first.TTL() {
			t.Fatalf("fragments of different datagrams or TTLs")
		}
		ps = append(ps, piece{ip.FragmentOffset(), ip.Payload(), ip.MoreFragments()})
	}
	slices.SortFunc(ps, func(a, b piece) int { return a.off - b.off })
	var payload []byte
	for i, p := range ps {
		if p.off != len(payload) || p.mf != (i < len(ps)-1) {
			t.Fatalf("fragment %d at offset %d (MF %v) after %d bytes", i, p.off, p.mf, len(payload))
		}
		payload = append(payload, p.data...)
	}
	for _, fr := range frames {
		if header.IPv4(fr[header.EthernetLen:]).FragmentOffset() == 0 {
			first = header.IPv4(fr[header.EthernetLen:])
			whole := append([]byte(nil), fr[:header.EthernetLen+first.HeaderLength()]...)
			whole = append(whole, payload...)
			ip := header.IPv4(whole[header.EthernetLen:])
			ip.SetTotalLength(uint16(len(ip)))
			ip.SetFlagsFragmentOffset(0)
			ip.SetChecksum(ip.CalculateChecksum())
			return whole
		}
	}
	t.Fatal("no first fragment")
	return nil
}

// feed sends every frame into ifIdx and returns what each interface sent.
func (l *lab) feed(ifIdx int, frames ...[]byte) [][][]byte {
	out := make([][][]byte, len(l.ports))
	for _, fr := range frames {
		for i, o := range l.in(ifIdx, fr) {
			out[i] = append(out[i], o...)
		}
	}
	return out
}

func TestFragmentedThroughPAT(t *testing.T) {
	patIP := outsideIP
	tests := []struct {
		name           string
		out, back      []byte
		wantOut, wantB pkt
		n              int
	}{
		{
			name: "icmp echo 3000",
			out:  bigEcho(client.mac, fwInsideMAC, client.ip, server.ip, header.ICMPv4Echo, 777, 3000),
			back: bigEcho(server.mac, fwOutsideMAC, server.ip, patIP, header.ICMPv4EchoReply, 777, 3000),
			wantOut: pkt{EthSrc: macStr(fwOutsideMAC[:]), EthDst: macStr(server.mac[:]), Type: "icmp",
				Src: ap(patIP, 777), Dst: ap(server.ip, 0), TTL: 63, Flags: header.ICMPv4Echo},
			wantB: pkt{EthSrc: macStr(fwInsideMAC[:]), EthDst: macStr(client.mac[:]), Type: "icmp",
				Src: ap(server.ip, 777), Dst: ap(client.ip, 0), TTL: 63, Flags: header.ICMPv4EchoReply},
			n: 3,
		},
		{
			name: "udp 4000",
			out:  bigUDP(client.mac, fwInsideMAC, client.ip, server.ip, 4000, 53, 4000),
			back: bigUDP(server.mac, fwOutsideMAC, server.ip, patIP, 53, 4000, 4000),
			wantOut: pkt{EthSrc: macStr(fwOutsideMAC[:]), EthDst: macStr(server.mac[:]), Type: "udp",
				Src: ap(patIP, 4000), Dst: ap(server.ip, 53), TTL: 63, Payload: pattern(4000 - 28)},
			wantB: pkt{EthSrc: macStr(fwInsideMAC[:]), EthDst: macStr(client.mac[:]), Type: "udp",
				Src: ap(server.ip, 53), Dst: ap(client.ip, 4000), TTL: 63, Payload: pattern(4000 - 28)},
			n: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A port collision makes PAT really translate the port (ident).
			l := resolvedLab(t, labConfig())
			switch tt.wantOut.Type {
			case "icmp":
				l.in(ifInside, icmpFrame(client2.mac, fwInsideMAC, client2.ip, server.ip, header.ICMPv4Echo, 777, 1))
			default:
				l.in(ifInside, udpFrame(client2.mac, fwInsideMAC, client2.ip, server.ip, 4000, 53, "x"))
			}
			frags := fragmentsOf(t, tt.out, 1500)
			if len(frags) != tt.n {
				t.Fatalf("%d fragments, want %d", len(frags), tt.n)
			}
			got := only(t, l.feed(ifInside, frags...), ifOutside, tt.n)
			whole := reassemble(t, got)
			p := decode(t, whole)
			// The mapped port (ident) is the one PAT picked, the real one
			// being taken by client2.
			l4 := header.IPv4(whole[header.EthernetLen:]).Payload()
			mapped := header.UDP(l4).SourcePort()
			if tt.wantOut.Type == "icmp" {
				mapped = header.ICMPv4(l4).Ident()
			}
			if mapped == 777 || mapped == 4000 {
				t.Fatalf("PAT kept the real port %d; the test wants a translated one", mapped)
			}
			wantOut := tt.wantOut
			wantOut.Src = ap(patIP, mapped)
			if diff := cmp.Diff(wantOut, p); diff != "" {
				t.Errorf("outbound datagram (-want +got):\n%s", diff)
			}
			// The reply, to the mapped port, comes back untranslated.
			back := tt.back
			bip := header.IPv4(back[header.EthernetLen:])
			if tt.wantOut.Type == "icmp" {
				header.ICMPv4(bip.Payload()).SetIdent(mapped)
				ic := header.ICMPv4(bip.Payload())
				ic.SetChecksum(0)
				ic.SetChecksum(ic.CalculateChecksum())
			} else {
				u := header.UDP(bip.Payload())
				u.SetDestinationPort(mapped)
				u.SetChecksum(0)
				u.SetChecksum(u.CalculateChecksum(bip.SourceAddress(), bip.DestinationAddress()))
			}
			// Out of order this time: last fragment first.
			frags = fragmentsOf(t, back, 1500)
			slices.Reverse(frags)
			got = only(t, l.feed(ifOutside, frags...), ifInside, tt.n)
			if diff := cmp.Diff(tt.wantB, decode(t, reassemble(t, got))); diff != "" {
				t.Errorf("reply datagram (-want +got):\n%s", diff)
			}
			if d := l.drops(); len(d) != 0 {
				t.Errorf("drops %v, want none", d)
			}
			if s := l.fw.Fragments(); s != (FragmentStats{}) {
				t.Errorf("fragments still held: %+v", s)
			}
		})
	}
}

func TestFragmentsHeldUntilWhole(t *testing.T) {
	l := resolvedLab(t, labConfig())
	frags := fragmentsOf(t, bigUDP(client.mac, fwInsideMAC, client.ip, server.ip, 4000, 53, 4000), 1500)
	nothing(t, l.feed(ifInside, frags[1], frags[0]))
	if s := l.fw.Fragments(); s.Fragments != 2 || s.Datagrams != 1 || s.Memory != 2*smallBufSize {
		t.Errorf("held %+v, want 2 fragments of 1 datagram in 2 small buffers", s)
	}
	// A duplicate is dropped; the datagram is not harmed.
	dup := append([]byte(nil), frags[1]...)
	nothing(t, l.in(ifInside, dup))
	got := only(t, l.in(ifInside, frags[2]), ifOutside, 3)
	if p := decode(t, reassemble(t, got)); p.Payload != pattern(4000-28) {
		t.Errorf("payload damaged")
	}
	if diff := cmp.Diff(map[string]uint64{"fragment-duplicate": 1}, l.drops()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
}

func TestFragmentFirstOnlyDecides(t *testing.T) {
	// Outside to inside is refused by the security levels: every fragment
	// is dropped for the first one's reason.
	l := resolvedLab(t, labConfig())
	frags := fragmentsOf(t, bigUDP(server.mac, fwOutsideMAC, server.ip, staticMapped, 53, 4000, 4000), 1500)
	nothing(t, l.feed(ifOutside, frags...))
	if diff := cmp.Diff(map[string]uint64{"security-level": 3}, l.drops()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	if s := l.fw.Fragments(); s != (FragmentStats{}) {
		t.Errorf("fragments still held: %+v", s)
	}
}

func TestFragmentAttacks(t *testing.T) {
	udp := func() []byte { return bigUDP(client.mac, fwInsideMAC, client.ip, server.ip, 4000, 53, 4000) }
	tests := []struct {
		name  string
		cfg   func(*Config)
		frags func(t *testing.T) [][]byte
		drops map[string]uint64
	}{
		{
			name: "overlap drops the datagram",
			frags: func(t *testing.T) [][]byte {
				f := fragmentsOf(t, udp(), 1500)
				// Teardrop: a second fragment that starts inside the first.
				bad := append([]byte(nil), f[1]...)
				setFrag(bad, 1472, true)
				return [][]byte{f[0], bad, f[1], f[2]}
			},
			// f[0] held and the overlapping one, then f[1] and f[2] start
			// a new datagram that lacks its first fragment.
			drops: map[string]uint64{"fragment-overlap": 2},
		},
		{
			name:  "chain too long",
			frags: func(t *testing.T) [][]byte { return fragmentsOf(t, udp(), 20+128) }, // 32 fragments
			drops: map[string]uint64{"fragment-chain-too-long": 25},                     // 24 held and the 25th; the last 7 start again
		},
		{
			name: "tiny first tcp fragment",
			frags: func(t *testing.T) [][]byte {
				syn := withoutDF(tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 1234, 80, header.TCPFlagSYN, pattern(100)))
				return fragmentsOf(t, syn, 20+16) // 16 bytes of a 20-byte TCP header
			},
			drops: map[string]uint64{"fragment-too-small": 1, "fragment-overlap": 0},
		},
		{
			name: "tcp fragment at offset 8",
			frags: func(t *testing.T) [][]byte {
				syn := withoutDF(tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 1234, 80, header.TCPFlagSYN, pattern(100)))
				return [][]byte{fragmentsOf(t, syn, 20+8)[1]} // payload bytes 8-15
			},
			drops: map[string]uint64{"fragment-too-small": 1},
		},
		{
			name: "fragment not a multiple of 8",
			frags: func(t *testing.T) [][]byte {
				f := fragmentsOf(t, udp(), 1500)
				return [][]byte{setFrag(f[0][:len(f[0])-3], 0, true)}
			},
			drops: map[string]uint64{"invalid-fragment": 1},
		},
		{
			name: "two ends",
			frags: func(t *testing.T) [][]byte {
				f := fragmentsOf(t, udp(), 1500)
				early := append([]byte(nil), f[1]...)
				setFrag(early, 1480, false) // claims the datagram ends at 2960
				return [][]byte{f[0], f[2], early}
			},
			drops: map[string]uint64{"invalid-fragment": 3},
		},
		{
			name: "udp length disagrees with the fragments",
			frags: func(t *testing.T) [][]byte {
				f := fragmentsOf(t, udp(), 1500)
				return [][]byte{f[0], setFrag(f[1], 1480, false)} // ends at 2960, UDP says 3980
			},
			drops: map[string]uint64{"invalid-fragment": 2},
		},
		{
			name: "interface queue full",
			cfg:  func(c *Config) { c.Fragment.Size = 5 },
			frags: func(t *testing.T) [][]byte {
				var out [][]byte
				for id := range 8 {
					f := fragmentsOf(t, udp(), 1500)
					header.IPv4(f[0][header.EthernetLen:]).SetID(uint16(id))
					out = append(out, setFrag(f[0], 0, true))
				}
				return out
			},
			drops: map[string]uint64{"fragment-queue-full": 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := labConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			l := resolvedLab(t, cfg)
			frags := tt.frags(t)
			nothing(t, l.feed(ifInside, frags...))
			want := map[string]uint64{}
			for k, v := range tt.drops {
				if v != 0 {
					want[k] = v
				}
			}
			if diff := cmp.Diff(want, l.drops()); diff != "" {
				t.Errorf("drops (-want +got):\n%s", diff)
			}
			// Whatever is still held goes at the timeout.
			l.clk.Advance(6 * time.Second)
			l.fw.Maintain()
			if s := l.fw.Fragments(); s != (FragmentStats{}) {
				t.Errorf("after the timeout still held: %+v", s)
			}
		})
	}
}

func TestFragmentTimeoutFreesMemory(t *testing.T) {
	l := resolvedLab(t, labConfig())
	frags := fragmentsOf(t, bigUDP(client.mac, fwInsideMAC, client.ip, server.ip, 4000, 53, 4000), 1500)
	nothing(t, l.feed(ifInside, frags[0], frags[1]))
	l.clk.Advance(4 * time.Second)
	l.fw.Maintain()
	if s := l.fw.Fragments(); s.Fragments != 2 {
		t.Fatalf("held %+v before the timeout, want 2 fragments", s)
	}
	l.clk.Advance(2 * time.Second)
	l.fw.Maintain()
	if s := l.fw.Fragments(); s != (FragmentStats{}) {
		t.Errorf("held %+v after the timeout, want nothing", s)
	}
	// The last fragment alone does not complete anything.
	nothing(t, l.in(ifInside, frags[2]))
	if diff := cmp.Diff(map[string]uint64{"fragment-timeout": 2}, l.drops()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
	// A datagram that expired without a Maintain in between is not
	// completed by a late fragment either.
	l.clk.Advance(6 * time.Second)
	nothing(t, l.feed(ifInside, frags[0], frags[1]))
	if diff := cmp.Diff(map[string]uint64{"fragment-timeout": 3}, l.drops()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}
}

func TestFragmentMemoryBudget(t *testing.T) {
	// A flood of first fragments with random ids from two interfaces,
	// none ever completed: the unit holds at most Memory bytes.
	cfg := labConfig()
	cfg.Fragment = FragmentLimits{Size: 1000, Memory: 64 << 10}
	l := resolvedLab(t, cfg)
	rnd := rand.New(rand.NewPCG(1, 2))
	udp := bigUDP(client.mac, fwInsideMAC, client.ip, server.ip, 4000, 53, 4000)
	first := fragmentsOf(t, udp, 1500)[0]
	udp2 := bigUDP(dmzHost.mac, fwDMZMAC, dmzHost.ip, server.ip, 4000, 53, 4000)
	first2 := fragmentsOf(t, udp2, 1500)[0]
	const n = 2000
	maxMem := 0
	for i := range n {
		fr, in := first, ifInside
		if i%2 == 1 {
			fr, in = first2, ifDMZ
		}
		header.IPv4(fr[header.EthernetLen:]).SetID(uint16(rnd.Uint32()))
		setFrag(fr, 0, true)
		nothing(t, l.in(in, fr))
		maxMem = max(maxMem, l.fw.Fragments().Memory)
	}
	s := l.fw.Fragments()
	t.Logf("after %d incomplete datagrams: %+v, drops %v", n, s, l.drops())
	if maxMem > 64<<10 {
		t.Errorf("held up to %d bytes, budget %d", maxMem, 64<<10)
	}
	held := (64 << 10) / smallBufSize
	if s.Fragments != held {
		t.Errorf("%d fragments held, want %d", s.Fragments, held)
	}
	// Duplicate random ids complete nothing (all are first fragments), so
	// every fragment is either held or refused.
	if got := l.drops()["fragment-queue-full"] + l.drops()["fragment-duplicate"]; got != uint64(n-held) {
		t.Errorf("%d refused, want %d", got, n-held)
	}
}

func TestFragNeededAndEgressFragmentation(t *testing.T) {
	cfg := labConfig()
	cfg.Interfaces[ifInside].MTU = 9000
	l := resolvedLab(t, cfg)

	// DF set: refused with ICMP fragmentation needed carrying the
	// outside MTU, quoting the packet as the client sent it.
	df := udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 4000, 53, pattern(3000))
	got := only(t, l.in(ifInside, append([]byte(nil), df...)), ifInside, 1)
	p := decode(t, got[0])
	want := pkt{EthSrc: macStr(fwInsideMAC[:]), EthDst: macStr(client.mac[:]), Type: "icmp",
		Src: ap(insideIP, 0), Dst: ap(client.ip, 0), TTL: 64, Flags: header.ICMPv4DstUnreachable}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("ICMP error (-want +got):\n%s", diff)
	}
	ic := header.ICMPv4(header.IPv4(got[0][header.EthernetLen:]).Payload())
	if ic.Code() != header.ICMPv4FragNeeded || ic.Sequence() != 1500 {
		t.Errorf("ICMP code %d next-hop MTU %d, want %d and 1500", ic.Code(), ic.Sequence(), header.ICMPv4FragNeeded)
	}
	if q := ic.Payload(); !bytes.Equal(q, df[header.EthernetLen:header.EthernetLen+28]) {
		t.Errorf("quoted % x, want the original header and 8 bytes", q)
	}
	if diff := cmp.Diff(map[string]uint64{"fragmentation-needed": 1}, l.drops()); diff != "" {
		t.Errorf("drops (-want +got):\n%s", diff)
	}

	// DF clear: fragmented to the outside MTU, NAT applied to the whole.
	frames := only(t, l.in(ifInside, withoutDF(df)), ifOutside, 3)
	for _, fr := range frames {
		if n := len(fr) - header.EthernetLen; n > 1500 {
			t.Errorf("fragment of %d bytes on a 1500 MTU", n)
		}
	}
	p = decode(t, reassemble(t, frames))
	if p.Src != ap(outsideIP, 4000) || p.Payload != pattern(3000) || p.TTL != 63 {
		t.Errorf("reassembled %+v", p)
	}
}

func TestJumboFramesForwarded(t *testing.T) {
	cfg := labConfig()
	cfg.Interfaces[ifInside].MTU = 9000
	cfg.Interfaces[ifOutside].MTU = 9000
	l := resolvedLab(t, cfg)
	fr := udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 4000, 53, pattern(9000-28))
	if len(fr) > MaxFrameSize {
		t.Fatalf("a 9000-byte packet does not fit MaxFrameSize")
	}
	got := only(t, l.in(ifInside, fr), ifOutside, 1)
	if n := len(got[0]) - header.EthernetLen; n != 9000 {
		t.Errorf("forwarded %d bytes, want 9000", n)
	}
	if p := decode(t, got[0]); p.Payload != pattern(9000-28) {
		t.Errorf("payload damaged")
	}
	if cfg.MaxFrameLen() != 9018 {
		t.Errorf("MaxFrameLen %d, want 9018", cfg.MaxFrameLen())
	}
}

func TestMTUConfig(t *testing.T) {
	cfg := labConfig()
	cfg.Interfaces[0].MTU = 9001
	if _, err := New(cfg, Options{}); err == nil {
		t.Error("MTU 9001 accepted")
	}
	cfg.Interfaces[0].MTU = 575
	if _, err := New(cfg, Options{}); err == nil {
		t.Error("MTU 575 accepted")
	}
	if got := labConfig().MaxFrameLen(); got != 1518 {
		t.Errorf("default MaxFrameLen %d, want 1518", got)
	}
}

func TestFragmentedPingToTheUnit(t *testing.T) {
	l := resolvedLab(t, labConfig())
	frags := fragmentsOf(t, bigEcho(client.mac, fwInsideMAC, client.ip, insideIP, header.ICMPv4Echo, 9, 3000), 1500)
	got := only(t, l.feed(ifInside, frags...), ifInside, 3)
	want := pkt{EthSrc: macStr(fwInsideMAC[:]), EthDst: macStr(client.mac[:]), Type: "icmp",
		Src: ap(insideIP, 9), Dst: ap(client.ip, 0), TTL: 64, Flags: header.ICMPv4EchoReply}
	if diff := cmp.Diff(want, decode(t, reassemble(t, got))); diff != "" {
		t.Errorf("echo reply (-want +got):\n%s", diff)
	}
}

func TestFragmentsBridged(t *testing.T) {
	l := bridgeLab(t, transparentConfig())
	echo := bigEcho(stA.mac, stB.mac, stA.ip, stB.ip, header.ICMPv4Echo, 5, 3000)
	frags := fragmentsOf(t, echo, 1500)
	sent := make([][]byte, len(frags))
	for i, f := range frags {
		sent[i] = append([]byte(nil), f...)
	}
	slices.Reverse(frags)
	got := only(t, l.feed(ifInside, frags...), ifOutside, 3)
	for _, fr := range got {
		if !slices.ContainsFunc(sent, func(s []byte) bool { return bytes.Equal(s, fr) }) {
			t.Errorf("bridged fragment changed: % x", fr[:34])
		}
	}
	decode(t, reassemble(t, got))
	// The reply goes back through the connection the first fragment made.
	reply := fragmentsOf(t, bigEcho(stB.mac, stA.mac, stB.ip, stA.ip, header.ICMPv4EchoReply, 5, 3000), 1500)
	only(t, l.feed(ifOutside, reply...), ifInside, 3)
	if d := l.drops(); len(d) != 0 {
		t.Errorf("drops %v, want none", d)
	}
}

// BenchmarkFragmentedDatagram measures a 4000-byte UDP datagram in three
// fragments through PAT, in order, on an established connection.
func BenchmarkFragmentedDatagram(b *testing.B) {
	l := resolvedLab(b, labConfig())
	for _, it := range l.fw.ifs {
		it.port = memport.NewDiscard()
	}
	frags := fragmentsOf(b, bigUDP(client.mac, fwInsideMAC, client.ip, server.ip, 4000, 53, 4000), 1500)
	bufs := make([][]byte, len(frags))
	for i, f := range frags {
		bufs[i] = make([]byte, len(f))
	}
	b.ReportAllocs()
	for b.Loop() {
		for i, f := range frags {
			copy(bufs[i], f)
			l.fw.HandleFrame(ifInside, bufs[i])
		}
	}
	if d := l.fw.Drops(); len(d) != 0 {
		b.Fatalf("drops %v", d)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/datagram")
}
