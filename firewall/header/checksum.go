package header

import "encoding/binary"

// Checksum returns the 16-bit ones' complement sum of b folded with initial.
// The result is not complemented: callers complement it when they store it
// in a header, which lets partial sums (pseudo-header, header, payload) be
// chained through initial.
func Checksum(b []byte, initial uint16) uint16 {
	sum := uint64(initial)
	for len(b) >= 8 {
		sum += uint64(binary.BigEndian.Uint32(b[0:4]))
		sum += uint64(binary.BigEndian.Uint32(b[4:8]))
		b = b[8:]
	}
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	for sum > 0xffff {
		sum = (sum >> 16) + (sum & 0xffff)
	}
	return uint16(sum)
}

// ChecksumCombine adds two partial ones' complement sums.
func ChecksumCombine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// PseudoHeaderChecksum returns the partial sum of the IPv4 pseudo-header
// (RFC 793 section 3.1, RFC 768) that TCP and UDP checksums cover.
func PseudoHeaderChecksum(protocol uint8, src, dst [4]byte, length uint16) uint16 {
	s := Checksum(src[:], 0)
	s = Checksum(dst[:], s)
	s = ChecksumCombine(s, uint16(protocol))
	return ChecksumCombine(s, length)
}

// ChecksumUpdate16 returns the stored checksum xsum updated for one 16-bit
// field changing from old to new, using RFC 1624 equation 3:
// HC' = ~(~HC + ~m + m').
func ChecksumUpdate16(xsum, old, new uint16) uint16 {
	return ^ChecksumCombine(ChecksumCombine(^xsum, ^old), new)
}

// ChecksumUpdateAddr returns the stored checksum xsum updated for a 4-byte
// address changing from old to new (two 16-bit words, RFC 1624).
func ChecksumUpdateAddr(xsum uint16, old, new [4]byte) uint16 {
	s := ^xsum
	s = ChecksumCombine(s, ^binary.BigEndian.Uint16(old[0:2]))
	s = ChecksumCombine(s, ^binary.BigEndian.Uint16(old[2:4]))
	s = ChecksumCombine(s, binary.BigEndian.Uint16(new[0:2]))
	s = ChecksumCombine(s, binary.BigEndian.Uint16(new[2:4]))
	return ^s
}
