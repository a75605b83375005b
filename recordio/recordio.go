// Package recordio reads and writes the bytes of replicated change
// records: a bounded reader whose first short read sticks, length-prefixed
// strings, and the 64-bit hash each record adds to its table's digest.
// The firewall's tables and the inspection engines' (sip, gtp) encode
// their records with it, so a record codec is its fields, not its plumbing.
//
// It must not import any falab package.
package recordio

import "encoding/binary"

// Reader consumes a record body. A read past the end returns zeros (never
// nil) and marks the reader short, so a decoder reads every field in a
// row and checks Short once.
type Reader struct {
	b     []byte
	short bool
}

// NewReader reads b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Take returns the next n bytes, or n zero bytes once the body is short.
func (r *Reader) Take(n int) []byte {
	if r.short || len(r.b) < n {
		r.short, r.b = true, nil
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// U8 reads one byte.
func (r *Reader) U8() uint8 { return r.Take(1)[0] }

// U16 reads a big-endian uint16.
func (r *Reader) U16() uint16 { return binary.BigEndian.Uint16(r.Take(2)) }

// U32 reads a big-endian uint32.
func (r *Reader) U32() uint32 { return binary.BigEndian.Uint32(r.Take(4)) }

// I64 reads a big-endian int64 (a timestamp).
func (r *Reader) I64() int64 { return int64(binary.BigEndian.Uint64(r.Take(8))) }

// Addr4 reads an IPv4 address.
func (r *Reader) Addr4() [4]byte { return [4]byte(r.Take(4)) }

// Str8 reads a string after its one-byte length.
func (r *Reader) Str8() string { return string(r.Take(int(r.U8()))) }

// Len is how many bytes are left.
func (r *Reader) Len() int { return len(r.b) }

// Short reports whether a read went past the end of the body.
func (r *Reader) Short() bool { return r.short }

// AppendStr8 appends s after its one-byte length, cut at 255 bytes (a
// codec with a smaller limit cuts first).
func AppendStr8(b []byte, s string) []byte {
	s = s[:min(len(s), 255)]
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// Hash is a record's contribution to its table's digest. Digests are sums
// of the hashes of a table's records (order-independent), so similar
// records must spread over all 64 bits: eight bytes a step (it runs on
// every connection's setup path), then the splitmix64 finalizer.
func Hash(b []byte) uint64 {
	h := uint64(len(b)) * 0x9e3779b97f4a7c15
	for ; len(b) >= 8; b = b[8:] {
		h = (h ^ binary.LittleEndian.Uint64(b)) * 0xbf58476d1ce4e5b9
		h ^= h >> 29
	}
	var tail [8]byte
	copy(tail[:], b)
	h = (h ^ binary.LittleEndian.Uint64(tail[:])) * 0x94d049bb133111eb
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
