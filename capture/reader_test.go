package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// This file is a minimal pcapng reader for the tests: enough to read back
// what Writer writes and to check it against the format, strict about
// lengths so that fuzzing finds any block the writer would get wrong.

// pcapFile is one parsed pcapng section.
type pcapFile struct {
	App        string
	Interfaces []pcapIface
	Packets    []pcapPacket
}

// pcapIface is one Interface Description Block.
type pcapIface struct {
	LinkType uint16
	SnapLen  uint32
	Name     string
	Comment  string
	TSResol  uint8 // 0 when absent (the format's default is 6, microseconds)
}

// pcapPacket is one Enhanced Packet Block.
type pcapPacket struct {
	Iface   uint32
	TS      uint64 // in the interface's if_tsresol units
	Data    []byte
	OrigLen uint32
	Flags   uint32 // epb_flags, 0 when absent
	Comment string // opt_comment
}

var (
	errNotPcapng    = errors.New("pcapng: first block is not a section header")
	errBigEndian    = errors.New("pcapng: big-endian sections are not supported")
	errTwoSections  = errors.New("pcapng: more than one section")
	errBadBlockLen  = errors.New("pcapng: bad block length")
	errBadOption    = errors.New("pcapng: option runs past its block")
	errUnknownIface = errors.New("pcapng: packet names an undeclared interface")
)

// readPcapng parses a whole file held in b.
func readPcapng(b []byte) (*pcapFile, error) {
	var f pcapFile
	first := true
	for len(b) > 0 {
		if len(b) < 12 {
			return nil, fmt.Errorf("pcapng: %d bytes left, less than a block: %w", len(b), io.ErrUnexpectedEOF)
		}
		typ := le.Uint32(b)
		if first && typ != blockSHB {
			return nil, errNotPcapng
		}
		if typ == blockSHB && !first {
			return nil, errTwoSections
		}
		if typ == blockSHB && len(b) >= 12 && binary.BigEndian.Uint32(b[8:]) == byteOrderMagic {
			return nil, errBigEndian
		}
		n := le.Uint32(b[4:])
		if n < 12 || n%4 != 0 {
			return nil, fmt.Errorf("%w: %d", errBadBlockLen, n)
		}
		if uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("pcapng: block of %d bytes, %d left: %w", n, len(b), io.ErrUnexpectedEOF)
		}
		if le.Uint32(b[n-4:]) != n {
			return nil, fmt.Errorf("%w: leading %d, trailing %d", errBadBlockLen, n, le.Uint32(b[n-4:]))
		}
		body := b[8 : n-4]
		b = b[n:]
		var err error
		switch typ {
		case blockSHB:
			err = f.readSHB(body)
		case blockIDB:
			err = f.readIDB(body)
		case blockEPB:
			err = f.readEPB(body)
		}
		if err != nil {
			return nil, err
		}
		first = false
	}
	if first {
		return nil, errNotPcapng
	}
	return &f, nil
}

// readOptions calls fn for each option up to opt_endofopt or the body's end.
func readOptions(b []byte, fn func(code uint16, value []byte)) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return errBadOption
		}
		code, l := le.Uint16(b), int(le.Uint16(b[2:]))
		if code == optEndOfOpt {
			return nil
		}
		if 4+pad4(l) > len(b) {
			return errBadOption
		}
		fn(code, b[4:4+l])
		b = b[4+pad4(l):]
	}
	return nil
}

func (f *pcapFile) readSHB(b []byte) error {
	if len(b) < 16 {
		return fmt.Errorf("pcapng: section header body of %d bytes: %w", len(b), io.ErrUnexpectedEOF)
	}
	if le.Uint32(b) != byteOrderMagic {
		return fmt.Errorf("pcapng: byte-order magic %#x", le.Uint32(b))
	}
	if major := le.Uint16(b[4:]); major != 1 {
		return fmt.Errorf("pcapng: major version %d", major)
	}
	return readOptions(b[16:], func(code uint16, v []byte) {
		if code == optShbUser {
			f.App = string(v)
		}
	})
}

func (f *pcapFile) readIDB(b []byte) error {
	if len(b) < 8 {
		return fmt.Errorf("pcapng: interface block body of %d bytes: %w", len(b), io.ErrUnexpectedEOF)
	}
	ifc := pcapIface{LinkType: le.Uint16(b), SnapLen: le.Uint32(b[4:])}
	err := readOptions(b[8:], func(code uint16, v []byte) {
		switch code {
		case optIfName:
			ifc.Name = string(v)
		case optComment:
			ifc.Comment = string(v)
		case optIfTsresol:
			if len(v) == 1 {
				ifc.TSResol = v[0]
			}
		}
	})
	f.Interfaces = append(f.Interfaces, ifc)
	return err
}

func (f *pcapFile) readEPB(b []byte) error {
	if len(b) < 20 {
		return fmt.Errorf("pcapng: packet block body of %d bytes: %w", len(b), io.ErrUnexpectedEOF)
	}
	p := pcapPacket{
		Iface:   le.Uint32(b),
		TS:      uint64(le.Uint32(b[4:]))<<32 | uint64(le.Uint32(b[8:])),
		OrigLen: le.Uint32(b[16:]),
	}
	if p.Iface >= uint32(len(f.Interfaces)) {
		return fmt.Errorf("%w: %d of %d", errUnknownIface, p.Iface, len(f.Interfaces))
	}
	capLen := int(le.Uint32(b[12:]))
	if 20+pad4(capLen) > len(b) {
		return fmt.Errorf("pcapng: %d captured bytes in a body of %d: %w", capLen, len(b), io.ErrUnexpectedEOF)
	}
	p.Data = append([]byte{}, b[20:20+capLen]...)
	err := readOptions(b[20+pad4(capLen):], func(code uint16, v []byte) {
		if code == optEpbFlags && len(v) == 4 {
			p.Flags = le.Uint32(v)
		}
		if code == optComment {
			p.Comment = string(v)
		}
	})
	f.Packets = append(f.Packets, p)
	return err
}
