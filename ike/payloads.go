package ike

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// ProtocolID names the protocol of a proposal, notify or delete.
type ProtocolID uint8

// Protocol IDs (RFC 7296 §3.3.1).
const (
	ProtoIKE ProtocolID = 1
	ProtoAH  ProtocolID = 2
	ProtoESP ProtocolID = 3
)

// TransformType is the kind of a transform (RFC 7296 §3.3.2).
type TransformType uint8

// Transform types.
const (
	TransformEncr  TransformType = 1
	TransformPRF   TransformType = 2
	TransformInteg TransformType = 3
	TransformDH    TransformType = 4
	TransformESN   TransformType = 5
)

// Transform IDs used here (IANA IKEv2 registry).
const (
	EncrAESCBC    uint16 = 12
	EncrAESGCM16  uint16 = 20
	PRFHMACSHA256 uint16 = 5
	IntegNone     uint16 = 0
	IntegSHA256   uint16 = 12 // AUTH_HMAC_SHA2_256_128
	DHNone        uint16 = 0
	DHMODP2048    uint16 = 14
	DHECP256      uint16 = 19
	DHCurve25519  uint16 = 31
	ESNNone       uint16 = 0
	ESNYes        uint16 = 1
	attrKeyLength        = 14
)

// Transform is one transform; KeyLength is the key-length attribute in bits
// (0 when absent). Unknown is set when the transform carried an attribute
// this package does not know, which makes it unselectable (RFC 7296 §3.3.6).
type Transform struct {
	Type      TransformType
	ID        uint16
	KeyLength uint16
	Unknown   bool
}

// Proposal is one proposal substructure of an SA payload.
type Proposal struct {
	Number     uint8
	Protocol   ProtocolID
	SPI        []byte
	Transforms []Transform
}

// ParseSA decodes an SA payload body into its proposals.
func ParseSA(b []byte) ([]Proposal, error) {
	var props []Proposal
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, fmt.Errorf("%w: proposal header", ErrShort)
		}
		last, length := b[0], int(binary.BigEndian.Uint16(b[2:4]))
		if length < 8 || length > len(b) {
			return nil, fmt.Errorf("%w: proposal length %d", ErrLength, length)
		}
		p := Proposal{Number: b[4], Protocol: ProtocolID(b[5])}
		spiSize, n := int(b[6]), int(b[7])
		body := b[8:length]
		if spiSize > len(body) {
			return nil, fmt.Errorf("%w: proposal SPI size %d", ErrLength, spiSize)
		}
		p.SPI, body = body[:spiSize], body[spiSize:]
		ts, err := parseTransforms(body, n)
		if err != nil {
			return nil, err
		}
		p.Transforms = ts
		props = append(props, p)
		b = b[length:]
		if last == 0 {
			break
		}
		if last != 2 {
			return nil, fmt.Errorf("%w: proposal last-substructure %d", ErrSyntax, last)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: bytes after the last proposal", ErrSyntax)
	}
	if len(props) == 0 {
		return nil, fmt.Errorf("%w: SA payload without proposals", ErrSyntax)
	}
	return props, nil
}

func parseTransforms(b []byte, n int) ([]Transform, error) {
	ts := make([]Transform, 0, n)
	for i := 0; i < n; i++ {
		if len(b) < 8 {
			return nil, fmt.Errorf("%w: transform header", ErrShort)
		}
		length := int(binary.BigEndian.Uint16(b[2:4]))
		if length < 8 || length > len(b) {
			return nil, fmt.Errorf("%w: transform length %d", ErrLength, length)
		}
		t := Transform{Type: TransformType(b[4]), ID: binary.BigEndian.Uint16(b[6:8])}
		attrs := b[8:length]
		for len(attrs) > 0 {
			if len(attrs) < 4 {
				return nil, fmt.Errorf("%w: transform attribute", ErrShort)
			}
			typ := binary.BigEndian.Uint16(attrs[0:2])
			if typ&0x8000 != 0 { // TV format: value in the length field
				if typ&0x7fff == attrKeyLength {
					t.KeyLength = binary.BigEndian.Uint16(attrs[2:4])
				} else {
					t.Unknown = true
				}
				attrs = attrs[4:]
				continue
			}
			l := int(binary.BigEndian.Uint16(attrs[2:4]))
			if 4+l > len(attrs) {
				return nil, fmt.Errorf("%w: transform attribute length", ErrLength)
			}
			t.Unknown = true
			attrs = attrs[4+l:]
		}
		ts = append(ts, t)
		b = b[length:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: bytes after the last transform", ErrSyntax)
	}
	return ts, nil
}

// appendSA encodes proposals as an SA payload body.
func appendSA(b []byte, props []Proposal) []byte {
	for i, p := range props {
		start := len(b)
		last := byte(2)
		if i == len(props)-1 {
			last = 0
		}
		b = append(b, last, 0, 0, 0, p.Number, byte(p.Protocol), byte(len(p.SPI)), byte(len(p.Transforms)))
		b = append(b, p.SPI...)
		for j, t := range p.Transforms {
			tl := byte(3)
			if j == len(p.Transforms)-1 {
				tl = 0
			}
			length := uint16(8)
			if t.KeyLength != 0 {
				length = 12
			}
			b = append(b, tl, 0)
			b = binary.BigEndian.AppendUint16(b, length)
			b = append(b, byte(t.Type), 0)
			b = binary.BigEndian.AppendUint16(b, t.ID)
			if t.KeyLength != 0 {
				b = binary.BigEndian.AppendUint16(b, 0x8000|attrKeyLength)
				b = binary.BigEndian.AppendUint16(b, t.KeyLength)
			}
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	return b
}

// KE is a Key Exchange payload body.
type KE struct {
	Group uint16
	Data  []byte
}

// ParseKE decodes a KE payload body.
func ParseKE(b []byte) (KE, error) {
	if len(b) < 4 {
		return KE{}, fmt.Errorf("%w: KE", ErrShort)
	}
	return KE{Group: binary.BigEndian.Uint16(b), Data: b[4:]}, nil
}

func appendKE(b []byte, k KE) []byte {
	b = binary.BigEndian.AppendUint16(b, k.Group)
	return append(append(b, 0, 0), k.Data...)
}

// ID types (RFC 7296 §3.5).
const (
	IDIPv4   uint8 = 1
	IDFQDN   uint8 = 2
	IDRFC822 uint8 = 3
	IDIPv6   uint8 = 5
	IDKeyID  uint8 = 11
)

// Identity is an IDi/IDr payload body, and also what AUTH signs of it
// (RestOfIDPayload, RFC 7296 §2.15).
type Identity struct {
	Type uint8
	Data []byte
}

// ParseIdentity decodes an ID payload body.
func ParseIdentity(b []byte) (Identity, error) {
	if len(b) < 4 {
		return Identity{}, fmt.Errorf("%w: ID", ErrShort)
	}
	return Identity{Type: b[0], Data: b[4:]}, nil
}

func (id Identity) body() []byte { return append([]byte{id.Type, 0, 0, 0}, id.Data...) }

// String formats the identity as strongSwan would print it.
func (id Identity) String() string {
	switch id.Type {
	case IDIPv4, IDIPv6:
		if a, ok := netip.AddrFromSlice(id.Data); ok {
			return a.String()
		}
	case IDFQDN, IDRFC822, IDKeyID:
		return string(id.Data)
	}
	return fmt.Sprintf("id(%d):%x", id.Type, id.Data)
}

// AuthMethodPSK is the Shared Key Message Integrity Code (RFC 7296 §3.8).
const AuthMethodPSK uint8 = 2

// Auth is an AUTH payload body.
type Auth struct {
	Method uint8
	Data   []byte
}

// ParseAuth decodes an AUTH payload body.
func ParseAuth(b []byte) (Auth, error) {
	if len(b) < 4 {
		return Auth{}, fmt.Errorf("%w: AUTH", ErrShort)
	}
	return Auth{Method: b[0], Data: b[4:]}, nil
}

func appendAuth(b []byte, a Auth) []byte { return append(append(b, a.Method, 0, 0, 0), a.Data...) }

// NotifyType is a Notify message type (RFC 7296 §3.10.1).
type NotifyType uint16

// Notify types used here. Types below 16384 are errors.
const (
	NotifyUnsupportedCritical NotifyType = 1
	NotifyInvalidIKESPI       NotifyType = 4
	NotifyInvalidSyntax       NotifyType = 7
	NotifyInvalidMessageID    NotifyType = 9
	NotifyNoProposalChosen    NotifyType = 14
	NotifyInvalidKE           NotifyType = 17
	NotifyAuthFailed          NotifyType = 24
	NotifyTSUnacceptable      NotifyType = 38
	NotifyTemporaryFailure    NotifyType = 43
	NotifyChildSANotFound     NotifyType = 44
	NotifyInitialContact      NotifyType = 16384
	NotifyNATSourceIP         NotifyType = 16388
	NotifyNATDestinationIP    NotifyType = 16389
	NotifyCookie              NotifyType = 16390
	NotifyUseTransportMode    NotifyType = 16391
	NotifyRekeySA             NotifyType = 16393
	NotifyESPTFCNotSupported  NotifyType = 16394
	// RFC 6311: IKEv2 message ID synchronization for high availability.
	NotifyMessageIDSyncSupported NotifyType = 16420
	NotifyMessageIDSync          NotifyType = 16422
)

// Notify is a Notify payload body.
type Notify struct {
	Protocol ProtocolID
	SPI      []byte
	Type     NotifyType
	Data     []byte
}

// ParseNotify decodes a Notify payload body.
func ParseNotify(b []byte) (Notify, error) {
	if len(b) < 4 {
		return Notify{}, fmt.Errorf("%w: notify", ErrShort)
	}
	spiSize := int(b[1])
	if 4+spiSize > len(b) {
		return Notify{}, fmt.Errorf("%w: notify SPI size %d", ErrLength, spiSize)
	}
	return Notify{
		Protocol: ProtocolID(b[0]),
		Type:     NotifyType(binary.BigEndian.Uint16(b[2:4])),
		SPI:      b[4 : 4+spiSize],
		Data:     b[4+spiSize:],
	}, nil
}

func appendNotify(b []byte, n Notify) []byte {
	b = append(b, byte(n.Protocol), byte(len(n.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(n.Type))
	return append(append(b, n.SPI...), n.Data...)
}

// notifyPayload is a notify about the IKE SA (no protocol, no SPI).
func notifyPayload(t NotifyType, data []byte) Payload {
	return Payload{Type: PayloadNotify, Body: appendNotify(nil, Notify{Type: t, Data: data})}
}

// Delete is a Delete payload body. For IKE it has no SPIs.
type Delete struct {
	Protocol ProtocolID
	SPIs     [][]byte
}

// ParseDelete decodes a Delete payload body.
func ParseDelete(b []byte) (Delete, error) {
	if len(b) < 4 {
		return Delete{}, fmt.Errorf("%w: delete", ErrShort)
	}
	d := Delete{Protocol: ProtocolID(b[0])}
	size, n := int(b[1]), int(binary.BigEndian.Uint16(b[2:4]))
	rest := b[4:]
	if size*n != len(rest) || (size == 0) != (n == 0) {
		return Delete{}, fmt.Errorf("%w: delete of %d SPIs of %d bytes in %d bytes", ErrLength, n, size, len(rest))
	}
	for i := 0; i < n; i++ {
		d.SPIs = append(d.SPIs, rest[i*size:(i+1)*size])
	}
	return d, nil
}

func appendDelete(b []byte, d Delete) []byte {
	size := 0
	if len(d.SPIs) > 0 {
		size = len(d.SPIs[0])
	}
	b = append(b, byte(d.Protocol), byte(size))
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.SPIs)))
	for _, s := range d.SPIs {
		b = append(b, s...)
	}
	return b
}

// TS types.
const (
	tsIPv4 = 7
	tsIPv6 = 8
)

// Selector is one traffic selector: an address range, a port range and an
// IP protocol (0 = any).
type Selector struct {
	Protocol           uint8
	StartPort, EndPort uint16
	Start, End         netip.Addr
}

// String prints the selector like strongSwan (range or prefix, then
// [proto/port] when not "any").
func (s Selector) String() string {
	str := s.Start.String() + ".." + s.End.String()
	if s.Protocol != 0 || s.StartPort != 0 || s.EndPort != 0xffff {
		str += fmt.Sprintf("[%d/%d-%d]", s.Protocol, s.StartPort, s.EndPort)
	}
	return str
}

// ParseTS decodes a TSi/TSr payload body.
func ParseTS(b []byte) ([]Selector, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: TS", ErrShort)
	}
	n := int(b[0])
	b = b[4:]
	out := make([]Selector, 0, n)
	for i := 0; i < n; i++ {
		if len(b) < 8 {
			return nil, fmt.Errorf("%w: selector", ErrShort)
		}
		typ, length := b[0], int(binary.BigEndian.Uint16(b[2:4]))
		alen := 4
		if typ == tsIPv6 {
			alen = 16
		} else if typ != tsIPv4 {
			return nil, fmt.Errorf("%w: selector type %d", ErrSyntax, typ)
		}
		if length != 8+2*alen || length > len(b) {
			return nil, fmt.Errorf("%w: selector length %d", ErrLength, length)
		}
		s := Selector{
			Protocol:  b[1],
			StartPort: binary.BigEndian.Uint16(b[4:6]),
			EndPort:   binary.BigEndian.Uint16(b[6:8]),
		}
		s.Start, _ = netip.AddrFromSlice(b[8 : 8+alen])
		s.End, _ = netip.AddrFromSlice(b[8+alen : 8+2*alen])
		out = append(out, s)
		b = b[length:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: bytes after the last selector", ErrSyntax)
	}
	return out, nil
}

func appendTS(b []byte, sels []Selector) []byte {
	b = append(b, byte(len(sels)), 0, 0, 0)
	for _, s := range sels {
		typ, alen := byte(tsIPv4), 4
		if s.Start.Is6() {
			typ, alen = tsIPv6, 16
		}
		b = append(b, typ, s.Protocol)
		b = binary.BigEndian.AppendUint16(b, uint16(8+2*alen))
		b = binary.BigEndian.AppendUint16(b, s.StartPort)
		b = binary.BigEndian.AppendUint16(b, s.EndPort)
		b = append(b, s.Start.AsSlice()...)
		b = append(b, s.End.AsSlice()...)
	}
	return b
}

// narrow intersects the proposed selectors with our networks (RFC 7296
// §2.9): each overlap of a proposed range with a network is one selector,
// keeping the proposed protocol and ports.
func narrow(proposed []Selector, nets []netip.Prefix) []Selector {
	var out []Selector
	for _, s := range proposed {
		for _, n := range nets {
			lo, hi := n.Masked().Addr(), lastAddr(n)
			if lo.BitLen() != s.Start.BitLen() {
				continue
			}
			if s.Start.Compare(lo) > 0 {
				lo = s.Start
			}
			if s.End.Compare(hi) < 0 {
				hi = s.End
			}
			if lo.Compare(hi) > 0 || s.StartPort > s.EndPort {
				continue
			}
			out = append(out, Selector{Protocol: s.Protocol, StartPort: s.StartPort, EndPort: s.EndPort, Start: lo, End: hi})
		}
	}
	return out
}

// lastAddr is the highest address of prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
