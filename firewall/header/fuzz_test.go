package header

import "testing"

// Each fuzz target runs the view's check and then, only if it passes, every
// getter: a valid verdict must make every getter safe.

func FuzzEthernet(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 8, 6})
	f.Fuzz(func(t *testing.T, b []byte) {
		e := Ethernet(b)
		if !e.IsValid() {
			return
		}
		_, _, _, _ = e.Destination(), e.Source(), e.EtherType(), e.Payload()
	})
}

func FuzzARP(f *testing.F) {
	f.Add([]byte{0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 198, 18, 1, 10, 0, 0, 0, 0, 0, 0, 198, 18, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		a := ARP(b)
		if !a.IsValid() {
			return
		}
		_, _, _, _, _ = a.Op(), a.SenderHardwareAddress(), a.SenderProtocolAddress(), a.TargetHardwareAddress(), a.TargetProtocolAddress()
	})
}

func FuzzIPv4(f *testing.F) {
	f.Add([]byte(buildIPv4(ProtocolUDP, client, server, make([]byte, 8))))
	f.Add([]byte{0x4f, 0, 0, 60})
	f.Fuzz(func(t *testing.T, b []byte) {
		ip := IPv4(b)
		if ip.Check() != nil {
			return
		}
		_ = ip.ChecksumValid()
		_, _, _, _ = ip.Payload(), ip.SourceAddress(), ip.DestinationAddress(), ip.IsFragment()
		old := ip.ChecksumValid()
		if ip.TTL() > 0 {
			ip.DecrementTTLWithChecksumUpdate()
			if old && !ip.ChecksumValid() {
				t.Fatalf("TTL decrement broke a valid checksum")
			}
		}
		ip.SetSourceAddressWithChecksumUpdate(mapped)
		if old && !ip.ChecksumValid() {
			t.Fatalf("source rewrite broke a valid checksum")
		}
	})
}

func FuzzTCP(f *testing.F) {
	f.Add(make([]byte, 20), uint16(80))
	f.Fuzz(func(t *testing.T, b []byte, port uint16) {
		tc := TCP(b)
		if tc.Check() != nil {
			return
		}
		_, _, _, _, _, _ = tc.SourcePort(), tc.DestinationPort(), tc.SequenceNumber(), tc.AckNumber(), tc.Flags(), tc.WindowSize()
		tc.SetChecksum(tc.CalculateChecksum(client, server))
		tc.SetSourcePortWithChecksumUpdate(port)
		tc.UpdateChecksumForAddress(client, mapped)
		s := PseudoHeaderChecksum(ProtocolTCP, mapped, server, uint16(len(b)))
		if Checksum(b, s) != 0xffff {
			t.Fatalf("incremental TCP update disagrees with recompute")
		}
	})
}

func FuzzUDP(f *testing.F) {
	f.Add([]byte{0x13, 0x88, 0, 53, 0, 9, 0, 0, 1}, uint16(1024))
	f.Fuzz(func(t *testing.T, b []byte, port uint16) {
		u := UDP(b)
		if u.Check() != nil {
			return
		}
		_, _, _ = u.SourcePort(), u.DestinationPort(), u.Length()
		u.SetChecksum(u.CalculateChecksum(client, server))
		u.SetSourcePortWithChecksumUpdate(port)
		u.UpdateChecksumForAddress(client, mapped)
		s := PseudoHeaderChecksum(ProtocolUDP, mapped, server, u.Length())
		if Checksum(b[:u.Length()], s) != 0xffff {
			t.Fatalf("incremental UDP update disagrees with recompute")
		}
	})
}

func FuzzICMPv4(f *testing.F) {
	f.Add([]byte{8, 0, 0, 0, 0, 1, 0, 1, 'p', 'i', 'n', 'g'}, uint16(7))
	f.Fuzz(func(t *testing.T, b []byte, id uint16) {
		ic := ICMPv4(b)
		if ic.Check() != nil {
			return
		}
		_, _, _, _, _, _ = ic.Type(), ic.Code(), ic.Ident(), ic.Sequence(), ic.IsEcho(), ic.IsError()
		ic.SetChecksum(ic.CalculateChecksum())
		ic.SetIdentWithChecksumUpdate(id)
		ic.SetTypeWithChecksumUpdate(ICMPv4EchoReply)
		if Checksum(b, 0) != 0xffff {
			t.Fatalf("incremental ICMP update disagrees with recompute")
		}
	})
}
