package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// pcapng block types and option codes (draft-ietf-opsawg-pcapng), the few
// this writer emits. Every block is:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+---------------------------------------------------------------+
//	|                          Block Type                           |
//	+---------------------------------------------------------------+
//	|                      Block Total Length                       |
//	+---------------------------------------------------------------+
//	/                          Block Body                           /
//	/              (padded to 32 bits, options last)                /
//	+---------------------------------------------------------------+
//	|                      Block Total Length                       |
//	+---------------------------------------------------------------+
const (
	blockSHB uint32 = 0x0A0D0D0A // Section Header Block
	blockIDB uint32 = 0x00000001 // Interface Description Block
	blockEPB uint32 = 0x00000006 // Enhanced Packet Block

	byteOrderMagic uint32 = 0x1A2B3C4D

	optEndOfOpt  uint16 = 0
	optComment   uint16 = 1 // opt_comment, any block
	optShbUser   uint16 = 4 // shb_userappl
	optIfName    uint16 = 2 // if_name
	optIfTsresol uint16 = 9 // if_tsresol
	optEpbFlags  uint16 = 2 // epb_flags

	// LinkTypeEthernet is LINKTYPE_ETHERNET, frames starting at the
	// destination MAC.
	LinkTypeEthernet uint16 = 1

	// tsresolNanoseconds is if_tsresol's value for 10^-9 s units.
	tsresolNanoseconds = 9
)

// Direction is which way a frame crossed the captured interface, written
// as the inbound/outbound bits of the packet's epb_flags.
type Direction uint8

const (
	// DirUnknown writes no epb_flags option.
	DirUnknown Direction = 0
	// DirInbound is a frame the interface received.
	DirInbound Direction = 1
	// DirOutbound is a frame the interface sent.
	DirOutbound Direction = 2
)

// String returns "in", "out" or "unknown".
func (d Direction) String() string {
	switch d {
	case DirInbound:
		return "in"
	case DirOutbound:
		return "out"
	}
	return "unknown"
}

// Interface describes the one interface a capture file holds.
type Interface struct {
	// Name is written as if_name, e.g. "eth0".
	Name string
	// Comment is written as the block's opt_comment; Run puts the
	// namespace there, e.g. "namespace falab-lab1-client1".
	Comment string
	// SnapLen is the most bytes kept of a frame; 0 means no limit.
	SnapLen uint32
}

// ErrPacketTooLong is returned by WritePacket for a frame longer than the
// interface's snap length, or longer than a pcapng block can hold.
var ErrPacketTooLong = errors.New("capture: packet longer than the snap length")

// maxBlockData bounds one packet so its block length fits in 32 bits with
// room to spare; real frames are at most 256 KiB.
const maxBlockData = 1 << 30

// Writer writes one pcapng section with a single Ethernet interface and
// nanosecond timestamps: the Section Header and Interface Description
// blocks at NewWriter, then one Enhanced Packet Block per WritePacket.
// Blocks are little-endian.
//
// The Writer does no buffering of its own: each WritePacket is one Write
// call on the underlying writer with the whole block, so a reader on a pipe
// (wireshark -k -i -) never sees half a block unless the writer splits it.
// Wrap the destination in a bufio.Writer for throughput, and flush it when
// the reader should see what has been written.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	w       io.Writer
	snapLen uint32
	buf     []byte // one block being built, reused across packets
	ifaces  uint32 // interfaces described (NewMultiWriter); 0 means 1
}

// NewWriter writes the section and interface headers to w and returns a
// Writer for the packets.
func NewWriter(w io.Writer, iface Interface) (*Writer, error) {
	pw := &Writer{w: w, snapLen: iface.SnapLen}
	b := appendSHB(nil, "falab")
	b = appendIDB(b, iface)
	if _, err := w.Write(b); err != nil {
		return nil, fmt.Errorf("capture: write pcapng header: %w", err)
	}
	return pw, nil
}

// WritePacket writes one frame captured at ts. origLen is the frame's length
// on the wire, at least len(data) (it is larger when the frame was cut to
// the snap length). The Writer keeps no reference to data.
func (pw *Writer) WritePacket(ts time.Time, data []byte, origLen int, dir Direction) error {
	if origLen < len(data) {
		return fmt.Errorf("capture: original length %d is shorter than the %d bytes captured", origLen, len(data))
	}
	if (pw.snapLen != 0 && len(data) > int(pw.snapLen)) || len(data) > maxBlockData {
		return fmt.Errorf("%w: %d bytes captured (snap length %d)", ErrPacketTooLong, len(data), pw.snapLen)
	}
	if origLen > 1<<32-1 {
		return fmt.Errorf("%w: original length %d does not fit in 32 bits", ErrPacketTooLong, origLen)
	}
	pw.buf = appendEPB(pw.buf[:0], ts, data, uint32(origLen), dir)
	if _, err := pw.w.Write(pw.buf); err != nil {
		return fmt.Errorf("capture: write packet: %w", err)
	}
	return nil
}

var le = binary.LittleEndian

// pad4 is n rounded up to a multiple of 4.
func pad4(n int) int { return (n + 3) &^ 3 }

// appendOption appends one option: code, length, value padded to 32 bits.
func appendOption(b []byte, code uint16, value []byte) []byte {
	b = le.AppendUint16(b, code)
	b = le.AppendUint16(b, uint16(len(value)))
	b = append(b, value...)
	for range pad4(len(value)) - len(value) {
		b = append(b, 0)
	}
	return b
}

// appendStringOption appends a UTF-8 option, none if s is empty. Values
// longer than an option can hold are cut, since they are labels.
func appendStringOption(b []byte, code uint16, s string) []byte {
	if s == "" {
		return b
	}
	if len(s) > 0xFFFF {
		s = s[:0xFFFF]
	}
	return appendOption(b, code, []byte(s))
}

// beginBlock appends a block header with a length to be patched by endBlock.
func beginBlock(b []byte, typ uint32) (out []byte, start int) {
	start = len(b)
	b = le.AppendUint32(b, typ)
	b = le.AppendUint32(b, 0)
	return b, start
}

// endBlock appends the trailing length and patches the leading one.
func endBlock(b []byte, start int) []byte {
	total := uint32(len(b) - start + 4)
	le.PutUint32(b[start+4:], total)
	return le.AppendUint32(b, total)
}

// appendSHB appends a Section Header Block of unknown section length,
// naming the writing application.
func appendSHB(b []byte, app string) []byte {
	b, start := beginBlock(b, blockSHB)
	b = le.AppendUint32(b, byteOrderMagic)
	b = le.AppendUint16(b, 1)                  // major version
	b = le.AppendUint16(b, 0)                  // minor version
	b = le.AppendUint64(b, 0xFFFFFFFFFFFFFFFF) // section length: unknown (-1), as we stream
	b = appendStringOption(b, optShbUser, app)
	b = appendOption(b, optEndOfOpt, nil)
	return endBlock(b, start)
}

// appendIDB appends the Interface Description Block of interface 0.
func appendIDB(b []byte, iface Interface) []byte {
	b, start := beginBlock(b, blockIDB)
	b = le.AppendUint16(b, LinkTypeEthernet)
	b = le.AppendUint16(b, 0) // reserved
	b = le.AppendUint32(b, iface.SnapLen)
	b = appendStringOption(b, optIfName, iface.Name)
	b = appendStringOption(b, optComment, iface.Comment)
	b = appendOption(b, optIfTsresol, []byte{tsresolNanoseconds})
	b = appendOption(b, optEndOfOpt, nil)
	return endBlock(b, start)
}

// appendEPB appends an Enhanced Packet Block on interface 0.
func appendEPB(b []byte, ts time.Time, data []byte, origLen uint32, dir Direction) []byte {
	b, start := beginBlock(b, blockEPB)
	ns := uint64(ts.UnixNano())
	b = le.AppendUint32(b, 0) // interface id
	b = le.AppendUint32(b, uint32(ns>>32))
	b = le.AppendUint32(b, uint32(ns))
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, origLen)
	b = append(b, data...)
	for range pad4(len(data)) - len(data) {
		b = append(b, 0)
	}
	if dir != DirUnknown {
		// Built in place, not with appendOption, so a packet allocates nothing.
		b = le.AppendUint16(b, optEpbFlags)
		b = le.AppendUint16(b, 4)
		b = le.AppendUint32(b, uint32(dir))
		b = appendOption(b, optEndOfOpt, nil)
	}
	return endBlock(b, start)
}
