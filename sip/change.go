package sip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/falab/falab/recordio"
)

// Table names one of the inspector's replicated tables.
type Table uint8

// Tables, as an ASA's "show failover" lists them (SIP Session, SIP Tx,
// SIP Pinhole).
const (
	TableSession Table = iota + 1
	TableTransaction
	TablePinhole
	numTables = 3
)

// String returns the table's name as "show failover" prints it.
func (t Table) String() string {
	switch t {
	case TableSession:
		return "SIP Session"
	case TableTransaction:
		return "SIP Tx"
	case TablePinhole:
		return "SIP Pinhole"
	}
	return fmt.Sprintf("Table(%d)", uint8(t))
}

// Op is what a Change does to its record.
type Op uint8

// Change operations.
const (
	OpUpsert Op = iota + 1
	OpDelete
)

// Change is one replicated change of one table; of Session, Transaction
// and Pinhole only the one Table names is carried.
type Change struct {
	Table       Table
	Op          Op
	Session     Session
	Transaction Transaction
	Pinhole     PinholeRecord
}

// Wire format, version 1 (big endian; str is len(1) bytes(len)):
//
//	version(1)=1 table(1) op(1) bodyLen(2) body(bodyLen)
//	session:     callID(str) callerTag(str) calleeTag(str) state(1)
//	transaction: branch(str) method(str) cseq(4) callID(str) flags(1)
//	pinhole:     callID(str) side(1) proto(1) src(4) dst(4) dstPort(2) timeoutMillis(4)
//
// flags bit 0 is Completed. Strings are at most 255 bytes, which Parse
// guarantees of Call-IDs, tags, branches and methods.
const (
	changeVersion   = 1
	changeHeaderLen = 5
	flagCompleted   = 1
)

// Errors from ParseChange. Short input wraps io.ErrUnexpectedEOF.
var (
	ErrChangeVersion = errors.New("sip change: unknown version")
	ErrChangeKind    = errors.New("sip change: unknown table or op")
	ErrChangeField   = errors.New("sip change: invalid field")
	ErrChangeTrailer = errors.New("sip change: bytes after the record")
)

// AppendBinary appends the change's wire encoding to b.
func (c Change) AppendBinary(b []byte) []byte {
	start := len(b)
	b = append(b, changeVersion, byte(c.Table), byte(c.Op), 0, 0)
	switch c.Table {
	case TableSession:
		s := &c.Session
		b = recordio.AppendStr8(recordio.AppendStr8(recordio.AppendStr8(b, s.CallID), s.CallerTag), s.CalleeTag)
		b = append(b, byte(s.State))
	case TableTransaction:
		t := &c.Transaction
		b = recordio.AppendStr8(recordio.AppendStr8(b, t.Branch), t.Method)
		b = binary.BigEndian.AppendUint32(b, t.CSeq)
		b = recordio.AppendStr8(b, t.CallID)
		var fl byte
		if t.Completed {
			fl |= flagCompleted
		}
		b = append(b, fl)
	case TablePinhole:
		p := &c.Pinhole
		b = recordio.AppendStr8(b, p.CallID)
		b = append(b, byte(p.Side), p.Pinhole.Proto)
		b = append(b, p.Pinhole.Src[:]...)
		b = append(b, p.Pinhole.Dst[:]...)
		b = binary.BigEndian.AppendUint16(b, p.Pinhole.DstPort)
		b = binary.BigEndian.AppendUint32(b, uint32(p.Pinhole.Timeout/time.Millisecond))
	}
	binary.BigEndian.PutUint16(b[start+3:], uint16(len(b)-start-changeHeaderLen))
	return b
}

// MarshalBinary returns the change's wire encoding.
func (c Change) MarshalBinary() ([]byte, error) { return c.AppendBinary(nil), nil }

// UnmarshalBinary parses b into c (see ParseChange).
func (c *Change) UnmarshalBinary(b []byte) error {
	v, err := ParseChange(b)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// ParseChange decodes exactly one change as written by AppendBinary,
// rejecting unknown versions, tables and ops, impossible field values and
// bytes after the record.
func ParseChange(b []byte) (Change, error) {
	var c Change
	if len(b) < changeHeaderLen {
		return c, fmt.Errorf("sip change header: %w", io.ErrUnexpectedEOF)
	}
	if b[0] != changeVersion {
		return c, fmt.Errorf("%w %d", ErrChangeVersion, b[0])
	}
	c.Table, c.Op = Table(b[1]), Op(b[2])
	if c.Table < TableSession || c.Table > TablePinhole || c.Op != OpUpsert && c.Op != OpDelete {
		return Change{}, fmt.Errorf("%w: %d/%d", ErrChangeKind, b[1], b[2])
	}
	n := int(binary.BigEndian.Uint16(b[3:]))
	body := b[changeHeaderLen:]
	if len(body) < n {
		return Change{}, fmt.Errorf("sip change body: %w", io.ErrUnexpectedEOF)
	}
	if len(body) > n {
		return Change{}, ErrChangeTrailer
	}
	r := recordio.NewReader(body)
	var valid bool
	switch c.Table {
	case TableSession:
		s := &c.Session
		s.CallID, s.CallerTag, s.CalleeTag = r.Str8(), r.Str8(), r.Str8()
		s.State = State(r.U8())
		valid = s.CallID != "" && s.State >= StateInviteSent && s.State <= StateEnded
	case TableTransaction:
		t := &c.Transaction
		t.Branch, t.Method = r.Str8(), r.Str8()
		t.CSeq = r.U32()
		t.CallID = r.Str8()
		fl := r.U8()
		t.Completed = fl&flagCompleted != 0
		valid = t.Branch != "" && isToken([]byte(t.Method)) && t.CallID != "" && fl&^flagCompleted == 0
	case TablePinhole:
		p := &c.Pinhole
		p.CallID = r.Str8()
		p.Side, p.Pinhole.Proto = Side(r.U8()), r.U8()
		p.Pinhole.Src, p.Pinhole.Dst = r.Addr4(), r.Addr4()
		p.Pinhole.DstPort = r.U16()
		p.Pinhole.Timeout = time.Duration(r.U32()) * time.Millisecond
		valid = p.CallID != "" && p.Side <= SideCallee && (p.Pinhole.Proto == ProtoUDP || p.Pinhole.Proto == ProtoTCP) && p.Pinhole.DstPort != 0
	}
	if r.Short() {
		return Change{}, fmt.Errorf("sip change body: %w", io.ErrUnexpectedEOF)
	}
	if r.Len() != 0 {
		return Change{}, ErrChangeTrailer
	}
	if !valid {
		return Change{}, ErrChangeField
	}
	return c, nil
}

// Apply installs a change made by the active unit's inspector. The records
// carry no idle times: what it installs counts as seen at now.
func (in *Inspector) Apply(c Change, now time.Time) error {
	if _, err := ParseChange(c.AppendBinary(nil)); err != nil {
		in.mu.Lock()
		in.stats.ApplyError++
		in.mu.Unlock()
		return err
	}
	t := now.UnixNano()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.stats.Standby++
	switch c.Table {
	case TableSession:
		if c.Op == OpDelete {
			delete(in.sessions, c.Session.CallID)
		} else if s := in.sessions[c.Session.CallID]; s != nil {
			s.rec, s.lastSeen = c.Session, t
		} else {
			in.sessions[c.Session.CallID] = &session{rec: c.Session, lastSeen: t}
		}
	case TableTransaction:
		k := txKey{c.Transaction.Branch, c.Transaction.Method}
		if c.Op == OpDelete {
			delete(in.txs, k)
		} else {
			in.txs[k] = &transaction{rec: c.Transaction, lastSeen: t}
		}
	case TablePinhole:
		k := c.Pinhole.Pinhole.key()
		if c.Op == OpDelete {
			delete(in.pins, k)
		} else {
			rec := c.Pinhole
			in.pins[k] = &rec
		}
	}
	return nil
}

// Digests returns an order-independent digest of each table (indexed by
// Table-1): the sum of a hash of each record's encoding, so that equal
// tables give equal digests whatever the order the records arrived in.
func (in *Inspector) Digests() [numTables]uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	var d [numTables]uint64
	var buf [1024]byte
	for _, s := range in.sessions {
		d[0] += recordio.Hash(Change{Table: TableSession, Op: OpUpsert, Session: s.rec}.AppendBinary(buf[:0]))
	}
	for _, t := range in.txs {
		d[1] += recordio.Hash(Change{Table: TableTransaction, Op: OpUpsert, Transaction: t.rec}.AppendBinary(buf[:0]))
	}
	for _, p := range in.pins {
		d[2] += recordio.Hash(Change{Table: TablePinhole, Op: OpUpsert, Pinhole: *p}.AppendBinary(buf[:0]))
	}
	return d
}

// Len returns the number of records in each table (indexed by Table-1).
func (in *Inspector) Len() [numTables]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return [numTables]int{len(in.sessions), len(in.txs), len(in.pins)}
}
