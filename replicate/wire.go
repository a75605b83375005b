package replicate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame header, 20 bytes, big endian:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-------------------------------+---------------+---------------+
//	|          Magic 0xFA5C         |    Version    |  Message type |
//	+---------------+---------------+---------------+---------------+
//	|     Flags     |              Reserved (must be zero)          |
//	+---------------+-----------------------------------------------+
//	|                      Body length (bytes)                      |
//	+---------------------------------------------------------------+
//	|                                                               |
//	+                Frame sequence number (per direction)          +
//	|                                                               |
//	+---------------------------------------------------------------+
//
// The body follows. When FlagEncrypted is set the body is AES-256-GCM
// ciphertext plus tag, sealed with the 20 header bytes as associated data, so
// the header (type, length, sequence) is authenticated too.
const (
	// Magic opens every frame; it tells a misdirected stream apart at once.
	Magic uint16 = 0xFA5C
	// Version is the only protocol version this package speaks. New
	// replicated tables are new table ids and need no new version.
	Version uint8 = 1
	// HeaderLen is the size of a frame header in bytes.
	HeaderLen = 20

	// MaxBody is the largest plaintext frame body. A header announcing more
	// (plus the AEAD tag) is rejected before anything is allocated.
	MaxBody = 1 << 20
	// MaxRecordPayload is the largest payload of one record (its length is a
	// uint16 on the wire).
	MaxRecordPayload = 0xFFFF
	// MaxReasonLen bounds the text of ResyncRequest and Close messages.
	MaxReasonLen = 1024
	// MaxTables bounds the number of tables a BulkStart or DigestMarker names.
	MaxTables = 256

	tagSize     = 16 // AES-GCM tag
	maxWireBody = MaxBody + tagSize

	offMagic    = 0
	offVersion  = 2
	offType     = 3
	offFlags    = 4
	offReserved = 5
	offLength   = 8
	offSeq      = 12

	recordHeaderLen  = 4  // table, op, payload length (uint16)
	recordsHeaderLen = 20 // sent-at, first seq, count
)

// Errors returned by the codec. Callers compare with errors.Is; the returned
// errors wrap these with the offending value.
var (
	ErrBadMagic      = errors.New("replicate: bad frame magic (not a falab state stream)")
	ErrVersion       = errors.New("replicate: unsupported protocol version")
	ErrReserved      = errors.New("replicate: reserved header bits set")
	ErrBadFlags      = errors.New("replicate: unknown frame flags")
	ErrFrameTooLarge = errors.New("replicate: frame body longer than the limit")
	ErrUnknownType   = errors.New("replicate: unknown message type")
	ErrBadOp         = errors.New("replicate: unknown record op")
	ErrBadRole       = errors.New("replicate: unknown role")
	ErrTrailingBytes = errors.New("replicate: trailing bytes after message")
	ErrTooLong       = errors.New("replicate: field longer than its limit")
	ErrBadCount      = errors.New("replicate: element count disagrees with body length")
	ErrUnsorted      = errors.New("replicate: digest tables not strictly ascending")
	ErrUnexpected    = errors.New("replicate: message out of place")
)

// MsgType names a message; it is the header's type byte.
type MsgType uint8

// Message types. Values are part of the wire format: never renumber.
const (
	MsgHello     MsgType = 1 // cleartext: role and nonce
	MsgAuth      MsgType = 2 // first sealed frame each way: proves the key
	MsgBulkStart MsgType = 3 // receiver resets the listed tables
	MsgRecords   MsgType = 4 // a batch of records (empty: keepalive)
	MsgBulkEnd   MsgType = 5 // end of the snapshot
	MsgDigest    MsgType = 6 // per-table digests at this stream position
	MsgAck       MsgType = 7 // receiver -> sender: applied sequence, echoed time
	MsgResync    MsgType = 8 // receiver -> sender: please bulk sync again
	MsgClose     MsgType = 9 // either way: the session ends, with a reason
)

// String returns the message type's name.
func (t MsgType) String() string {
	switch t {
	case MsgHello:
		return "Hello"
	case MsgAuth:
		return "Auth"
	case MsgBulkStart:
		return "BulkStart"
	case MsgRecords:
		return "Records"
	case MsgBulkEnd:
		return "BulkEnd"
	case MsgDigest:
		return "DigestMarker"
	case MsgAck:
		return "Ack"
	case MsgResync:
		return "ResyncRequest"
	case MsgClose:
		return "Close"
	}
	return fmt.Sprintf("MsgType(%d)", uint8(t))
}

// Flags is the header's flag byte.
type Flags uint8

// FlagEncrypted marks a sealed body. Every frame after Hello carries it.
const FlagEncrypted Flags = 1 << 0

const knownFlags = FlagEncrypted

// Header is a decoded frame header.
type Header struct {
	Version uint8
	Type    MsgType
	Flags   Flags
	Length  uint32 // body length on the wire (ciphertext and tag when sealed)
	Seq     uint64 // per-direction frame sequence; 0 for cleartext frames
}

// AppendBinary appends the 20-byte header to b.
func (h Header) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint16(b, Magic)
	b = append(b, h.Version, byte(h.Type), byte(h.Flags), 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, h.Length)
	b = binary.BigEndian.AppendUint64(b, h.Seq)
	return b, nil
}

// MarshalBinary returns the 20-byte header.
func (h Header) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, HeaderLen))
}

// UnmarshalBinary decodes and checks the first HeaderLen bytes of b: magic,
// version, reserved bits, flags and the length limit. It does not look at
// the body.
func (h *Header) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderLen {
		return io.ErrUnexpectedEOF
	}
	if m := binary.BigEndian.Uint16(b[offMagic:]); m != Magic {
		return fmt.Errorf("%w: %#04x", ErrBadMagic, m)
	}
	if v := b[offVersion]; v != Version {
		return fmt.Errorf("%w: peer speaks %d, we speak %d", ErrVersion, v, Version)
	}
	if b[offReserved] != 0 || b[offReserved+1] != 0 || b[offReserved+2] != 0 {
		return ErrReserved
	}
	f := Flags(b[offFlags])
	if f&^knownFlags != 0 {
		return fmt.Errorf("%w: %#02x", ErrBadFlags, uint8(f))
	}
	n := binary.BigEndian.Uint32(b[offLength:])
	if n > maxWireBody {
		return fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, n, maxWireBody)
	}
	*h = Header{
		Version: b[offVersion],
		Type:    MsgType(b[offType]),
		Flags:   f,
		Length:  n,
		Seq:     binary.BigEndian.Uint64(b[offSeq:]),
	}
	return nil
}

// Op is what a record does to its key.
type Op uint8

// Record ops. Both are idempotent when applied in stream order.
const (
	OpUpsert Op = 1
	OpDelete Op = 2
)

// String returns the op's name.
func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

func (o Op) valid() bool { return o == OpUpsert || o == OpDelete }

// Role is which end of the stream a peer is.
type Role uint8

// Roles. The sender is the active unit, the receiver the standby.
const (
	RoleSender   Role = 1
	RoleReceiver Role = 2
)

// String returns the role's name.
func (r Role) String() string {
	switch r {
	case RoleSender:
		return "sender"
	case RoleReceiver:
		return "receiver"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Message is one protocol message body. Each type is a pointer to a struct
// with a fixed MsgType.
type Message interface {
	Type() MsgType
	AppendBinary(b []byte) ([]byte, error)
	UnmarshalBinary(b []byte) error
}

// NewMessage returns an empty message of type t, ready for UnmarshalBinary.
func NewMessage(t MsgType) (Message, error) {
	switch t {
	case MsgHello:
		return new(Hello), nil
	case MsgAuth:
		return new(Auth), nil
	case MsgBulkStart:
		return new(BulkStart), nil
	case MsgRecords:
		return new(Records), nil
	case MsgBulkEnd:
		return new(BulkEnd), nil
	case MsgDigest:
		return new(DigestMarker), nil
	case MsgAck:
		return new(Ack), nil
	case MsgResync:
		return new(ResyncRequest), nil
	case MsgClose:
		return new(Close), nil
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownType, uint8(t))
}

// ParseMessage decodes a body of type t.
func ParseMessage(t MsgType, body []byte) (Message, error) {
	m, err := NewMessage(t)
	if err != nil {
		return nil, err
	}
	if err := m.UnmarshalBinary(body); err != nil {
		return nil, fmt.Errorf("%v: %w", t, err)
	}
	return m, nil
}

// marshal is the shared MarshalBinary.
func marshal(m Message) ([]byte, error) { return m.AppendBinary(nil) }

// NonceLen is the size of the handshake nonce each side contributes.
const NonceLen = 32

// Hello opens a session, in cleartext: who the peer is and its fresh nonce.
// Body: role(1) nonce(32).
type Hello struct {
	Role  Role
	Nonce [NonceLen]byte
}

// Type returns MsgHello.
func (*Hello) Type() MsgType { return MsgHello }

// AppendBinary appends the body to b.
func (m *Hello) AppendBinary(b []byte) ([]byte, error) {
	if m.Role != RoleSender && m.Role != RoleReceiver {
		return b, fmt.Errorf("%w: %d", ErrBadRole, uint8(m.Role))
	}
	b = append(b, byte(m.Role))
	return append(b, m.Nonce[:]...), nil
}

// MarshalBinary returns the body.
func (m *Hello) MarshalBinary() ([]byte, error) { return marshal(m) }

// UnmarshalBinary decodes the body.
func (m *Hello) UnmarshalBinary(b []byte) error {
	if len(b) < 1+NonceLen {
		return io.ErrUnexpectedEOF
	}
	if len(b) > 1+NonceLen {
		return ErrTrailingBytes
	}
	r := Role(b[0])
	if r != RoleSender && r != RoleReceiver {
		return fmt.Errorf("%w: %d", ErrBadRole, b[0])
	}
	m.Role = r
	copy(m.Nonce[:], b[1:])
	return nil
}

// Auth is the first sealed frame in each direction. That it opens proves the
// peer holds the same key; its body binds the transcript (both Hellos).
// Body: transcript hash(32).
type Auth struct {
	Transcript [32]byte
}

// Type returns MsgAuth.
func (*Auth) Type() MsgType { return MsgAuth }

// AppendBinary appends the body to b.
func (m *Auth) AppendBinary(b []byte) ([]byte, error) { return append(b, m.Transcript[:]...), nil }

// MarshalBinary returns the body.
func (m *Auth) MarshalBinary() ([]byte, error) { return marshal(m) }

// UnmarshalBinary decodes the body.
func (m *Auth) UnmarshalBinary(b []byte) error {
	if len(b) < 32 {
		return io.ErrUnexpectedEOF
	}
	if len(b) > 32 {
		return ErrTrailingBytes
	}
	copy(m.Transcript[:], b)
	return nil
}

// BulkStart begins a bulk sync: the receiver resets the listed tables, then
// applies the stream that follows. Body: bulk id(4) count(2) tables(count).
type BulkStart struct {
	BulkID uint32
	Tables []uint8
}

// Type returns MsgBulkStart.
func (*BulkStart) Type() MsgType { return MsgBulkStart }

// AppendBinary appends the body to b.
func (m *BulkStart) AppendBinary(b []byte) ([]byte, error) {
	if len(m.Tables) > MaxTables {
		return b, fmt.Errorf("%w: %d tables", ErrTooLong, len(m.Tables))
	}
	b = binary.BigEndian.AppendUint32(b, m.BulkID)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Tables)))
	return append(b, m.Tables...), nil
}

// MarshalBinary returns the body.
func (m *BulkStart) MarshalBinary() ([]byte, error) { return marshal(m) }

// UnmarshalBinary decodes the body.
func (m *BulkStart) UnmarshalBinary(b []byte) error {
	if len(b) < 6 {
		return io.ErrUnexpectedEOF
	}
	n := int(binary.BigEndian.Uint16(b[4:]))
	if n > MaxTables {
		return fmt.Errorf("%w: %d tables", ErrTooLong, n)
	}
	if len(b) < 6+n {
		return io.ErrUnexpectedEOF
	}
	if len(b) > 6+n {
		return ErrTrailingBytes
	}
	m.BulkID = binary.BigEndian.Uint32(b)
	m.Tables = append(m.Tables[:0], b[6:6+n]...)
	return nil
}

// Record is one change to one replicated table. Payload is opaque here: the
// table's owner encodes and decodes it.
type Record struct {
	Table   uint8
	Op      Op
	Payload []byte
}

// appendRecord appends one record in wire form: table(1) op(1) len(2) payload.
func appendRecord(b []byte, table uint8, op Op, payload []byte) []byte {
	b = append(b, table, byte(op))
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	return append(b, payload...)
}

// Records carries a batch of records. SentAt is the sender's clock (Unix
// nanoseconds) when the oldest record in the batch was queued; the receiver
// echoes it in its Ack so the sender measures lag on its own clock. FirstSeq
// is the stream sequence of the first record (records are numbered from 1 in
// each session). A batch with no records is a keepalive.
// Body: sent at(8) first seq(8) count(4) records.
type Records struct {
	SentAt   int64
	FirstSeq uint64
	Records  []Record
}

// Type returns MsgRecords.
func (*Records) Type() MsgType { return MsgRecords }

// AppendBinary appends the body to b.
func (m *Records) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint64(b, uint64(m.SentAt))
	b = binary.BigEndian.AppendUint64(b, m.FirstSeq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Records)))
	for i, r := range m.Records {
		if !r.Op.valid() {
			return b, fmt.Errorf("record %d: %w: %d", i, ErrBadOp, uint8(r.Op))
		}
		if len(r.Payload) > MaxRecordPayload {
			return b, fmt.Errorf("record %d: %w: payload %d bytes", i, ErrTooLong, len(r.Payload))
		}
		b = appendRecord(b, r.Table, r.Op, r.Payload)
	}
	return b, nil
}

// MarshalBinary returns the body.
func (m *Records) MarshalBinary() ([]byte, error) { return marshal(m) }

// UnmarshalBinary decodes the body. Payloads are copied, so b may be reused.
func (m *Records) UnmarshalBinary(b []byte) error {
	v := RecordsView(b)
	if err := v.Validate(); err != nil {
		return err
	}
	m.SentAt = v.SentAt()
	m.FirstSeq = v.FirstSeq()
	m.Records = make([]Record, 0, v.Count())
	v.Each(func(table uint8, op Op, payload []byte) {
		m.Records = append(m.Records, Record{Table: table, Op: op, Payload: append([]byte(nil), payload...)})
	})
	return nil
}

// RecordsView is a zero-copy view of a Records body. Call Validate once; the
// getters and Each assume a valid view.
type RecordsView []byte

// Validate checks the whole body: the count agrees with the records present,
// every op is known, nothing trails. It allocates nothing.
func (v RecordsView) Validate() error {
	if len(v) < recordsHeaderLen {
		return io.ErrUnexpectedEOF
	}
	n := binary.BigEndian.Uint32(v[16:])
	// Each record takes at least recordHeaderLen bytes: reject an absurd
	// count before walking.
	if uint64(n)*recordHeaderLen > uint64(len(v)-recordsHeaderLen) {
		return fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrBadCount, n, len(v)-recordsHeaderLen)
	}
	rest := v[recordsHeaderLen:]
	for i := uint32(0); i < n; i++ {
		if len(rest) < recordHeaderLen {
			return io.ErrUnexpectedEOF
		}
		if op := Op(rest[1]); !op.valid() {
			return fmt.Errorf("record %d: %w: %d", i, ErrBadOp, uint8(op))
		}
		l := int(binary.BigEndian.Uint16(rest[2:]))
		if len(rest) < recordHeaderLen+l {
			return io.ErrUnexpectedEOF
		}
		rest = rest[recordHeaderLen+l:]
	}
	if len(rest) != 0 {
		return ErrTrailingBytes
	}
	return nil
}

// SentAt returns the batch's queue time (sender clock, Unix nanoseconds).
func (v RecordsView) SentAt() int64 { return int64(binary.BigEndian.Uint64(v)) }

// FirstSeq returns the stream sequence of the first record.
func (v RecordsView) FirstSeq() uint64 { return binary.BigEndian.Uint64(v[8:]) }

// Count returns the number of records.
func (v RecordsView) Count() uint32 { return binary.BigEndian.Uint32(v[16:]) }

// Each calls fn for every record in order. payload aliases the view.
func (v RecordsView) Each(fn func(table uint8, op Op, payload []byte)) {
	rest := v[recordsHeaderLen:]
	for len(rest) >= recordHeaderLen {
		l := int(binary.BigEndian.Uint16(rest[2:]))
		fn(rest[0], Op(rest[1]), rest[recordHeaderLen:recordHeaderLen+l])
		rest = rest[recordHeaderLen+l:]
	}
}

// BulkEnd closes a bulk sync. Records is the number of snapshot records the
// sender emitted for it (incremental records interleaved are not counted).
// Body: bulk id(4) records(8).
type BulkEnd struct {
	BulkID  uint32
	Records uint64
}

// Type returns MsgBulkEnd.
func (*BulkEnd) Type() MsgType { return MsgBulkEnd }

// AppendBinary appends the body to b.
func (m *BulkEnd) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint32(b, m.BulkID)
	return binary.BigEndian.AppendUint64(b, m.Records), nil
}

// MarshalBinary returns the body.
func (m *BulkEnd) MarshalBinary() ([]byte, error) { return marshal(m) }

// UnmarshalBinary decodes the body.
func (m *BulkEnd) UnmarshalBinary(b []byte) error {
	if len(b) < 12 {
		return io.ErrUnexpectedEOF
	}
	if len(b) > 12 {
		return ErrTrailingBytes
	}
	m.BulkID = binary.BigEndian.Uint32(b)
	m.Records = binary.BigEndian.Uint64(b[4:])
	return nil
}

// TableDigest is one table's digest.
type TableDigest struct {
	Table  uint8
	Digest uint64
}

// DigestMarker carries the sender's per-table digests taken at this point of
// the stream: RecordSeq is the sequence of the last record before it, so a
// receiver that has applied exactly the records up to RecordSeq must hold the
// same digests. Tables are strictly ascending.
// Body: record seq(8) count(2) {table(1) digest(8)}*count.
type DigestMarker struct {
	RecordSeq uint64
	Digests   []TableDigest
}

// Type returns MsgDigest.
func (*DigestMarker) Type() MsgType { return MsgDigest }

// AppendBinary appends the body to b.
func (m *DigestMarker) AppendBinary(b []byte) ([]byte, error) {
	if len(m.Digests) > MaxTables {
		return b, fmt.Errorf("%w: %d digests", ErrTooLong, len(m.Digests))
	}
	for i := 1; i < len(m.Digests); i++ {
		if m.Digests[i].Table <= m.Digests[i-1].Table {
			return b, ErrUnsorted
		}
	}
	b = binary.BigEndian.AppendUint64(b, m.RecordSeq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Digests)))
	for _, d := range m.Digests {
		b = append(b, d.Table)
		b = binary.BigEndian.AppendUint64(b, d.Digest)
	}
	return b, nil
}

// MarshalBinary returns the body.
func (m *DigestMarker) MarshalBinary() ([]byte, error) { return marshal(m) }

// UnmarshalBinary decodes the body.
func (m *DigestMarker) UnmarshalBinary(b []byte) error {
	if len(b) < 10 {
		return io.ErrUnexpectedEOF
	}
	n := int(binary.BigEndian.Uint16(b[8:]))
	if n > MaxTables {
		return fmt.Errorf("%w: %d digests", ErrTooLong, n)
	}
	if len(b) < 10+9*n {
		return io.ErrUnexpectedEOF
	}
	if len(b) > 10+9*n {
		return ErrTrailingBytes
	}
	m.RecordSeq = binary.BigEndian.Uint64(b)
	m.Digests = make([]TableDigest, n)
	p := b[10:]
	for i := range m.Digests {
		m.Digests[i] = TableDigest{Table: p[0], Digest: binary.BigEndian.Uint64(p[1:])}
		if i > 0 && m.Digests[i].Table <= m.Digests[i-1].Table {
			return ErrUnsorted
		}
		p = p[9:]
	}
	return nil
}

// Ack tells the sender how far the receiver has applied: Seq is the last
// applied record sequence, EchoSentAt the SentAt of the last Records batch
// applied (the sender subtracts it from its clock to get lag).
// Body: seq(8) echo(8).
type Ack struct {
	Seq        uint64
	EchoSentAt int64
	// Synced is the receiver's verdict at this point: its last digest
	// comparison matched and no bulk sync is under way. It is how the
	// active knows its standby holds the tables, for `show failover`.
	Synced bool
}

// Type returns MsgAck.
func (*Ack) Type() MsgType { return MsgAck }

// ackFlagSynced is bit 0 of the Ack's flags byte.
const ackFlagSynced = 1

// AppendBinary appends the body to b.
func (m *Ack) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(m.EchoSentAt))
	var flags byte
	if m.Synced {
		flags |= ackFlagSynced
	}
	return append(b, flags), nil
}

// MarshalBinary returns the body.
func (m *Ack) MarshalBinary() ([]byte, error) { return marshal(m) }

// UnmarshalBinary decodes the body.
func (m *Ack) UnmarshalBinary(b []byte) error {
	if len(b) < 17 {
		return io.ErrUnexpectedEOF
	}
	if len(b) > 17 {
		return ErrTrailingBytes
	}
	if b[16]&^ackFlagSynced != 0 {
		return ErrReserved
	}
	m.Seq = binary.BigEndian.Uint64(b)
	m.EchoSentAt = int64(binary.BigEndian.Uint64(b[8:]))
	m.Synced = b[16]&ackFlagSynced != 0
	return nil
}

func appendReason(b []byte, s string) ([]byte, error) {
	if len(s) > MaxReasonLen {
		return b, fmt.Errorf("%w: reason %d bytes", ErrTooLong, len(s))
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...), nil
}

func parseReason(b []byte) (string, error) {
	if len(b) < 2 {
		return "", io.ErrUnexpectedEOF
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > MaxReasonLen {
		return "", fmt.Errorf("%w: reason %d bytes", ErrTooLong, n)
	}
	if len(b) < 2+n {
		return "", io.ErrUnexpectedEOF
	}
	if len(b) > 2+n {
		return "", ErrTrailingBytes
	}
	return string(b[2 : 2+n]), nil
}

// ResyncRequest asks the sender for a new bulk sync.
// Body: reason length(2) reason.
type ResyncRequest struct {
	Reason string
}

// Type returns MsgResync.
func (*ResyncRequest) Type() MsgType { return MsgResync }

// AppendBinary appends the body to b.
func (m *ResyncRequest) AppendBinary(b []byte) ([]byte, error) { return appendReason(b, m.Reason) }

// MarshalBinary returns the body.
func (m *ResyncRequest) MarshalBinary() ([]byte, error) { return marshal(m) }

// UnmarshalBinary decodes the body.
func (m *ResyncRequest) UnmarshalBinary(b []byte) error {
	s, err := parseReason(b)
	if err != nil {
		return err
	}
	m.Reason = s
	return nil
}

// CloseCode says why a session is closed.
type CloseCode uint16

// Close codes.
const (
	CloseNormal     CloseCode = 0 // orderly shutdown
	CloseAuthFailed CloseCode = 1 // the peer's Auth did not open: keys differ
	CloseProtocol   CloseCode = 2 // malformed or unexpected message
	CloseReplaced   CloseCode = 3 // a newer session took this one's place
)

// String returns the code's name.
func (c CloseCode) String() string {
	switch c {
	case CloseNormal:
		return "normal"
	case CloseAuthFailed:
		return "auth-failed"
	case CloseProtocol:
		return "protocol-error"
	case CloseReplaced:
		return "replaced"
	}
	return fmt.Sprintf("CloseCode(%d)", uint16(c))
}

// Close ends a session. It is sealed, except when the handshake failed and
// there is no shared key (then it is cleartext and only informative).
// Body: code(2) reason length(2) reason.
type Close struct {
	Code   CloseCode
	Reason string
}

// Type returns MsgClose.
func (*Close) Type() MsgType { return MsgClose }

// AppendBinary appends the body to b.
func (m *Close) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint16(b, uint16(m.Code))
	return appendReason(b, m.Reason)
}

// MarshalBinary returns the body.
func (m *Close) MarshalBinary() ([]byte, error) { return marshal(m) }

// UnmarshalBinary decodes the body.
func (m *Close) UnmarshalBinary(b []byte) error {
	if len(b) < 2 {
		return io.ErrUnexpectedEOF
	}
	s, err := parseReason(b[2:])
	if err != nil {
		return err
	}
	m.Code = CloseCode(binary.BigEndian.Uint16(b))
	m.Reason = s
	return nil
}
