package ctiqbe

// The message codec of the CTIQBE lab model (a lab model of CTIQBE's
// behaviour, not wire-compatible). Every message is
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      length (whole message)   |     type      |   reserved 0  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        transaction id                         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     body (by type, fixed layout)              |
//
// big-endian, with these bodies:
//
//	Register      name length (1), device name (1..32 of A-Z a-z 0-9 . _ -)
//	RegisterAck   device id (4), heartbeat interval in seconds (2, not 0)
//	Heartbeat, HeartbeatAck, Unregister: empty
//	MakeCall      number length (1), called number (1..24 of 0-9 * #),
//	              media address (4), RTP port (2; RTCP is the next port)
//	CallSetup     call id (4), remote media address (4), RTP port (2)
//	CallSetupAck, HangUp, HangUpAck: call id (4)
//
// A message is valid only if its length is exactly its type's layout:
// nothing trails, nothing is missing. Addresses are IPv4 and not zero,
// ports are 1..65534, call ids are not zero.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Port is the CallManager's TCP port for CTIQBE.
const Port = 2748

// Wire sizes.
const (
	HeaderLen     = 8
	MaxMessageLen = 64 // the longest valid message (MakeCall) fits
	MaxDeviceLen  = 32
	MaxNumberLen  = 24
)

// Type is a message type.
type Type uint8

// Message types.
const (
	TypeRegister Type = iota + 1
	TypeRegisterAck
	TypeHeartbeat
	TypeHeartbeatAck
	TypeMakeCall
	TypeCallSetup
	TypeCallSetupAck
	TypeHangUp
	TypeHangUpAck
	TypeUnregister
	typeEnd
)

var typeNames = [...]string{"?", "Register", "RegisterAck", "Heartbeat", "HeartbeatAck", "MakeCall",
	"CallSetup", "CallSetupAck", "HangUp", "HangUpAck", "Unregister"}

func (t Type) String() string {
	if t == 0 || t >= typeEnd {
		return fmt.Sprintf("Type(%d)", uint8(t))
	}
	return typeNames[t]
}

// FromPhone reports whether the CTI device (the phone) sends this type;
// the others are the CallManager's.
func (t Type) FromPhone() bool {
	switch t {
	case TypeRegister, TypeHeartbeat, TypeMakeCall, TypeCallSetupAck, TypeHangUp, TypeUnregister:
		return true
	}
	return false
}

// Errors of the codec.
var (
	// ErrLength: the length field is under the header, over
	// MaxMessageLen, or not the type's layout.
	ErrLength = errors.New("ctiqbe: bad message length")
	// ErrType: an unknown message type.
	ErrType = errors.New("ctiqbe: unknown message type")
	// ErrReserved: the reserved header byte is not zero.
	ErrReserved = errors.New("ctiqbe: reserved byte not zero")
	// ErrField: a body field is out of its bounds (empty or bad name or
	// number, zero address, port or call id).
	ErrField = errors.New("ctiqbe: field out of bounds")
)

// Message is one message of any type; the fields its type does not carry
// are zero. It is comparable.
type Message struct {
	Type Type
	TxID uint32

	Device    string // Register
	DeviceID  uint32 // RegisterAck
	Heartbeat uint16 // RegisterAck: seconds
	Number    string // MakeCall: called number
	CallID    uint32 // CallSetup, CallSetupAck, HangUp, HangUpAck
	// MediaAddr and MediaPort: MakeCall, the phone's own RTP address and
	// port; CallSetup, the remote party's.
	MediaAddr [4]byte
	MediaPort uint16
}

// bodyLen returns the body length of t with variable part v (a name's or
// number's length), or -1 for an unknown type.
func bodyLen(t Type, v int) int {
	switch t {
	case TypeRegister:
		return 1 + v
	case TypeRegisterAck:
		return 6
	case TypeHeartbeat, TypeHeartbeatAck, TypeUnregister:
		return 0
	case TypeMakeCall:
		return 1 + v + 6
	case TypeCallSetup:
		return 10
	case TypeCallSetupAck, TypeHangUp, TypeHangUpAck:
		return 4
	}
	return -1
}

// MessageLen returns the length of the message at the start of b as its
// header says, after checking it is within bounds: 0 with a nil error if b
// does not hold the length field yet. It is how a stream is framed.
func MessageLen(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, nil
	}
	n := int(binary.BigEndian.Uint16(b))
	if n < HeaderLen || n > MaxMessageLen {
		return 0, ErrLength
	}
	return n, nil
}

func validDevice(s []byte) bool {
	if len(s) == 0 || len(s) > MaxDeviceLen {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validNumber(s []byte) bool {
	if len(s) == 0 || len(s) > MaxNumberLen {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || c == '*' || c == '#') {
			return false
		}
	}
	return true
}

func validMedia(a [4]byte, port uint16) bool {
	return a != [4]byte{} && port != 0 && port != 65535
}

// UnmarshalBinary decodes b, which must be exactly one message. Short
// input is io.ErrUnexpectedEOF; anything else out of bounds is one of the
// Err values. On error m is unchanged.
func (m *Message) UnmarshalBinary(b []byte) error {
	var d Message
	if err := d.decode(b, true); err != nil {
		return err
	}
	*m = d
	return nil
}

// decode decodes b into m; withStrings false leaves Device and Number
// empty (so an engine that does not need them allocates nothing).
func (m *Message) decode(b []byte, withStrings bool) error {
	if len(b) < HeaderLen {
		return io.ErrUnexpectedEOF
	}
	n, err := MessageLen(b)
	if err != nil {
		return err
	}
	if len(b) < n {
		return io.ErrUnexpectedEOF
	}
	if len(b) > n {
		return ErrLength
	}
	t := Type(b[2])
	if t == 0 || t >= typeEnd {
		return ErrType
	}
	if b[3] != 0 {
		return ErrReserved
	}
	body := b[HeaderLen:]
	v := 0
	if t == TypeRegister || t == TypeMakeCall {
		if len(body) < 1 {
			return ErrLength
		}
		v = int(body[0])
	}
	if len(body) != bodyLen(t, v) {
		return ErrLength
	}
	*m = Message{Type: t, TxID: binary.BigEndian.Uint32(b[4:])}
	be := binary.BigEndian
	switch t {
	case TypeRegister:
		if !validDevice(body[1:]) {
			return ErrField
		}
		if withStrings {
			m.Device = string(body[1:])
		}
	case TypeRegisterAck:
		m.DeviceID, m.Heartbeat = be.Uint32(body), be.Uint16(body[4:])
		if m.Heartbeat == 0 {
			return ErrField
		}
	case TypeMakeCall:
		num := body[1 : 1+v]
		if !validNumber(num) {
			return ErrField
		}
		if withStrings {
			m.Number = string(num)
		}
		copy(m.MediaAddr[:], body[1+v:])
		m.MediaPort = be.Uint16(body[5+v:])
		if !validMedia(m.MediaAddr, m.MediaPort) {
			return ErrField
		}
	case TypeCallSetup:
		m.CallID = be.Uint32(body)
		copy(m.MediaAddr[:], body[4:])
		m.MediaPort = be.Uint16(body[8:])
		if m.CallID == 0 || !validMedia(m.MediaAddr, m.MediaPort) {
			return ErrField
		}
	case TypeCallSetupAck, TypeHangUp, TypeHangUpAck:
		m.CallID = be.Uint32(body)
		if m.CallID == 0 {
			return ErrField
		}
	}
	return nil
}

// validate checks m's fields as decode would.
func (m *Message) validate() error {
	switch m.Type {
	case TypeRegister:
		if !validDevice([]byte(m.Device)) {
			return ErrField
		}
	case TypeRegisterAck:
		if m.Heartbeat == 0 {
			return ErrField
		}
	case TypeMakeCall:
		if !validNumber([]byte(m.Number)) || !validMedia(m.MediaAddr, m.MediaPort) {
			return ErrField
		}
	case TypeCallSetup:
		if m.CallID == 0 || !validMedia(m.MediaAddr, m.MediaPort) {
			return ErrField
		}
	case TypeCallSetupAck, TypeHangUp, TypeHangUpAck:
		if m.CallID == 0 {
			return ErrField
		}
	case TypeHeartbeat, TypeHeartbeatAck, TypeUnregister:
	default:
		return ErrType
	}
	return nil
}

// AppendBinary appends m's encoding to b. Fields out of bounds are an
// error: the codec never writes what it would not read.
func (m *Message) AppendBinary(b []byte) ([]byte, error) {
	if err := m.validate(); err != nil {
		return b, err
	}
	v := 0
	switch m.Type {
	case TypeRegister:
		v = len(m.Device)
	case TypeMakeCall:
		v = len(m.Number)
	}
	n := HeaderLen + bodyLen(m.Type, v)
	be := binary.BigEndian
	b = be.AppendUint16(b, uint16(n))
	b = append(b, byte(m.Type), 0)
	b = be.AppendUint32(b, m.TxID)
	switch m.Type {
	case TypeRegister:
		b = append(append(b, byte(len(m.Device))), m.Device...)
	case TypeRegisterAck:
		b = be.AppendUint16(be.AppendUint32(b, m.DeviceID), m.Heartbeat)
	case TypeMakeCall:
		b = append(append(b, byte(len(m.Number))), m.Number...)
		b = be.AppendUint16(append(b, m.MediaAddr[:]...), m.MediaPort)
	case TypeCallSetup:
		b = be.AppendUint32(b, m.CallID)
		b = be.AppendUint16(append(b, m.MediaAddr[:]...), m.MediaPort)
	case TypeCallSetupAck, TypeHangUp, TypeHangUpAck:
		b = be.AppendUint32(b, m.CallID)
	}
	return b, nil
}

// MarshalBinary encodes m.
func (m *Message) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, MaxMessageLen))
}

// ReadMessage reads one message from a stream.
func ReadMessage(r io.Reader) (Message, error) {
	var buf [MaxMessageLen]byte
	if _, err := io.ReadFull(r, buf[:2]); err != nil {
		return Message{}, err
	}
	n, err := MessageLen(buf[:2])
	if err != nil {
		return Message{}, err
	}
	if _, err := io.ReadFull(r, buf[2:n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Message{}, err
	}
	var m Message
	return m, m.UnmarshalBinary(buf[:n])
}

// WriteMessage writes m to a stream in one Write.
func WriteMessage(w io.Writer, m Message) error {
	var buf [MaxMessageLen]byte
	b, err := m.AppendBinary(buf[:0])
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
