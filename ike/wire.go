package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// IKE header (RFC 7296 §3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Initiator's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Responder's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Message ID                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            Length                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	HeaderLen        = 28
	payloadHeaderLen = 4
	version2         = 0x20
)

// ExchangeType is the IKE header's exchange type (RFC 7296 §3.1).
type ExchangeType uint8

// The exchanges a responder answers.
const (
	ExchangeIKESAInit     ExchangeType = 34
	ExchangeIKEAuth       ExchangeType = 35
	ExchangeCreateChildSA ExchangeType = 36
	ExchangeInformational ExchangeType = 37
)

func (e ExchangeType) String() string {
	switch e {
	case ExchangeIKESAInit:
		return "IKE_SA_INIT"
	case ExchangeIKEAuth:
		return "IKE_AUTH"
	case ExchangeCreateChildSA:
		return "CREATE_CHILD_SA"
	case ExchangeInformational:
		return "INFORMATIONAL"
	}
	return fmt.Sprintf("exchange(%d)", uint8(e))
}

// Header flags.
const (
	FlagInitiator = 0x08
	FlagVersion   = 0x10
	FlagResponse  = 0x20
)

// PayloadType is the type of a payload in the chain (RFC 7296 §3.2).
type PayloadType uint8

// Payload types. Those this package understands are listed in known.
const (
	PayloadNone     PayloadType = 0
	PayloadSA       PayloadType = 33
	PayloadKE       PayloadType = 34
	PayloadIDi      PayloadType = 35
	PayloadIDr      PayloadType = 36
	PayloadCert     PayloadType = 37
	PayloadCertReq  PayloadType = 38
	PayloadAuth     PayloadType = 39
	PayloadNonce    PayloadType = 40
	PayloadNotify   PayloadType = 41
	PayloadDelete   PayloadType = 42
	PayloadVendor   PayloadType = 43
	PayloadTSi      PayloadType = 44
	PayloadTSr      PayloadType = 45
	PayloadSK       PayloadType = 46
	PayloadCP       PayloadType = 47
	PayloadEAP      PayloadType = 48
	PayloadFragment PayloadType = 53
)

// known reports whether a payload type is one an IKEv2 implementation must
// understand: an unknown one flagged critical makes the whole message
// unacceptable (RFC 7296 §2.5). CERT, CERTREQ, CP and EAP are known (they
// are in RFC 7296) but ignored by this PSK responder.
func (t PayloadType) known() bool {
	return t >= PayloadSA && t <= PayloadEAP || t == PayloadFragment
}

// Errors of the codec. Every parse error wraps one of them.
var (
	ErrShort     = errors.New("ike: message truncated")
	ErrLength    = errors.New("ike: length field inconsistent")
	ErrVersion   = errors.New("ike: not IKE version 2")
	ErrSyntax    = errors.New("ike: invalid payload syntax")
	ErrNoSK      = errors.New("ike: expected an encrypted payload")
	ErrIntegrity = errors.New("ike: integrity check failed")
)

// UnsupportedCriticalError reports an unknown payload with the critical bit
// set; the responder answers it with UNSUPPORTED_CRITICAL_PAYLOAD.
type UnsupportedCriticalError struct{ Type PayloadType }

func (e *UnsupportedCriticalError) Error() string {
	return fmt.Sprintf("ike: unsupported critical payload %d", e.Type)
}

// Header is the fixed IKE header.
type Header struct {
	SPIi, SPIr  uint64
	NextPayload PayloadType
	Version     uint8
	Exchange    ExchangeType
	Flags       uint8
	MessageID   uint32
	Length      uint32
}

// IsResponse reports whether the R flag is set.
func (h Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// ParseHeader reads the fixed header. It checks the major version and that
// Length is no shorter than the header; it does not compare Length with
// len(b) (ParseMessage does).
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, ErrShort
	}
	h := Header{
		SPIi:        binary.BigEndian.Uint64(b[0:8]),
		SPIr:        binary.BigEndian.Uint64(b[8:16]),
		NextPayload: PayloadType(b[16]),
		Version:     b[17],
		Exchange:    ExchangeType(b[18]),
		Flags:       b[19],
		MessageID:   binary.BigEndian.Uint32(b[20:24]),
		Length:      binary.BigEndian.Uint32(b[24:28]),
	}
	if h.Version>>4 != 2 {
		return h, ErrVersion
	}
	if h.Length < HeaderLen {
		return h, ErrLength
	}
	return h, nil
}

// appendHeader appends h; Version is always written as 2.0.
func appendHeader(b []byte, h Header) []byte {
	b = binary.BigEndian.AppendUint64(b, h.SPIi)
	b = binary.BigEndian.AppendUint64(b, h.SPIr)
	b = append(b, byte(h.NextPayload), version2, byte(h.Exchange), h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}

// Payload is one payload of the chain with its body undecoded. For the SK
// payload, Next is the type of the first payload inside it and Offset the
// position of its generic header in the message (the start of what the
// integrity check covers beyond the IKE header).
type Payload struct {
	Type     PayloadType
	Critical bool
	Body     []byte
	Next     PayloadType
	Offset   int
}

// Message is a parsed IKE message. If it carries an SK payload, Payloads
// ends with it still encrypted; Decrypt replaces it by the inner payloads.
type Message struct {
	Header
	Payloads []Payload
	Raw      []byte
}

// ParseMessage parses the header and the outer payload chain of b. The
// message keeps references into b.
func ParseMessage(b []byte) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if int(h.Length) != len(b) {
		return nil, fmt.Errorf("%w: header says %d bytes, datagram has %d", ErrLength, h.Length, len(b))
	}
	ps, err := parseChain(b, HeaderLen, h.NextPayload)
	if err != nil {
		return nil, err
	}
	return &Message{Header: h, Payloads: ps, Raw: b}, nil
}

// parseChain parses the generic payload chain in b[off:], the first payload
// being of type first. An SK payload ends the chain: its next-payload field
// names its first inner payload.
func parseChain(b []byte, off int, first PayloadType) ([]Payload, error) {
	var ps []Payload
	next := first
	for next != PayloadNone {
		if len(b)-off < payloadHeaderLen {
			return nil, fmt.Errorf("%w: payload %d header", ErrShort, next)
		}
		length := int(binary.BigEndian.Uint16(b[off+2:]))
		if length < payloadHeaderLen || length > len(b)-off {
			return nil, fmt.Errorf("%w: payload %d length %d", ErrLength, next, length)
		}
		p := Payload{
			Type:     next,
			Critical: b[off+1]&0x80 != 0,
			Body:     b[off+payloadHeaderLen : off+length],
			Next:     PayloadType(b[off]),
			Offset:   off,
		}
		ps = append(ps, p)
		off += length
		if next == PayloadSK {
			if off != len(b) {
				return nil, fmt.Errorf("%w: bytes after the encrypted payload", ErrSyntax)
			}
			return ps, nil
		}
		next = p.Next
	}
	if off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the last payload", ErrLength, len(b)-off)
	}
	return ps, nil
}

// checkCritical returns an UnsupportedCriticalError for the first unknown
// critical payload and drops unknown non-critical ones (RFC 7296 §2.5).
func checkCritical(ps []Payload) ([]Payload, error) {
	out := ps[:0]
	for _, p := range ps {
		if p.Type.known() {
			out = append(out, p)
			continue
		}
		if p.Critical {
			return nil, &UnsupportedCriticalError{Type: p.Type}
		}
	}
	return out, nil
}

// appendPayloads encodes a chain. The caller has put the first type in the
// enclosing header; the last payload's next field is 0.
func appendPayloads(b []byte, ps []Payload) []byte {
	for i, p := range ps {
		next := PayloadNone
		if i+1 < len(ps) {
			next = ps[i+1].Type
		}
		flags := byte(0)
		if p.Critical {
			flags = 0x80
		}
		b = append(b, byte(next), flags)
		b = binary.BigEndian.AppendUint16(b, uint16(payloadHeaderLen+len(p.Body)))
		b = append(b, p.Body...)
	}
	return b
}

// encodeMessage encodes an unencrypted message (IKE_SA_INIT).
func encodeMessage(h Header, ps []Payload) []byte {
	h.NextPayload = PayloadNone
	if len(ps) > 0 {
		h.NextPayload = ps[0].Type
	}
	body := appendPayloads(nil, ps)
	h.Length = uint32(HeaderLen + len(body))
	return append(appendHeader(make([]byte, 0, int(h.Length)), h), body...)
}

// find returns the first payload of type t, or nil.
func find(ps []Payload, t PayloadType) *Payload {
	for i := range ps {
		if ps[i].Type == t {
			return &ps[i]
		}
	}
	return nil
}
