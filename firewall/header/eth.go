package header

import (
	"encoding/binary"
	"net"
)

// Ethernet II header (IEEE 802.3, DIX framing):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination MAC address                    |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                      Source MAC address                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           EtherType           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ethDst       = 0
	ethSrc       = 6
	ethEtherType = 12

	// EthernetLen is the length of an untagged Ethernet II header.
	EthernetLen = 14
)

// EtherTypes the firewall understands.
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
)

// Ethernet is a view over an Ethernet II frame, header first.
type Ethernet []byte

// IsValid reports whether the frame is long enough to hold the header.
func (e Ethernet) IsValid() bool { return len(e) >= EthernetLen }

// Destination returns the destination MAC; the slice aliases the frame.
func (e Ethernet) Destination() net.HardwareAddr { return net.HardwareAddr(e[ethDst : ethDst+6]) }

// Source returns the source MAC; the slice aliases the frame.
func (e Ethernet) Source() net.HardwareAddr { return net.HardwareAddr(e[ethSrc : ethSrc+6]) }

// EtherType returns the EtherType field.
func (e Ethernet) EtherType() uint16 { return binary.BigEndian.Uint16(e[ethEtherType:]) }

// SetDestination copies mac (6 bytes) into the destination field.
func (e Ethernet) SetDestination(mac []byte) { copy(e[ethDst:ethDst+6], mac) }

// SetSource copies mac (6 bytes) into the source field.
func (e Ethernet) SetSource(mac []byte) { copy(e[ethSrc:ethSrc+6], mac) }

// SetEtherType sets the EtherType field.
func (e Ethernet) SetEtherType(t uint16) { binary.BigEndian.PutUint16(e[ethEtherType:], t) }

// Payload returns the bytes after the header.
func (e Ethernet) Payload() []byte { return e[EthernetLen:] }

// IsBroadcast reports whether mac is ff:ff:ff:ff:ff:ff.
func IsBroadcast(mac []byte) bool {
	return len(mac) == 6 && mac[0]&mac[1]&mac[2]&mac[3]&mac[4]&mac[5] == 0xff
}

// IsMulticast reports whether mac has the group bit set (broadcast included).
func IsMulticast(mac []byte) bool { return len(mac) == 6 && mac[0]&1 == 1 }
