package gtp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/falab/falab/recordio"
)

// TID identifies a PDP context as the ASA does: the subscriber's IMSI and
// the NSAPI of the context (GTPv0's tunnel identifier).
type TID struct {
	// IMSI is the IMSI information element's value as on the wire: TBCD
	// digits, low nibble first, padded with 0xF nibbles to 8 bytes.
	IMSI  [8]byte
	NSAPI uint8
}

// IMSIString returns the IMSI's decimal digits.
func (t TID) IMSIString() string {
	var sb strings.Builder
	for _, b := range t.IMSI {
		for _, d := range [2]byte{b & 0x0f, b >> 4} {
			if d > 9 {
				return sb.String()
			}
			sb.WriteByte('0' + d)
		}
	}
	return sb.String()
}

// String returns the TID as the ASA prints it: the 8 TID octets of GTPv0
// in hex, that is the IMSI's TBCD octets with the NSAPI in the last
// half-octet (IMSI 214365870921435, NSAPI 2 prints "1234567890123425").
func (t TID) String() string {
	b := t.IMSI
	b[7] = b[7]&0x0f | t.NSAPI<<4
	return fmt.Sprintf("%x", b[:])
}

// Record is the replicated form of a committed PDP context: everything a
// standby needs to pass its GTP-U and signalling after takeover. Packet
// counters and idle times are local to each unit and not part of it.
type Record struct {
	TID     TID
	Primary bool    // a primary PDP context (no linked NSAPI)
	MS      [4]byte // end user (MS) IPv4 address; zero for none (PPP, IPv6)
	APN     string  // access point name, dotted
	// Signalling (control) and user-traffic (data) addresses of both GSNs
	// and the TEIDs each GSN chose for receiving.
	SGSNControl, SGSNData, GGSNControl, GGSNData                 [4]byte
	SGSNControlTEID, SGSNDataTEID, GGSNControlTEID, GGSNDataTEID uint32
	Created                                                      int64 // unix nanoseconds of the commit
}

// Op is what a Change does to its context.
type Op uint8

// Change operations.
const (
	OpUpsert Op = iota + 1 // commit or update
	OpDelete
)

// String returns "upsert" or "delete".
func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Change is one replicated change of the PDP context database. For
// OpDelete only Record.TID matters, but the whole record is carried.
type Change struct {
	Op     Op
	Record Record
}

// Wire format, version 1 (big endian):
//
//	version(1)=1 op(1) bodyLen(2) body(bodyLen)
//	body: imsi(8) nsapi(1) flags(1) ms(4) sgsnC(4) sgsnD(4) ggsnC(4) ggsnD(4)
//	      sgsnCTEID(4) sgsnDTEID(4) ggsnCTEID(4) ggsnDTEID(4) created(8)
//	      apnLen(1) apn(apnLen)
//
// flags bit 0 is Primary. A reader of version 1 ignores body bytes past the
// fields it knows, so that later versions may append fields.
const (
	changeVersion   = 1
	changeHeaderLen = 4
	changeFixedBody = 8 + 1 + 1 + 4*5 + 4*4 + 8
	maxAPNLen       = 100 // 3GPP TS 23.003: an APN is at most 100 octets
	flagPrimary     = 1
	maxNSAPI        = 15 // a 4-bit field (TS 29.060 §7.7.17)
)

// Errors from ParseChange. Short input wraps io.ErrUnexpectedEOF.
var (
	ErrChangeVersion = errors.New("gtp change: unknown version")
	ErrChangeOp      = errors.New("gtp change: unknown op")
	ErrChangeField   = errors.New("gtp change: invalid field")
	ErrChangeTrailer = errors.New("gtp change: bytes after the record")
)

// AppendBinary appends the change's wire encoding to b.
func (c Change) AppendBinary(b []byte) []byte {
	start := len(b)
	r := &c.Record
	b = append(b, changeVersion, byte(c.Op), 0, 0)
	b = append(b, r.TID.IMSI[:]...)
	var fl byte
	if r.Primary {
		fl |= flagPrimary
	}
	b = append(b, r.TID.NSAPI, fl)
	for _, a := range [...][4]byte{r.MS, r.SGSNControl, r.SGSNData, r.GGSNControl, r.GGSNData} {
		b = append(b, a[:]...)
	}
	for _, t := range [...]uint32{r.SGSNControlTEID, r.SGSNDataTEID, r.GGSNControlTEID, r.GGSNDataTEID} {
		b = binary.BigEndian.AppendUint32(b, t)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.Created))
	b = recordio.AppendStr8(b, r.APN[:min(len(r.APN), maxAPNLen)])
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start-changeHeaderLen))
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

// ParseChange decodes exactly one change as written by AppendBinary. It
// rejects unknown versions and ops, impossible field values and bytes after
// the record, each with an error naming what was wrong.
func ParseChange(b []byte) (Change, error) {
	var c Change
	if len(b) < changeHeaderLen {
		return c, fmt.Errorf("gtp change header: %w", io.ErrUnexpectedEOF)
	}
	if b[0] != changeVersion {
		return c, fmt.Errorf("%w %d", ErrChangeVersion, b[0])
	}
	c.Op = Op(b[1])
	if c.Op != OpUpsert && c.Op != OpDelete {
		return Change{}, fmt.Errorf("%w %d", ErrChangeOp, b[1])
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	body := b[changeHeaderLen:]
	if len(body) < n {
		return Change{}, fmt.Errorf("gtp change body: %w", io.ErrUnexpectedEOF)
	}
	if len(body) > n {
		return Change{}, ErrChangeTrailer
	}
	if n < changeFixedBody+1 {
		return Change{}, fmt.Errorf("gtp change body: %w", io.ErrUnexpectedEOF)
	}
	r := &c.Record
	copy(r.TID.IMSI[:], body[0:8])
	r.TID.NSAPI = body[8]
	fl := body[9]
	r.Primary = fl&flagPrimary != 0
	p := 10
	for _, a := range [...]*[4]byte{&r.MS, &r.SGSNControl, &r.SGSNData, &r.GGSNControl, &r.GGSNData} {
		copy(a[:], body[p:p+4])
		p += 4
	}
	for _, t := range [...]*uint32{&r.SGSNControlTEID, &r.SGSNDataTEID, &r.GGSNControlTEID, &r.GGSNDataTEID} {
		*t = binary.BigEndian.Uint32(body[p:])
		p += 4
	}
	r.Created = int64(binary.BigEndian.Uint64(body[p:]))
	p += 8
	apnLen := int(body[p])
	p++
	if apnLen > maxAPNLen {
		return Change{}, fmt.Errorf("%w: apn length %d", ErrChangeField, apnLen)
	}
	if len(body)-p < apnLen {
		return Change{}, fmt.Errorf("gtp change apn: %w", io.ErrUnexpectedEOF)
	}
	r.APN = string(body[p : p+apnLen])
	if r.TID.NSAPI > maxNSAPI {
		return Change{}, fmt.Errorf("%w: nsapi %d", ErrChangeField, r.TID.NSAPI)
	}
	if fl&^flagPrimary != 0 {
		return Change{}, fmt.Errorf("%w: flags %#x", ErrChangeField, fl)
	}
	return c, nil
}

// recordHash is a context's contribution to the digest: a 64-bit hash of
// its replicated encoding with the op and commit time left out, so that the
// same context hashes the same on both units whatever its age.
func recordHash(r Record) uint64 {
	r.Created = 0
	var buf [changeHeaderLen + changeFixedBody + 1 + maxAPNLen]byte
	return recordio.Hash(Change{Op: OpUpsert, Record: r}.AppendBinary(buf[:0]))
}
