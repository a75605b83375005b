package header

import (
	"encoding/binary"
	"net"
)

// ARP packet for Ethernet and IPv4 (RFC 826):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Hardware type         |         Protocol type         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  HW addr len  | Proto addr len|           Operation           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               Sender hardware address (6 bytes)               |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |  Sender protocol address ...  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| ... (4 bytes)                 | Target hardware address ...   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                          ... (6 bytes)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               Target protocol address (4 bytes)               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	arpHType = 0
	arpPType = 2
	arpHLen  = 4
	arpPLen  = 5
	arpOp    = 6
	arpSHA   = 8
	arpSPA   = 14
	arpTHA   = 18
	arpTPA   = 24

	// ARPLen is the length of an Ethernet/IPv4 ARP packet.
	ARPLen = 28
)

// ARP operations.
const (
	ARPRequest uint16 = 1
	ARPReply   uint16 = 2
)

// ARP is a view over an Ethernet/IPv4 ARP packet.
type ARP []byte

// IsValid reports whether the packet is long enough and is Ethernet/IPv4
// ARP (hardware type 1, protocol 0x0800, lengths 6 and 4); other ARP
// flavours are not understood.
func (a ARP) IsValid() bool {
	return len(a) >= ARPLen &&
		binary.BigEndian.Uint16(a[arpHType:]) == 1 &&
		binary.BigEndian.Uint16(a[arpPType:]) == EtherTypeIPv4 &&
		a[arpHLen] == 6 && a[arpPLen] == 4
}

// Op returns the operation (ARPRequest or ARPReply).
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[arpOp:]) }

// SenderHardwareAddress returns the sender MAC; the slice aliases the packet.
func (a ARP) SenderHardwareAddress() net.HardwareAddr { return net.HardwareAddr(a[arpSHA : arpSHA+6]) }

// SenderProtocolAddress returns the sender IPv4 address.
func (a ARP) SenderProtocolAddress() [4]byte { return [4]byte(a[arpSPA : arpSPA+4]) }

// TargetHardwareAddress returns the target MAC; the slice aliases the packet.
func (a ARP) TargetHardwareAddress() net.HardwareAddr { return net.HardwareAddr(a[arpTHA : arpTHA+6]) }

// TargetProtocolAddress returns the target IPv4 address.
func (a ARP) TargetProtocolAddress() [4]byte { return [4]byte(a[arpTPA : arpTPA+4]) }

// SetIPv4OverEthernet writes the fixed fields for Ethernet/IPv4 ARP.
func (a ARP) SetIPv4OverEthernet() {
	binary.BigEndian.PutUint16(a[arpHType:], 1)
	binary.BigEndian.PutUint16(a[arpPType:], EtherTypeIPv4)
	a[arpHLen] = 6
	a[arpPLen] = 4
}

// SetOp sets the operation.
func (a ARP) SetOp(op uint16) { binary.BigEndian.PutUint16(a[arpOp:], op) }

// SetSender sets the sender MAC and IPv4 address.
func (a ARP) SetSender(mac []byte, ip [4]byte) {
	copy(a[arpSHA:arpSHA+6], mac)
	copy(a[arpSPA:arpSPA+4], ip[:])
}

// SetTarget sets the target MAC and IPv4 address.
func (a ARP) SetTarget(mac []byte, ip [4]byte) {
	copy(a[arpTHA:arpTHA+6], mac)
	copy(a[arpTPA:arpTPA+4], ip[:])
}
