package replicate

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// KeyLen is the failover key's length in bytes.
const KeyLen = 32

// Key is the lab's failover key, shared by both units. It is never sent: the
// session keys are derived from it and both sides' nonces. Making it and its
// file form belong to package api (api.Key, api.ReadKeyFile); the unit
// hands it over as a replicate.Key.
type Key [KeyLen]byte

// String redacts the key so it never lands in a log by accident.
func (k Key) String() string { return "replicate.Key(redacted)" }

// IsZero reports whether k is the zero key (never configured).
func (k Key) IsZero() bool { return k == Key{} }

// Errors of the sealed transport.
var (
	// ErrWrongKey means the peer's Auth frame did not open, or the peer
	// said ours did not. Between the two units that means different
	// failover keys; from anyone else it is a replayed or forged
	// handshake (the Auth frame is bound to both fresh nonces), which the
	// bytes cannot tell apart, so the message names both.
	ErrWrongKey = errors.New("replicate: authentication failed: the peers hold different failover keys, or the handshake was replayed or forged")
	// ErrDecrypt means a sealed frame failed authentication after the
	// handshake: tampering, corruption, or a frame out of place.
	ErrDecrypt = errors.New("replicate: frame failed authentication")
	// ErrReplay means a frame's sequence number is not above the last one.
	ErrReplay = errors.New("replicate: replayed or reordered frame")
	// ErrSeqGap means frames were lost: the sequence jumped.
	ErrSeqGap = errors.New("replicate: frame sequence gap")
	// ErrCleartext means a cleartext frame arrived where only sealed ones
	// are allowed.
	ErrCleartext = errors.New("replicate: cleartext frame after handshake")
)

// Direction labels used in HKDF info and in the AEAD nonce, so the two
// directions never share a key or a nonce, and a frame reflected back at its
// sender fails.
const (
	dirSenderToReceiver uint32 = 1
	dirReceiverToSender uint32 = 2
)

func dirInfo(dir uint32) string {
	if dir == dirSenderToReceiver {
		return "falab replicate v1 sender->receiver"
	}
	return "falab replicate v1 receiver->sender"
}

// deriveAEAD derives the key of one direction: HKDF-SHA256 over the failover
// key, salted with the transcript hash (both Hellos, so both nonces and
// roles), labelled with the direction.
func deriveAEAD(key Key, transcript [32]byte, dir uint32) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, key[:], transcript[:], dirInfo(dir), 32)
	if err != nil {
		return nil, fmt.Errorf("replicate: hkdf: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("replicate: aes: %w", err)
	}
	return cipher.NewGCM(block)
}

// sealer seals outgoing frames of one direction. Not safe for concurrent
// use: one goroutine writes a direction.
type sealer struct {
	aead  cipher.AEAD // nil until the handshake derived keys
	dir   uint32
	seq   uint64 // last sequence used
	nonce [12]byte
	hdr   [HeaderLen]byte
}

// appendFrame appends one frame of type t to dst. body appends the plaintext
// body. With no AEAD yet the frame goes out in cleartext with sequence 0
// (Hello, and Close when the handshake failed).
func (s *sealer) appendFrame(dst []byte, t MsgType, body func([]byte) ([]byte, error)) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, HeaderLen)...)
	dst, err := body(dst)
	if err != nil {
		return dst[:start], err
	}
	n := len(dst) - start - HeaderLen
	if n > MaxBody {
		return dst[:start], fmt.Errorf("%w: %v body %d bytes", ErrFrameTooLarge, t, n)
	}
	h := Header{Version: Version, Type: t}
	if s.aead != nil {
		s.seq++
		h.Flags = FlagEncrypted
		h.Seq = s.seq
		h.Length = uint32(n + s.aead.Overhead())
	} else {
		h.Length = uint32(n)
	}
	hb, _ := h.AppendBinary(s.hdr[:0])
	copy(dst[start:], hb)
	if s.aead == nil {
		return dst, nil
	}
	binary.BigEndian.PutUint32(s.nonce[:4], s.dir)
	binary.BigEndian.PutUint64(s.nonce[4:], s.seq)
	// Room for the tag, so sealing in place never reallocates away from dst.
	dst = slices.Grow(dst, s.aead.Overhead())
	plain := dst[start+HeaderLen:]
	// Seal in place; the header copy in s.hdr is the associated data (it
	// must not overlap the output).
	sealed := s.aead.Seal(plain[:0], s.nonce[:], plain, s.hdr[:])
	return dst[:start+HeaderLen+len(sealed)], nil
}

// appendMessage appends a frame carrying m.
func (s *sealer) appendMessage(dst []byte, m Message) ([]byte, error) {
	return s.appendFrame(dst, m.Type(), m.AppendBinary)
}

// maxCleartextBody is the largest cleartext body: a Close with the longest
// reason (Hello is smaller).
const maxCleartextBody = 2 + 2 + MaxReasonLen

// frameReader reads and opens the frames of one direction. Not safe for
// concurrent use.
type frameReader struct {
	r     *bufio.Reader
	aead  cipher.AEAD // nil during the handshake
	dir   uint32
	seq   uint64 // last sequence accepted
	buf   []byte // grows up to maxWireBody, after the header's length was checked
	hdr   [HeaderLen]byte
	nonce [12]byte
}

// next reads one frame and returns its type and plaintext body (valid until
// the next call). Before keys exist only cleartext frames are accepted;
// after, only sealed ones, in exact sequence.
func (f *frameReader) next() (Header, []byte, error) {
	if _, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
		return Header{}, nil, err
	}
	var h Header
	if err := h.UnmarshalBinary(f.hdr[:]); err != nil {
		return Header{}, nil, err
	}
	sealed := h.Flags&FlagEncrypted != 0
	switch {
	case f.aead != nil && !sealed:
		return h, nil, fmt.Errorf("%w: %v", ErrCleartext, h.Type)
	case f.aead == nil && sealed:
		return h, nil, fmt.Errorf("%w: sealed %v before keys were agreed", ErrDecrypt, h.Type)
	case sealed && h.Seq <= f.seq:
		return h, nil, fmt.Errorf("%w: got sequence %d, last was %d", ErrReplay, h.Seq, f.seq)
	case sealed && h.Seq != f.seq+1:
		return h, nil, fmt.Errorf("%w: got sequence %d, expected %d (%d frames lost)", ErrSeqGap, h.Seq, f.seq+1, h.Seq-f.seq-1)
	case !sealed && h.Length > maxCleartextBody:
		// Before authentication, allocate only what Hello or Close need.
		return h, nil, fmt.Errorf("%w: cleartext %v of %d bytes", ErrFrameTooLarge, h.Type, h.Length)
	case sealed && h.Length < tagSize:
		return h, nil, fmt.Errorf("%w: sealed body of %d bytes is shorter than the tag", ErrDecrypt, h.Length)
	}
	if cap(f.buf) < int(h.Length) {
		f.buf = make([]byte, h.Length, min(max(int(h.Length), 2*cap(f.buf)), maxWireBody))
	}
	body := f.buf[:h.Length]
	if _, err := io.ReadFull(f.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	if !sealed {
		return h, body, nil
	}
	binary.BigEndian.PutUint32(f.nonce[:4], f.dir)
	binary.BigEndian.PutUint64(f.nonce[4:], h.Seq)
	plain, err := f.aead.Open(body[:0], f.nonce[:], body, f.hdr[:])
	if err != nil {
		return h, nil, fmt.Errorf("%w: %v frame, sequence %d", ErrDecrypt, h.Type, h.Seq)
	}
	f.seq = h.Seq
	return h, plain, nil
}
