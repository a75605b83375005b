package header

import (
	"encoding/binary"
	"errors"
)

// TCP header (RFC 793 section 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	tcpSrcPort  = 0
	tcpDstPort  = 2
	tcpSeq      = 4
	tcpAck      = 8
	tcpDataOff  = 12
	tcpFlags    = 13
	tcpWindow   = 14
	tcpChecksum = 16
	tcpUrgent   = 18

	// TCPMinimumSize is the length of a TCP header without options.
	TCPMinimumSize = 20
)

// TCP flag bits.
const (
	TCPFlagFIN uint8 = 1 << iota
	TCPFlagSYN
	TCPFlagRST
	TCPFlagPSH
	TCPFlagACK
	TCPFlagURG
	TCPFlagECE
	TCPFlagCWR
)

// Errors from the transport views' Check methods.
var (
	ErrTCPTruncated  = errors.New("tcp: segment shorter than 20 bytes or its data offset")
	ErrTCPDataOffset = errors.New("tcp: data offset below 5 words")
	ErrUDPTruncated  = errors.New("udp: datagram shorter than 8 bytes or its length field")
	ErrUDPLength     = errors.New("udp: length field below 8")
	ErrICMPTruncated = errors.New("icmp: message shorter than 8 bytes")
)

// TCP is a view over a TCP segment, header first.
type TCP []byte

// Check returns nil if the header fits the slice and its data offset is sane.
func (t TCP) Check() error {
	if len(t) < TCPMinimumSize {
		return ErrTCPTruncated
	}
	off := int(t[tcpDataOff]>>4) * 4
	if off < TCPMinimumSize {
		return ErrTCPDataOffset
	}
	if off > len(t) {
		return ErrTCPTruncated
	}
	return nil
}

// IsValid reports whether Check returns nil.
func (t TCP) IsValid() bool { return t.Check() == nil }

// SourcePort returns the source port.
func (t TCP) SourcePort() uint16 { return binary.BigEndian.Uint16(t[tcpSrcPort:]) }

// DestinationPort returns the destination port.
func (t TCP) DestinationPort() uint16 { return binary.BigEndian.Uint16(t[tcpDstPort:]) }

// SequenceNumber returns the sequence number.
func (t TCP) SequenceNumber() uint32 { return binary.BigEndian.Uint32(t[tcpSeq:]) }

// AckNumber returns the acknowledgment number.
func (t TCP) AckNumber() uint32 { return binary.BigEndian.Uint32(t[tcpAck:]) }

// DataOffset returns the header length in bytes.
func (t TCP) DataOffset() int { return int(t[tcpDataOff]>>4) * 4 }

// Flags returns the flag byte (TCPFlag* bits).
func (t TCP) Flags() uint8 { return t[tcpFlags] }

// WindowSize returns the advertised window.
func (t TCP) WindowSize() uint16 { return binary.BigEndian.Uint16(t[tcpWindow:]) }

// Checksum returns the checksum field.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[tcpChecksum:]) }

// UrgentPointer returns the urgent pointer.
func (t TCP) UrgentPointer() uint16 { return binary.BigEndian.Uint16(t[tcpUrgent:]) }

// SetSourcePort sets the source port without touching the checksum.
func (t TCP) SetSourcePort(p uint16) { binary.BigEndian.PutUint16(t[tcpSrcPort:], p) }

// SetDestinationPort sets the destination port without touching the checksum.
func (t TCP) SetDestinationPort(p uint16) { binary.BigEndian.PutUint16(t[tcpDstPort:], p) }

// SetSequenceNumber sets the sequence number.
func (t TCP) SetSequenceNumber(v uint32) { binary.BigEndian.PutUint32(t[tcpSeq:], v) }

// SetAckNumber sets the acknowledgment number.
func (t TCP) SetAckNumber(v uint32) { binary.BigEndian.PutUint32(t[tcpAck:], v) }

// SetDataOffset sets the header length in bytes.
func (t TCP) SetDataOffset(n int) { t[tcpDataOff] = uint8(n/4) << 4 }

// SetFlags sets the flag byte.
func (t TCP) SetFlags(f uint8) { t[tcpFlags] = f }

// SetWindowSize sets the advertised window.
func (t TCP) SetWindowSize(v uint16) { binary.BigEndian.PutUint16(t[tcpWindow:], v) }

// SetChecksum sets the checksum field.
func (t TCP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(t[tcpChecksum:], v) }

// CalculateChecksum returns the checksum of the segment (header and
// payload, checksum field taken as zero) under the IPv4 pseudo-header.
func (t TCP) CalculateChecksum(src, dst [4]byte) uint16 {
	s := PseudoHeaderChecksum(ProtocolTCP, src, dst, uint16(len(t)))
	s = Checksum(t[:tcpChecksum], s)
	return ^Checksum(t[tcpChecksum+2:], s)
}

// UpdateChecksumForAddress patches the checksum for a pseudo-header address
// changing from old to new.
func (t TCP) UpdateChecksumForAddress(old, new [4]byte) {
	t.SetChecksum(ChecksumUpdateAddr(t.Checksum(), old, new))
}

// SetSourcePortWithChecksumUpdate rewrites the source port and patches the checksum.
func (t TCP) SetSourcePortWithChecksumUpdate(p uint16) {
	t.SetChecksum(ChecksumUpdate16(t.Checksum(), t.SourcePort(), p))
	t.SetSourcePort(p)
}

// SetDestinationPortWithChecksumUpdate rewrites the destination port and patches the checksum.
func (t TCP) SetDestinationPortWithChecksumUpdate(p uint16) {
	t.SetChecksum(ChecksumUpdate16(t.Checksum(), t.DestinationPort(), p))
	t.SetDestinationPort(p)
}

// UDP header (RFC 768):
//
//	 0      7 8     15 16    23 24    31
//	+--------+--------+--------+--------+
//	|     Source      |   Destination   |
//	|      Port       |      Port       |
//	+--------+--------+--------+--------+
//	|                 |                 |
//	|     Length      |    Checksum     |
//	+--------+--------+--------+--------+
const (
	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6

	// UDPMinimumSize is the length of a UDP header.
	UDPMinimumSize = 8
)

// UDP is a view over a UDP datagram, header first.
type UDP []byte

// Check returns nil if the header fits and the length field is sane.
func (u UDP) Check() error {
	if len(u) < UDPMinimumSize {
		return ErrUDPTruncated
	}
	l := int(binary.BigEndian.Uint16(u[udpLength:]))
	if l < UDPMinimumSize {
		return ErrUDPLength
	}
	if l > len(u) {
		return ErrUDPTruncated
	}
	return nil
}

// IsValid reports whether Check returns nil.
func (u UDP) IsValid() bool { return u.Check() == nil }

// SourcePort returns the source port.
func (u UDP) SourcePort() uint16 { return binary.BigEndian.Uint16(u[udpSrcPort:]) }

// DestinationPort returns the destination port.
func (u UDP) DestinationPort() uint16 { return binary.BigEndian.Uint16(u[udpDstPort:]) }

// Length returns the length field (header and payload).
func (u UDP) Length() uint16 { return binary.BigEndian.Uint16(u[udpLength:]) }

// Checksum returns the checksum field; zero means "no checksum" (RFC 768).
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[udpChecksum:]) }

// SetSourcePort sets the source port without touching the checksum.
func (u UDP) SetSourcePort(p uint16) { binary.BigEndian.PutUint16(u[udpSrcPort:], p) }

// SetDestinationPort sets the destination port without touching the checksum.
func (u UDP) SetDestinationPort(p uint16) { binary.BigEndian.PutUint16(u[udpDstPort:], p) }

// SetLength sets the length field.
func (u UDP) SetLength(v uint16) { binary.BigEndian.PutUint16(u[udpLength:], v) }

// SetChecksum sets the checksum field.
func (u UDP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(u[udpChecksum:], v) }

// CalculateChecksum returns the checksum over the datagram (up to its
// length field) under the IPv4 pseudo-header, mapping 0 to 0xffff as RFC
// 768 requires for a computed zero.
func (u UDP) CalculateChecksum(src, dst [4]byte) uint16 {
	l := u.Length()
	s := PseudoHeaderChecksum(ProtocolUDP, src, dst, l)
	s = Checksum(u[:udpChecksum], s)
	c := ^Checksum(u[udpChecksum+2:l], s)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// updateChecksum stores the patched checksum, leaving an absent (zero)
// checksum absent and never storing a computed zero.
func (u UDP) updateChecksum(c uint16) {
	if u.Checksum() == 0 {
		return
	}
	if c == 0 {
		c = 0xffff
	}
	u.SetChecksum(c)
}

// UpdateChecksumForAddress patches the checksum for a pseudo-header address
// change; a zero checksum stays zero.
func (u UDP) UpdateChecksumForAddress(old, new [4]byte) {
	u.updateChecksum(ChecksumUpdateAddr(u.Checksum(), old, new))
}

// SetSourcePortWithChecksumUpdate rewrites the source port and patches the checksum.
func (u UDP) SetSourcePortWithChecksumUpdate(p uint16) {
	u.updateChecksum(ChecksumUpdate16(u.Checksum(), u.SourcePort(), p))
	u.SetSourcePort(p)
}

// SetDestinationPortWithChecksumUpdate rewrites the destination port and patches the checksum.
func (u UDP) SetDestinationPortWithChecksumUpdate(p uint16) {
	u.updateChecksum(ChecksumUpdate16(u.Checksum(), u.DestinationPort(), p))
	u.SetDestinationPort(p)
}

// ICMPv4 header (RFC 792); the second word is the identifier and sequence
// number for echo messages and unused or type-specific otherwise:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Identifier          |        Sequence Number        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2
	icmpIdent    = 4
	icmpSeq      = 6

	// ICMPv4MinimumSize is the length of an ICMPv4 header.
	ICMPv4MinimumSize = 8
)

// ICMPv4 message types the firewall handles.
const (
	ICMPv4EchoReply      uint8 = 0
	ICMPv4DstUnreachable uint8 = 3
	ICMPv4Echo           uint8 = 8
	ICMPv4TimeExceeded   uint8 = 11
)

// ICMPv4 codes the firewall sends.
const (
	ICMPv4NetUnreachable  uint8 = 0
	ICMPv4HostUnreachable uint8 = 1
	ICMPv4AdminProhibited uint8 = 13
	ICMPv4TTLExceeded     uint8 = 0
	// ICMPv4FragNeeded (destination unreachable): DF set and larger than
	// the next hop's MTU, which the second word carries (RFC 1191).
	ICMPv4FragNeeded uint8 = 4
)

// ICMPv4 is a view over an ICMPv4 message, header first.
type ICMPv4 []byte

// Check returns nil if the header fits the slice.
func (i ICMPv4) Check() error {
	if len(i) < ICMPv4MinimumSize {
		return ErrICMPTruncated
	}
	return nil
}

// IsValid reports whether Check returns nil.
func (i ICMPv4) IsValid() bool { return i.Check() == nil }

// Type returns the message type.
func (i ICMPv4) Type() uint8 { return i[icmpType] }

// Code returns the message code.
func (i ICMPv4) Code() uint8 { return i[icmpCode] }

// Checksum returns the checksum field.
func (i ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(i[icmpChecksum:]) }

// Ident returns the echo identifier.
func (i ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(i[icmpIdent:]) }

// Sequence returns the echo sequence number.
func (i ICMPv4) Sequence() uint16 { return binary.BigEndian.Uint16(i[icmpSeq:]) }

// Payload returns the bytes after the 8-byte header.
func (i ICMPv4) Payload() []byte { return i[ICMPv4MinimumSize:] }

// IsEcho reports whether the message is an echo request or reply.
func (i ICMPv4) IsEcho() bool { return i.Type() == ICMPv4Echo || i.Type() == ICMPv4EchoReply }

// IsError reports whether the message is an error that quotes a packet.
func (i ICMPv4) IsError() bool {
	switch i.Type() {
	case ICMPv4DstUnreachable, ICMPv4TimeExceeded, 4, 5, 12:
		return true
	}
	return false
}

// SetType sets the message type without touching the checksum.
func (i ICMPv4) SetType(t uint8) { i[icmpType] = t }

// SetCode sets the message code without touching the checksum.
func (i ICMPv4) SetCode(c uint8) { i[icmpCode] = c }

// SetChecksum sets the checksum field.
func (i ICMPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(i[icmpChecksum:], v) }

// SetIdent sets the echo identifier without touching the checksum.
func (i ICMPv4) SetIdent(v uint16) { binary.BigEndian.PutUint16(i[icmpIdent:], v) }

// SetSequence sets the echo sequence number without touching the checksum.
func (i ICMPv4) SetSequence(v uint16) { binary.BigEndian.PutUint16(i[icmpSeq:], v) }

// SetRestOfHeader sets the second header word (unused for errors).
func (i ICMPv4) SetRestOfHeader(v uint32) { binary.BigEndian.PutUint32(i[icmpIdent:], v) }

// CalculateChecksum returns the checksum over the whole message with the
// checksum field taken as zero (ICMP has no pseudo-header).
func (i ICMPv4) CalculateChecksum() uint16 {
	s := Checksum(i[:icmpChecksum], 0)
	return ^Checksum(i[icmpChecksum+2:], s)
}

// SetIdentWithChecksumUpdate rewrites the echo identifier and patches the checksum.
func (i ICMPv4) SetIdentWithChecksumUpdate(v uint16) {
	i.SetChecksum(ChecksumUpdate16(i.Checksum(), i.Ident(), v))
	i.SetIdent(v)
}

// SetTypeWithChecksumUpdate rewrites the type (e.g. echo to echo reply) and
// patches the checksum; type shares its 16-bit word with code.
func (i ICMPv4) SetTypeWithChecksumUpdate(t uint8) {
	old := binary.BigEndian.Uint16(i[icmpType:])
	i[icmpType] = t
	i.SetChecksum(ChecksumUpdate16(i.Checksum(), old, binary.BigEndian.Uint16(i[icmpType:])))
}

// TCP option kinds the firewall reads (RFC 9293, RFC 7323, RFC 2018).
const (
	TCPOptionEnd       = 0
	TCPOptionNOP       = 1
	TCPOptionMSS       = 2
	TCPOptionWScale    = 3
	TCPOptionSACKPerm  = 4
	TCPOptionSACK      = 5
	TCPOptionTimestamp = 8
)

// Options returns the option bytes between the fixed header and the data.
// The header must have passed Check.
func (t TCP) Options() []byte { return t[TCPMinimumSize:t.DataOffset()] }

// NextOption splits the first option off opts: its kind, its bytes
// (kind and length included; one byte for End and NOP) and the rest. ok is
// false at the end of the list or on a malformed length, where parsing
// must stop.
func NextOption(opts []byte) (kind uint8, opt, rest []byte, ok bool) {
	if len(opts) == 0 || opts[0] == TCPOptionEnd {
		return 0, nil, nil, false
	}
	if opts[0] == TCPOptionNOP {
		return TCPOptionNOP, opts[:1], opts[1:], true
	}
	if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
		return 0, nil, nil, false
	}
	n := int(opts[1])
	return opts[0], opts[:n], opts[n:], true
}

// ChecksumUpdate32 returns the stored checksum xsum updated for one
// 16-bit-aligned 32-bit field changing from old to new (RFC 1624).
func ChecksumUpdate32(xsum uint16, old, new uint32) uint16 {
	s := ^xsum
	s = ChecksumCombine(s, ^uint16(old>>16))
	s = ChecksumCombine(s, ^uint16(old))
	s = ChecksumCombine(s, uint16(new>>16))
	s = ChecksumCombine(s, uint16(new))
	return ^s
}

// SetSequenceNumberWithChecksumUpdate rewrites the sequence number and
// patches the checksum.
func (t TCP) SetSequenceNumberWithChecksumUpdate(v uint32) {
	t.SetChecksum(ChecksumUpdate32(t.Checksum(), t.SequenceNumber(), v))
	t.SetSequenceNumber(v)
}

// SetAckNumberWithChecksumUpdate rewrites the acknowledgment number and
// patches the checksum.
func (t TCP) SetAckNumberWithChecksumUpdate(v uint32) {
	t.SetChecksum(ChecksumUpdate32(t.Checksum(), t.AckNumber(), v))
	t.SetAckNumber(v)
}
