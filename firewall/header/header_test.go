package header

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// buildIPv4 returns an IPv4 packet carrying payload with a correct header
// checksum. Addresses are from 198.18.0.0/15.
func buildIPv4(proto uint8, src, dst [4]byte, payload []byte) IPv4 {
	b := IPv4(make([]byte, IPv4MinimumSize+len(payload)))
	b.SetVersionAndHeaderLength(IPv4MinimumSize)
	b.SetTotalLength(uint16(len(b)))
	b.SetID(0x1234)
	b.SetFlagsFragmentOffset(0x4000) // DF
	b.SetTTL(64)
	b.SetProtocol(proto)
	b.SetSourceAddress(src)
	b.SetDestinationAddress(dst)
	b.SetChecksum(b.CalculateChecksum())
	copy(b[IPv4MinimumSize:], payload)
	return b
}

var (
	client = [4]byte{198, 18, 1, 10}
	server = [4]byte{198, 19, 2, 20}
	mapped = [4]byte{198, 19, 2, 1}
)

func TestIPv4Check(t *testing.T) {
	good := buildIPv4(ProtocolUDP, client, server, make([]byte, 8))
	mut := func(f func(b IPv4) IPv4) IPv4 {
		b := append(IPv4(nil), good...)
		return f(b)
	}
	tests := []struct {
		name string
		pkt  IPv4
		want error
	}{
		{"good", good, nil},
		{"padded", append(append(IPv4(nil), good...), 0, 0, 0), nil},
		{"short", good[:19], ErrIPv4Truncated},
		{"version6", mut(func(b IPv4) IPv4 { b[0] = 0x65; return b }), ErrIPv4Version},
		{"ihl4", mut(func(b IPv4) IPv4 { b[0] = 0x44; return b }), ErrIPv4HeaderLength},
		{"total below header", mut(func(b IPv4) IPv4 { b.SetTotalLength(19); return b }), ErrIPv4TotalLength},
		{"total beyond slice", mut(func(b IPv4) IPv4 { b.SetTotalLength(200); return b }), ErrIPv4Truncated},
		{"options beyond total", mut(func(b IPv4) IPv4 { b[0] = 0x4f; return b }), ErrIPv4TotalLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pkt.Check(); got != tt.want {
				t.Errorf("Check() = %v, want %v", got, tt.want)
			}
		})
	}
	if !good.ChecksumValid() {
		t.Errorf("built packet checksum does not verify")
	}
}

func TestTTLDecrement(t *testing.T) {
	for ttl := 1; ttl < 256; ttl++ {
		b := buildIPv4(ProtocolTCP, client, server, nil)
		b.SetTTL(uint8(ttl))
		b.SetChecksum(b.CalculateChecksum())
		b.DecrementTTLWithChecksumUpdate()
		if b.TTL() != uint8(ttl-1) || !b.ChecksumValid() {
			t.Fatalf("ttl %d: got ttl %d, checksum valid %v", ttl, b.TTL(), b.ChecksumValid())
		}
	}
}

// natRewrite applies the rewrites a PAT translation does, incrementally.
func natRewrite(ip IPv4, newSrc [4]byte, newPort uint16) {
	old := ip.SourceAddress()
	ip.SetSourceAddressWithChecksumUpdate(newSrc)
	switch ip.Protocol() {
	case ProtocolTCP:
		t := TCP(ip.Payload())
		t.UpdateChecksumForAddress(old, newSrc)
		t.SetSourcePortWithChecksumUpdate(newPort)
	case ProtocolUDP:
		u := UDP(ip.Payload())
		u.UpdateChecksumForAddress(old, newSrc)
		u.SetSourcePortWithChecksumUpdate(newPort)
	case ProtocolICMP:
		ICMPv4(ip.Payload()).SetIdentWithChecksumUpdate(newPort)
	}
}

func TestIncrementalChecksumMatchesRecompute(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		payload := make([]byte, rng.IntN(64))
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		src := [4]byte{198, 18, byte(rng.Uint32()), byte(rng.Uint32())}
		dst := [4]byte{198, 19, byte(rng.Uint32()), byte(rng.Uint32())}
		newSrc := [4]byte{198, 19, byte(rng.Uint32()), byte(rng.Uint32())}
		newPort := uint16(rng.Uint32())
		for _, proto := range []uint8{ProtocolTCP, ProtocolUDP, ProtocolICMP} {
			var l4 []byte
			switch proto {
			case ProtocolTCP:
				l4 = make([]byte, TCPMinimumSize+len(payload))
				copy(l4[TCPMinimumSize:], payload)
				tc := TCP(l4)
				tc.SetSourcePort(uint16(rng.Uint32()))
				tc.SetDestinationPort(80)
				tc.SetDataOffset(TCPMinimumSize)
				tc.SetFlags(TCPFlagACK)
				tc.SetChecksum(tc.CalculateChecksum(src, dst))
			case ProtocolUDP:
				l4 = make([]byte, UDPMinimumSize+len(payload))
				copy(l4[UDPMinimumSize:], payload)
				u := UDP(l4)
				u.SetSourcePort(uint16(rng.Uint32()))
				u.SetDestinationPort(53)
				u.SetLength(uint16(len(l4)))
				u.SetChecksum(u.CalculateChecksum(src, dst))
			case ProtocolICMP:
				l4 = make([]byte, ICMPv4MinimumSize+len(payload))
				copy(l4[ICMPv4MinimumSize:], payload)
				ic := ICMPv4(l4)
				ic.SetType(ICMPv4Echo)
				ic.SetIdent(uint16(rng.Uint32()))
				ic.SetChecksum(ic.CalculateChecksum())
			}
			ip := buildIPv4(proto, src, dst, l4)
			natRewrite(ip, newSrc, newPort)
			if !ip.ChecksumValid() {
				t.Fatalf("proto %d: IP checksum invalid after rewrite", proto)
			}
			if got, want := verifyL4(ip), true; got != want {
				t.Fatalf("proto %d iter %d: L4 checksum invalid after rewrite", proto, i)
			}
		}
	}
}

// verifyL4 checks the transport checksum of ip by a full recompute.
func verifyL4(ip IPv4) bool {
	p := ip.Payload()
	switch ip.Protocol() {
	case ProtocolTCP:
		s := PseudoHeaderChecksum(ProtocolTCP, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(p)))
		return Checksum(p, s) == 0xffff
	case ProtocolUDP:
		if UDP(p).Checksum() == 0 {
			return true
		}
		s := PseudoHeaderChecksum(ProtocolUDP, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(p)))
		return Checksum(p, s) == 0xffff
	case ProtocolICMP:
		return Checksum(p, 0) == 0xffff
	}
	return false
}

func TestUDPZeroChecksumStaysZero(t *testing.T) {
	l4 := make([]byte, 12)
	u := UDP(l4)
	u.SetSourcePort(5000)
	u.SetDestinationPort(53)
	u.SetLength(12)
	ip := buildIPv4(ProtocolUDP, client, server, l4)
	natRewrite(ip, mapped, 1024)
	if got := UDP(ip.Payload()).Checksum(); got != 0 {
		t.Errorf("checksum = %#04x, want 0 (absent checksum must stay absent)", got)
	}
}

func TestARPRoundTrip(t *testing.T) {
	a := ARP(make([]byte, ARPLen))
	a.SetIPv4OverEthernet()
	a.SetOp(ARPReply)
	smac := []byte{0x02, 0, 0, 0, 0, 1}
	tmac := []byte{0x02, 0, 0, 0, 0, 2}
	a.SetSender(smac, client)
	a.SetTarget(tmac, server)
	type view struct {
		Valid    bool
		Op       uint16
		SHA, THA string
		SPA, TPA [4]byte
	}
	got := view{a.IsValid(), a.Op(), a.SenderHardwareAddress().String(), a.TargetHardwareAddress().String(),
		a.SenderProtocolAddress(), a.TargetProtocolAddress()}
	want := view{true, ARPReply, "02:00:00:00:00:01", "02:00:00:00:00:02", client, server}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ARP view mismatch (-want +got):\n%s", d)
	}
	binary.BigEndian.PutUint16(a[arpPType:], 0x86dd)
	if a.IsValid() {
		t.Errorf("ARP with protocol type 0x86dd reported valid")
	}
}

func TestEthernet(t *testing.T) {
	// dst ff:ff:ff:ff:ff:ff, src 02:00:00:00:00:01, type ARP
	f := Ethernet([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06, 0xaa})
	if !f.IsValid() || !IsBroadcast(f.Destination()) || f.EtherType() != EtherTypeARP || len(f.Payload()) != 1 {
		t.Fatalf("bad parse: valid=%v bcast=%v type=%#x", f.IsValid(), IsBroadcast(f.Destination()), f.EtherType())
	}
	if Ethernet(f[:13]).IsValid() {
		t.Errorf("13-byte frame reported valid")
	}
}
