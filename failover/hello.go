package failover

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HelloVersion is the wire version MarshalBinary writes and UnmarshalBinary
// accepts.
const HelloVersion = 2

// Limits of the hello format.
const (
	// MaxInterfaces is the most monitored interfaces a hello carries.
	MaxInterfaces = 64
	// MaxInterfaceName is the longest interface name (nameif) in bytes.
	MaxInterfaceName = 32
)

// Errors UnmarshalBinary and MarshalBinary return (wrapped, with the field
// that was wrong); short input is io.ErrUnexpectedEOF.
var (
	ErrVersion           = errors.New("unsupported hello version")
	ErrRole              = errors.New("invalid role")
	ErrState             = errors.New("invalid state")
	ErrTooManyInterfaces = errors.New("too many interfaces")
	ErrInterfaceName     = errors.New("invalid interface name")
	ErrInterfaceUp       = errors.New("invalid interface up flag (want 0 or 1)")
	ErrTrailingBytes     = errors.New("trailing bytes after hello")
	ErrFlags             = errors.New("unknown hello flags")
)

// MonitoredInterface is one monitored data interface's link status as a hello
// reports it.
type MonitoredInterface struct {
	Name string
	Up   bool
}

// Hello is the message each unit sends its peer over the failover link every
// UnitPoll, and at once after every change of state.
//
// Wire format (version 2), all integers big-endian:
//
//	 0      1      2      3      4                              12            16
//	+------+------+------+------+------------------------------+-------------+
//	| ver  | role |fl|st | nifs |            term              |     seq     |
//	+------+------+------+------+------------------------------+-------------+
//	then nifs times: | name len (1..32) | name (printable ASCII) | up (0/1) |
//
// Byte 2 holds the state in its low four bits and flags in its high four
// (bit 4: WantActive).
//
// A hello is pointer-free apart from Interfaces and is safe to copy.
type Hello struct {
	Role  Role
	State State
	// Term is the sender's failover term: the term it took the active role
	// in if it is active, else the highest term it has seen. Two actives
	// compare terms.
	Term uint64
	// Seq counts the sender's hellos from 1; gaps count lost hellos.
	Seq uint32
	// Interfaces lists the sender's monitored interfaces in its config
	// order.
	Interfaces []MonitoredInterface
	// WantActive is a standby's request to the active to stand down
	// (`failover active` on the standby): the active gives the role up
	// first and the standby takes it when it hears that, so the two never
	// forward at once.
	WantActive bool
}

const (
	helloStateMask      = 0x0f
	helloFlagWantActive = 0x10
)

const helloHeaderLen = 16

var (
	_ encoding.BinaryMarshaler   = Hello{}
	_ encoding.BinaryAppender    = Hello{}
	_ encoding.BinaryUnmarshaler = (*Hello)(nil)
)

// MarshalBinary encodes h in the wire format.
func (h Hello) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, h.encodedLen()))
}

func (h Hello) encodedLen() int {
	n := helloHeaderLen
	for _, i := range h.Interfaces {
		n += 2 + len(i.Name)
	}
	return n
}

// AppendBinary appends h's wire format to b.
func (h Hello) AppendBinary(b []byte) ([]byte, error) {
	if !h.Role.Valid() {
		return b, fmt.Errorf("hello role %d: %w", h.Role, ErrRole)
	}
	if !h.State.Valid() {
		return b, fmt.Errorf("hello state %d: %w", h.State, ErrState)
	}
	if len(h.Interfaces) > MaxInterfaces {
		return b, fmt.Errorf("hello has %d interfaces, at most %d: %w", len(h.Interfaces), MaxInterfaces, ErrTooManyInterfaces)
	}
	for i, ifc := range h.Interfaces {
		if err := checkInterfaceName(ifc.Name); err != nil {
			return b, fmt.Errorf("hello interface %d: %w", i, err)
		}
	}
	st := byte(h.State)
	if h.WantActive {
		st |= helloFlagWantActive
	}
	b = append(b, HelloVersion, byte(h.Role), st, byte(len(h.Interfaces)))
	b = binary.BigEndian.AppendUint64(b, h.Term)
	b = binary.BigEndian.AppendUint32(b, h.Seq)
	for _, ifc := range h.Interfaces {
		b = append(b, byte(len(ifc.Name)))
		b = append(b, ifc.Name...)
		up := byte(0)
		if ifc.Up {
			up = 1
		}
		b = append(b, up)
	}
	return b, nil
}

// UnmarshalBinary decodes a hello from b, which must hold exactly one hello.
// On error h is left unchanged.
func (h *Hello) UnmarshalBinary(b []byte) error {
	if len(b) < helloHeaderLen {
		if len(b) > 0 && b[0] != HelloVersion {
			return fmt.Errorf("hello version %d: %w", b[0], ErrVersion)
		}
		return fmt.Errorf("hello header (%d of %d bytes): %w", len(b), helloHeaderLen, io.ErrUnexpectedEOF)
	}
	if b[0] != HelloVersion {
		return fmt.Errorf("hello version %d: %w", b[0], ErrVersion)
	}
	var out Hello
	out.Role = Role(b[1])
	if !out.Role.Valid() {
		return fmt.Errorf("hello role %d: %w", b[1], ErrRole)
	}
	out.State = State(b[2] & helloStateMask)
	if !out.State.Valid() {
		return fmt.Errorf("hello state %d: %w", b[2]&helloStateMask, ErrState)
	}
	if f := b[2] &^ helloStateMask; f&^helloFlagWantActive != 0 {
		return fmt.Errorf("hello flags %#x: %w", f, ErrFlags)
	}
	out.WantActive = b[2]&helloFlagWantActive != 0
	n := int(b[3])
	if n > MaxInterfaces {
		return fmt.Errorf("hello has %d interfaces, at most %d: %w", n, MaxInterfaces, ErrTooManyInterfaces)
	}
	out.Term = binary.BigEndian.Uint64(b[4:12])
	out.Seq = binary.BigEndian.Uint32(b[12:16])
	rest := b[helloHeaderLen:]
	if n > 0 {
		out.Interfaces = make([]MonitoredInterface, 0, n)
	}
	for i := range n {
		if len(rest) < 1 {
			return fmt.Errorf("hello interface %d name length: %w", i, io.ErrUnexpectedEOF)
		}
		l := int(rest[0])
		if len(rest) < 1+l+1 {
			return fmt.Errorf("hello interface %d (%d bytes left, need %d): %w", i, len(rest), 1+l+1, io.ErrUnexpectedEOF)
		}
		name := string(rest[1 : 1+l])
		if err := checkInterfaceName(name); err != nil {
			return fmt.Errorf("hello interface %d: %w", i, err)
		}
		up := rest[1+l]
		if up > 1 {
			return fmt.Errorf("hello interface %d (%q) up flag %d: %w", i, name, up, ErrInterfaceUp)
		}
		out.Interfaces = append(out.Interfaces, MonitoredInterface{Name: name, Up: up == 1})
		rest = rest[1+l+1:]
	}
	if len(rest) != 0 {
		return fmt.Errorf("hello: %d bytes after %d interfaces: %w", len(rest), n, ErrTrailingBytes)
	}
	*h = out
	return nil
}

// checkInterfaceName accepts 1..MaxInterfaceName bytes of printable ASCII
// without spaces, which covers Linux interface names and ASA nameifs and keeps
// log lines readable.
func checkInterfaceName(name string) error {
	if len(name) == 0 || len(name) > MaxInterfaceName {
		return fmt.Errorf("name %q is %d bytes, want 1..%d: %w", name, len(name), MaxInterfaceName, ErrInterfaceName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("name %q has byte %#x at %d: %w", name, c, i, ErrInterfaceName)
		}
	}
	return nil
}
