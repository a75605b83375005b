package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
)

// ESP packet with AES-GCM (RFC 4303 §2, RFC 4106 §3):
//
//	0                   1                   2                   3
//	0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               Security Parameters Index (SPI)                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      Sequence Number                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Initialization Vector (8 bytes)               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~      Inner IPv4 packet, Padding, Pad Length, Next Header 4    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Integrity Check Value (16 bytes)              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	offSPI    = 0
	offSeq    = 4
	offIV     = 8
	headerLen = 16 // SPI, sequence number, IV
	ivLen     = 8
	icvLen    = 16
	saltLen   = 4
	// Overhead is what Encap adds at most: header, ICV, up to 3 bytes of
	// padding, pad length and next header.
	Overhead = headerLen + icvLen + 3 + 2

	nextHeaderIPv4 = 4  // IP-in-IP: tunnel mode carrying IPv4
	nextHeaderNone = 59 // a dummy packet (RFC 4303 §2.6), dropped
)

// Errors. A packet that fails is dropped and changes no state.
var (
	ErrShort          = errors.New("esp: packet too short")
	ErrSPI            = errors.New("esp: SPI does not match the SA")
	ErrReplay         = errors.New("esp: sequence number replayed or left of the window")
	ErrAuth           = errors.New("esp: integrity check failed")
	ErrPadding        = errors.New("esp: invalid padding")
	ErrNextHeader     = errors.New("esp: next header is not IPv4")
	ErrLeaseExhausted = errors.New("esp: sequence lease exhausted")
	ErrKey            = errors.New("esp: key must be 16 or 32 bytes and salt 4")
)

func newGCM(key, salt []byte) (cipher.AEAD, [saltLen]byte, error) {
	var s [saltLen]byte
	if (len(key) != 16 && len(key) != 32) || len(salt) != saltLen {
		return nil, s, ErrKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, s, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, s, err
	}
	copy(s[:], salt)
	return g, s, nil
}

// Outbound is the sending half of a child SA. It is not safe for
// concurrent use; the caller serialises Encap and Grant.
type Outbound struct {
	spi   uint32
	aead  cipher.AEAD
	salt  [saltLen]byte
	next  uint64                // the next sequence number to send
	limit uint64                // numbers below limit may be sent
	block uint64                // size of the last grant, for NeedGrant
	nonce [saltLen + ivLen]byte // scratch: a local array would escape to the heap through cipher.AEAD
}

// maxSeq is the last usable number without ESN.
const maxSeq = 1<<32 - 1

// NewOutbound makes the sender of SPI spi. next is the first sequence
// number to use: 1 for a new SA, the acknowledged lease limit at a
// takeover. Nothing may be sent until Grant.
func NewOutbound(spi uint32, key, salt []byte, next uint64) (*Outbound, error) {
	g, s, err := newGCM(key, salt)
	if err != nil {
		return nil, err
	}
	if next == 0 {
		next = 1
	}
	return &Outbound{spi: spi, aead: g, salt: s, next: next, limit: next}, nil
}

// Grant lets the sender use sequence numbers below upTo. The caller grants
// a limit only after the standby has acknowledged it. A lower limit than
// the current one is ignored: leases only grow.
func (o *Outbound) Grant(upTo uint64) {
	if upTo > maxSeq+1 {
		upTo = maxSeq + 1
	}
	if upTo > o.limit {
		o.block = upTo - o.limit
		o.limit = upTo
	}
}

// Next is the next sequence number Encap will use; Limit the lease's end.
func (o *Outbound) Next() uint64  { return o.next }
func (o *Outbound) Limit() uint64 { return o.limit }

// NeedGrant reports that less than half of the last grant is left, the
// time to ask the standby to acknowledge the next block.
func (o *Outbound) NeedGrant() bool {
	return o.limit <= maxSeq && o.limit-o.next < (o.block+1)/2
}

// Encap appends to dst the ESP packet (the UDP payload on port 4500)
// carrying inner. It allocates nothing when dst has room for
// len(inner)+Overhead bytes.
func (o *Outbound) Encap(dst, inner []byte) ([]byte, error) {
	if o.next >= o.limit {
		return dst, ErrLeaseExhausted
	}
	seq := o.next
	o.next++
	pad := (4 - (len(inner)+2)%4) % 4
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, o.spi)
	dst = binary.BigEndian.AppendUint32(dst, uint32(seq))
	dst = binary.BigEndian.AppendUint64(dst, seq) // IV: the sequence number
	ptStart := len(dst)
	dst = append(dst, inner...)
	for i := 1; i <= pad; i++ {
		dst = append(dst, byte(i)) // monotonic padding, RFC 4303 §2.4
	}
	dst = append(dst, byte(pad), nextHeaderIPv4)
	copy(o.nonce[:], o.salt[:])
	copy(o.nonce[saltLen:], dst[start+offIV:start+headerLen])
	aad := dst[start : start+offIV]
	return o.aead.Seal(dst[:ptStart], o.nonce[:], dst[ptStart:], aad), nil
}

// Inbound is the receiving half of a child SA. It is not safe for
// concurrent use.
type Inbound struct {
	spi    uint32
	aead   cipher.AEAD
	salt   [saltLen]byte
	replay Window
	nonce  [saltLen + ivLen]byte // scratch, as in Outbound
}

// NewInbound makes the receiver of SPI spi with a replay window of
// windowBits (64 or 1024; other multiples of 64 work too).
func NewInbound(spi uint32, key, salt []byte, windowBits int) (*Inbound, error) {
	g, s, err := newGCM(key, salt)
	if err != nil {
		return nil, err
	}
	w, err := NewWindow(windowBits)
	if err != nil {
		return nil, err
	}
	return &Inbound{spi: spi, aead: g, salt: s, replay: *w}, nil
}

// Window exposes the replay window (to sync its top to the standby).
func (in *Inbound) Window() *Window { return &in.replay }

// Decap checks the ESP packet pkt and appends its inner IPv4 packet to
// dst. The replay window moves only for a packet whose ICV verifies
// (RFC 4303 §3.4.3). It allocates nothing when dst has room.
func (in *Inbound) Decap(dst, pkt []byte) ([]byte, error) {
	if len(pkt) < headerLen+icvLen+2 {
		return dst, ErrShort
	}
	if binary.BigEndian.Uint32(pkt[offSPI:]) != in.spi {
		return dst, ErrSPI
	}
	seq := binary.BigEndian.Uint32(pkt[offSeq:])
	if !in.replay.Check(seq) {
		return dst, ErrReplay
	}
	copy(in.nonce[:], in.salt[:])
	copy(in.nonce[saltLen:], pkt[offIV:headerLen])
	start := len(dst)
	out, err := in.aead.Open(dst, in.nonce[:], pkt[headerLen:], pkt[:offIV])
	if err != nil {
		return dst, ErrAuth
	}
	pt := out[start:]
	padLen, next := int(pt[len(pt)-2]), pt[len(pt)-1]
	if padLen+2 > len(pt) {
		return dst, ErrPadding
	}
	for i := 0; i < padLen; i++ {
		if pt[len(pt)-2-padLen+i] != byte(i+1) {
			return dst, ErrPadding
		}
	}
	if next != nextHeaderIPv4 {
		// Authentic but not for us (a dummy packet or not tunnel mode):
		// it still counts as received for the window.
		in.replay.Accept(seq)
		return dst, ErrNextHeader
	}
	in.replay.Accept(seq)
	return out[:len(out)-2-padLen], nil
}

// IsIKE reports whether a UDP payload on port 4500 is IKE: it starts with
// the four-byte non-ESP marker (RFC 3948 §2.2), which no ESP SPI can be.
func IsIKE(udp []byte) bool {
	return len(udp) >= 4 && udp[0]|udp[1]|udp[2]|udp[3] == 0
}

// IsKeepalive reports a NAT-keepalive: a single 0xFF byte (RFC 3948 §2.3).
func IsKeepalive(udp []byte) bool { return len(udp) == 1 && udp[0] == 0xff }
