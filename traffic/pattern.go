package traffic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Pattern is a deterministic, offset-addressable byte stream: the byte at
// offset i depends only on the seed and i. Both ends of a flow derive the
// same Pattern from the flow header, so the receiver can check every byte
// without the sender sending checksums, and a skipped, repeated or changed
// byte anywhere breaks the match from that point on.
//
// The stream is made of 8-byte words, word k being splitmix64(seed + k*γ);
// byte i is byte i%8 (little endian) of word i/8.
//
// A Pattern is a value; it is safe for concurrent use.
type Pattern struct {
	seed uint64
}

// golden is the splitmix64 increment (2^64 / φ).
const golden = 0x9E3779B97F4A7C15

// mix64 is the splitmix64 finaliser: a bijection that spreads every input
// bit over the output, so neighbouring words look unrelated.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// NewPattern returns the stream for seed.
func NewPattern(seed uint64) Pattern { return Pattern{seed: seed} }

// FlowSeed derives the seed of one direction of one flow, so that every
// flow of every session, and the two directions of a flow, carry different
// streams (a stream delivered to the wrong flow does not verify).
func FlowSeed(session uint64, flowID uint32, dir Direction) uint64 {
	return mix64(session ^ mix64(uint64(flowID)<<8|uint64(dir)))
}

func (p Pattern) word(k uint64) uint64 { return mix64(p.seed + k*golden) }

// Fill writes the stream's bytes from offset off into b.
func (p Pattern) Fill(b []byte, off uint64) {
	// Leading bytes up to a word boundary.
	for len(b) > 0 && off%8 != 0 {
		b[0] = byte(p.word(off/8) >> (8 * (off % 8)))
		b = b[1:]
		off++
	}
	k := off / 8
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, p.word(k))
		b = b[8:]
		k++
	}
	if len(b) > 0 {
		w := p.word(k)
		for i := range b {
			b[i] = byte(w >> (8 * i))
		}
	}
}

// patternReader serves a finite prefix of a Pattern as an io.ReadSeeker,
// which is what http.ServeContent needs (it handles Range and
// Content-Length from it).
type patternReader struct {
	pat  Pattern
	size int64
	off  int64
}

var _ io.ReadSeeker = (*patternReader)(nil)

func (r *patternReader) Read(b []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if rem := r.size - r.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	r.pat.Fill(b, uint64(r.off))
	r.off += int64(len(b))
	return len(b), nil
}

func (r *patternReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, fmt.Errorf("seek: invalid whence %d", whence)
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.off = abs
	return abs, nil
}
