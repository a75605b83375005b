package header

import (
	"encoding/binary"
	"errors"
)

// IPv4 header (RFC 791 section 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipVerIHL    = 0
	ipTOS       = 1
	ipTotalLen  = 2
	ipID        = 4
	ipFlagsFrag = 6
	ipTTL       = 8
	ipProtocol  = 9
	ipChecksum  = 10
	ipSrc       = 12
	ipDst       = 16

	// IPv4MinimumSize is the length of an IPv4 header without options.
	IPv4MinimumSize = 20
)

// IP protocol numbers.
const (
	ProtocolICMP uint8 = 1
	ProtocolTCP  uint8 = 6
	ProtocolUDP  uint8 = 17
)

// Errors from IPv4.Check, one per way a header can be unusable.
var (
	ErrIPv4Truncated    = errors.New("ipv4: packet shorter than its header or total length")
	ErrIPv4Version      = errors.New("ipv4: version is not 4")
	ErrIPv4HeaderLength = errors.New("ipv4: header length below 20 bytes")
	ErrIPv4TotalLength  = errors.New("ipv4: total length below header length")
)

// IPv4 is a view over an IPv4 packet, header first. The slice may extend
// past TotalLength (Ethernet padding); Payload trims it.
type IPv4 []byte

// Check returns nil if the header can be used: version 4, a header length
// of at least 20 bytes, and a total length that fits the slice. It does not
// verify the checksum (see ChecksumValid) so that callers can count the two
// faults apart.
func (b IPv4) Check() error {
	if len(b) < IPv4MinimumSize {
		return ErrIPv4Truncated
	}
	if b[ipVerIHL]>>4 != 4 {
		return ErrIPv4Version
	}
	hl := int(b[ipVerIHL]&0xf) * 4
	if hl < IPv4MinimumSize {
		return ErrIPv4HeaderLength
	}
	tl := int(binary.BigEndian.Uint16(b[ipTotalLen:]))
	if tl < hl {
		return ErrIPv4TotalLength
	}
	if tl > len(b) {
		return ErrIPv4Truncated
	}
	return nil
}

// IsValid reports whether Check returns nil.
func (b IPv4) IsValid() bool { return b.Check() == nil }

// HeaderLength returns the header length in bytes (IHL * 4).
func (b IPv4) HeaderLength() int { return int(b[ipVerIHL]&0xf) * 4 }

// TOS returns the type-of-service byte.
func (b IPv4) TOS() uint8 { return b[ipTOS] }

// TotalLength returns the total length field.
func (b IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(b[ipTotalLen:]) }

// ID returns the identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ipID:]) }

// FragmentOffset returns the fragment offset in bytes.
func (b IPv4) FragmentOffset() int { return int(binary.BigEndian.Uint16(b[ipFlagsFrag:])&0x1fff) * 8 }

// MoreFragments reports whether the MF flag is set.
func (b IPv4) MoreFragments() bool { return b[ipFlagsFrag]&0x20 != 0 }

// DontFragment reports whether the DF flag is set.
func (b IPv4) DontFragment() bool { return b[ipFlagsFrag]&0x40 != 0 }

// IsFragment reports whether the packet is any fragment of a larger one.
func (b IPv4) IsFragment() bool { return b.MoreFragments() || b.FragmentOffset() != 0 }

// TTL returns the time-to-live.
func (b IPv4) TTL() uint8 { return b[ipTTL] }

// Protocol returns the protocol number of the payload.
func (b IPv4) Protocol() uint8 { return b[ipProtocol] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ipChecksum:]) }

// SourceAddress returns the source address.
func (b IPv4) SourceAddress() [4]byte { return [4]byte(b[ipSrc : ipSrc+4]) }

// DestinationAddress returns the destination address.
func (b IPv4) DestinationAddress() [4]byte { return [4]byte(b[ipDst : ipDst+4]) }

// Payload returns the bytes after the header up to TotalLength.
func (b IPv4) Payload() []byte { return b[b.HeaderLength():b.TotalLength()] }

// ChecksumValid reports whether the header checksum verifies.
func (b IPv4) ChecksumValid() bool { return Checksum(b[:b.HeaderLength()], 0) == 0xffff }

// CalculateChecksum returns the header checksum computed from scratch
// (with the checksum field taken as zero).
func (b IPv4) CalculateChecksum() uint16 {
	s := Checksum(b[:ipChecksum], 0)
	return ^Checksum(b[ipChecksum+2:b.HeaderLength()], s)
}

// SetVersionAndHeaderLength sets version 4 and the header length in bytes.
func (b IPv4) SetVersionAndHeaderLength(hl int) { b[ipVerIHL] = 4<<4 | uint8(hl/4)&0xf }

// SetTOS sets the type-of-service byte.
func (b IPv4) SetTOS(v uint8) { b[ipTOS] = v }

// SetTotalLength sets the total length field.
func (b IPv4) SetTotalLength(v uint16) { binary.BigEndian.PutUint16(b[ipTotalLen:], v) }

// SetID sets the identification field.
func (b IPv4) SetID(v uint16) { binary.BigEndian.PutUint16(b[ipID:], v) }

// SetFlagsFragmentOffset sets the raw flags and fragment offset word.
func (b IPv4) SetFlagsFragmentOffset(v uint16) { binary.BigEndian.PutUint16(b[ipFlagsFrag:], v) }

// SetTTL sets the time-to-live without touching the checksum.
func (b IPv4) SetTTL(v uint8) { b[ipTTL] = v }

// SetProtocol sets the protocol number.
func (b IPv4) SetProtocol(v uint8) { b[ipProtocol] = v }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[ipChecksum:], v) }

// SetSourceAddress sets the source address without touching the checksum.
func (b IPv4) SetSourceAddress(a [4]byte) { copy(b[ipSrc:ipSrc+4], a[:]) }

// SetDestinationAddress sets the destination address without touching the checksum.
func (b IPv4) SetDestinationAddress(a [4]byte) { copy(b[ipDst:ipDst+4], a[:]) }

// DecrementTTLWithChecksumUpdate lowers the TTL by one and patches the
// header checksum (RFC 1624; TTL shares its 16-bit word with Protocol).
func (b IPv4) DecrementTTLWithChecksumUpdate() {
	old := binary.BigEndian.Uint16(b[ipTTL:])
	b[ipTTL]--
	b.SetChecksum(ChecksumUpdate16(b.Checksum(), old, binary.BigEndian.Uint16(b[ipTTL:])))
}

// SetSourceAddressWithChecksumUpdate rewrites the source address and patches
// the header checksum. The TCP/UDP checksum, which also covers the address
// through the pseudo-header, is the caller's to patch.
func (b IPv4) SetSourceAddressWithChecksumUpdate(a [4]byte) {
	old := b.SourceAddress()
	b.SetSourceAddress(a)
	b.SetChecksum(ChecksumUpdateAddr(b.Checksum(), old, a))
}

// SetDestinationAddressWithChecksumUpdate rewrites the destination address
// and patches the header checksum.
func (b IPv4) SetDestinationAddressWithChecksumUpdate(a [4]byte) {
	old := b.DestinationAddress()
	b.SetDestinationAddress(a)
	b.SetChecksum(ChecksumUpdateAddr(b.Checksum(), old, a))
}
