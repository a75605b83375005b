package traffic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Direction says which way a tcp-stream flow carries data.
type Direction uint8

// Directions. The numbers are on the wire (FlowHeader).
const (
	ClientToServer Direction = 1 // c2s: the client sends, the server verifies
	ServerToClient Direction = 2 // s2c: the server sends, the client verifies
	Both           Direction = 3 // both: each side sends and verifies
)

// ParseDirection parses the --direction flag value.
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "c2s":
		return ClientToServer, nil
	case "s2c":
		return ServerToClient, nil
	case "both":
		return Both, nil
	}
	return 0, fmt.Errorf("direction %q is not one of c2s, s2c, both", s)
}

func (d Direction) String() string {
	switch d {
	case ClientToServer:
		return "c2s"
	case ServerToClient:
		return "s2c"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

func (d Direction) valid() bool { return d >= ClientToServer && d <= Both }

// clientSends reports whether the client sends data in direction d.
func (d Direction) clientSends() bool { return d&ClientToServer != 0 }

// serverSends reports whether the server sends data in direction d.
func (d Direction) serverSends() bool { return d&ServerToClient != 0 }

// Wire format errors.
var (
	// ErrBadMagic means the bytes are not a falab flow header or probe.
	ErrBadMagic = errors.New("bad magic: not a falab traffic message")
	// ErrBadVersion means the message is from an unknown format version.
	ErrBadVersion = errors.New("unsupported traffic message version")
)

// flowMagic opens every tcp-stream flow header.
var flowMagic = [4]byte{'F', 'L', 'B', 'S'}

// wireVersion is the version of FlowHeader and Probe.
const wireVersion = 1

// FlowHeaderLen is the size of a marshalled FlowHeader.
const FlowHeaderLen = 20

// FlowHeader is the first thing a tcp-stream client sends on a connection:
// it names the flow so the server can derive the same streams and report
// the flow under the client's id.
//
//	 0               1               2               3
//	+---------------+---------------+---------------+---------------+
//	|                 magic "FLBS"                                  |
//	+---------------+---------------+---------------+---------------+
//	|    version    |   direction   |           reserved (0)        |
//	+---------------+---------------+---------------+---------------+
//	|                        flow id                                |
//	+---------------+---------------+---------------+---------------+
//	|                        session (64 bits)                      |
//	+                                                               +
//	|                                                               |
//	+---------------+---------------+---------------+---------------+
//
// Integers are big endian.
type FlowHeader struct {
	Direction Direction
	FlowID    uint32
	Session   uint64 // random per client run: ties flows to one run
}

// MarshalBinary encodes h.
func (h FlowHeader) MarshalBinary() ([]byte, error) {
	if !h.Direction.valid() {
		return nil, fmt.Errorf("flow header: invalid direction %d", uint8(h.Direction))
	}
	b := make([]byte, FlowHeaderLen)
	copy(b, flowMagic[:])
	b[4] = wireVersion
	b[5] = byte(h.Direction)
	binary.BigEndian.PutUint32(b[8:], h.FlowID)
	binary.BigEndian.PutUint64(b[12:], h.Session)
	return b, nil
}

// UnmarshalBinary decodes a header. Short input is io.ErrUnexpectedEOF;
// wrong magic is ErrBadMagic; an unknown version ErrBadVersion.
func (h *FlowHeader) UnmarshalBinary(b []byte) error {
	if len(b) < FlowHeaderLen {
		return io.ErrUnexpectedEOF
	}
	if [4]byte(b[:4]) != flowMagic {
		return ErrBadMagic
	}
	if b[4] != wireVersion {
		return fmt.Errorf("%w: %d", ErrBadVersion, b[4])
	}
	d := Direction(b[5])
	if !d.valid() {
		return fmt.Errorf("flow header: invalid direction %d", b[5])
	}
	*h = FlowHeader{Direction: d, FlowID: binary.BigEndian.Uint32(b[8:]), Session: binary.BigEndian.Uint64(b[12:])}
	return nil
}

// probeMagic opens every udp-probe datagram and ping payload.
var probeMagic = [4]byte{'F', 'L', 'B', 'P'}

// ProbeLen is the size of a marshalled Probe.
const ProbeLen = 32

// ProbeKind tells a request from its echo.
type ProbeKind uint8

// Probe kinds.
const (
	ProbeRequest ProbeKind = 1 // client to server
	ProbeEcho    ProbeKind = 2 // server back to client
)

// Probe is one udp-probe datagram (and the payload of a ping). The server
// echoes it back with Kind set to ProbeEcho and everything else unchanged.
//
//	 0               1               2               3
//	+---------------+---------------+---------------+---------------+
//	|                 magic "FLBP"                                  |
//	+---------------+---------------+---------------+---------------+
//	|    version    |     kind      |           reserved (0)        |
//	+---------------+---------------+---------------+---------------+
//	|                        session (64 bits)                      |
//	+                                                               +
//	+---------------+---------------+---------------+---------------+
//	|                        sequence (64 bits)                     |
//	+                                                               +
//	+---------------+---------------+---------------+---------------+
//	|                 send time, Unix ns (64 bits)                  |
//	+                                                               +
//	+---------------+---------------+---------------+---------------+
type Probe struct {
	Kind     ProbeKind
	Session  uint64
	Seq      uint64
	SentUnix int64 // sender's clock, ns: for RTT, never trusted for loss
}

// MarshalBinary encodes p.
func (p Probe) MarshalBinary() ([]byte, error) {
	b := make([]byte, ProbeLen)
	if err := p.marshalTo(b); err != nil {
		return nil, err
	}
	return b, nil
}

// marshalTo encodes p into b (at least ProbeLen bytes) without allocating.
func (p Probe) marshalTo(b []byte) error {
	if p.Kind != ProbeRequest && p.Kind != ProbeEcho {
		return fmt.Errorf("probe: invalid kind %d", uint8(p.Kind))
	}
	if len(b) < ProbeLen {
		return io.ErrShortBuffer
	}
	copy(b, probeMagic[:])
	b[4] = wireVersion
	b[5] = byte(p.Kind)
	b[6], b[7] = 0, 0
	binary.BigEndian.PutUint64(b[8:], p.Session)
	binary.BigEndian.PutUint64(b[16:], p.Seq)
	binary.BigEndian.PutUint64(b[24:], uint64(p.SentUnix))
	return nil
}

// UnmarshalBinary decodes a probe. Bytes past ProbeLen (padding) are
// ignored. Short input is io.ErrUnexpectedEOF; wrong magic ErrBadMagic.
func (p *Probe) UnmarshalBinary(b []byte) error {
	if len(b) < ProbeLen {
		return io.ErrUnexpectedEOF
	}
	if [4]byte(b[:4]) != probeMagic {
		return ErrBadMagic
	}
	if b[4] != wireVersion {
		return fmt.Errorf("%w: %d", ErrBadVersion, b[4])
	}
	k := ProbeKind(b[5])
	if k != ProbeRequest && k != ProbeEcho {
		return fmt.Errorf("probe: invalid kind %d", b[5])
	}
	*p = Probe{
		Kind:     k,
		Session:  binary.BigEndian.Uint64(b[8:]),
		Seq:      binary.BigEndian.Uint64(b[16:]),
		SentUnix: int64(binary.BigEndian.Uint64(b[24:])),
	}
	return nil
}
