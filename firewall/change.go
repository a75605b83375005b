package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/recordio"
)

// Tuple is a flow key as seen on the wire at the firewall: comparable and
// pointer-free so that it is a cheap map key (tailscale's flowtrack.Tuple).
// For ICMP echo, SrcPort holds the echo identifier and DstPort is zero in
// both directions.
type Tuple struct {
	Proto   uint8
	Src     [4]byte
	Dst     [4]byte
	SrcPort uint16
	DstPort uint16
}

// String formats the tuple as "tcp 198.18.1.10:40000->198.19.2.20:80".
func (t Tuple) String() string {
	return fmt.Sprintf("%s %v->%v", protoName(t.Proto),
		netip.AddrPortFrom(netip.AddrFrom4(t.Src), t.SrcPort), netip.AddrPortFrom(netip.AddrFrom4(t.Dst), t.DstPort))
}

func protoName(p uint8) string {
	switch p {
	case header.ProtocolTCP:
		return "tcp"
	case header.ProtocolUDP:
		return "udp"
	case header.ProtocolICMP:
		return "icmp"
	}
	return fmt.Sprintf("proto-%d", p)
}

// Table names a replicated table.
type Table uint8

// Replicated tables. Routes are not replicated (ASA neither).
const (
	TableConn Table = iota + 1
	TableXlate
	TableARP
	// TableBridge is the transparent mode's bridge (MAC address) table.
	// It comes after the others so that their ids stay what they were.
	TableBridge
	numTables
)

// Tables lists the replicated tables in bulk-sync order: ARP and xlates
// before the connections that use them, then the bridge table (empty in
// routed mode).
var Tables = []Table{TableARP, TableXlate, TableConn, TableBridge}

// String returns "conn", "xlate", "arp" or "bridge".
func (t Table) String() string {
	switch t {
	case TableConn:
		return "conn"
	case TableXlate:
		return "xlate"
	case TableARP:
		return "arp"
	case TableBridge:
		return "bridge"
	}
	return fmt.Sprintf("Table(%d)", uint8(t))
}

// Op is what a Change does to its entry.
type Op uint8

// Change operations.
const (
	OpUpsert Op = iota + 1
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

// TCPState is the firewall's view of a TCP connection's progress. UDP and
// ICMP connections have TCPStateNone.
type TCPState uint8

// TCP states.
const (
	TCPStateNone        TCPState = iota
	TCPStateSynSent              // initiator's SYN seen
	TCPStateSynReceived          // responder's SYN-ACK seen
	TCPStateEstablished          // initiator's ACK of the SYN-ACK seen
	TCPStateFinWait              // one side has sent FIN (half-closed)
	TCPStateClosing              // both sides have sent FIN; the last ACK is awaited
	TCPStateTimeWait             // both FINs acknowledged; kept briefly for the last ACK and retransmitted FINs
	numTCPStates
)

// String returns the state's name.
func (s TCPState) String() string {
	switch s {
	case TCPStateNone:
		return "none"
	case TCPStateSynSent:
		return "SYN_SENT"
	case TCPStateSynReceived:
		return "SYN_RCVD"
	case TCPStateEstablished:
		return "ESTABLISHED"
	case TCPStateFinWait:
		return "FIN_WAIT"
	case TCPStateClosing:
		return "CLOSING"
	case TCPStateTimeWait:
		return "TIME_WAIT"
	}
	return fmt.Sprintf("TCPState(%d)", uint8(s))
}

// Close flags of a ConnRecord: which sides have sent FIN.
const (
	CloseFinOrig   uint8 = 1 << iota // the initiator sent FIN
	CloseFinReply                    // the responder sent FIN
	closeFlagsMask = CloseFinOrig | CloseFinReply
)

// ConnRecord is the replicated form of a connection: everything a standby
// needs to forward it after takeover. The NAT mapping is implicit in the
// tuples: a packet matching Orig leaves as the reverse of Reply and the
// other way round. Per-packet counters are not part of it.
type ConnRecord struct {
	Orig         Tuple // as the initiator's packets arrive
	Reply        Tuple // as the responder's packets arrive (after NAT)
	InInterface  string
	OutInterface string
	State        TCPState
	CloseFlags   uint8 // CloseFin* bits
	HTTP         bool  // TCP port 80 on either side; replication may skip it
	Created      int64 // unix nanoseconds
	LastSeen     int64 // unix nanoseconds of the last activity when recorded
	// SeqOffset is added to the initiator's sequence numbers on the way
	// out and taken off the responder's acks (sequence number
	// randomization); zero for none. Fixed for the connection's life.
	SeqOffset uint32
	// Window is the TCP sequence tracking of each direction (dirOrig,
	// dirReply) when the record was made. It is soft state: records are
	// only made on state transitions, so a standby's copy lags and the
	// unit that adopts a connection from a record re-seeds each direction
	// from its first segment (see conn.pickup in tcp.go).
	Window [2]TCPWindow
}

// TCPWindow is one direction's sequence tracking state, after Linux
// conntrack's ip_ct_tcp_state (G. van Rooij, "Real stateful TCP packet
// filtering in IP Filter"). Sequence numbers are in the sending host's
// own numbering, before randomization.
type TCPWindow struct {
	End    uint32 // highest sequence number sent, plus one (td_end)
	MaxEnd uint32 // highest end the peer's acks and windows allow (td_maxend)
	MaxWin uint32 // largest window this side advertised, scaled (td_maxwin)
	MaxAck uint32 // highest ack this side sent (td_maxack), if TCPWinMaxAck
	Scale  uint8  // window scale shift this side announced, 0 unless both sides did
	Flags  uint8  // TCPWin* bits
}

// TCPWindow flags.
const (
	TCPWinSeen     uint8 = 1 << iota // this side's SYN (or first segment) was seen
	TCPWinScale                      // this side sent the window scale option
	TCPWinSACKPerm                   // this side sent SACK-permitted
	TCPWinMaxAck                     // MaxAck holds an ack this side sent
	TCPWinSynAcked                   // the peer acknowledged this side's SYN
	TCPWinFinAcked                   // the peer acknowledged this side's FIN
	tcpWinWireMask = 1<<iota - 1
)

// XlateRecord is the replicated form of an xlate (a NAT translation slot).
// For NATStatic, Proto and the ports are zero.
type XlateRecord struct {
	Kind            NATKind
	Proto           uint8
	Real            [4]byte
	RealPort        uint16
	Mapped          [4]byte
	MappedPort      uint16
	RealInterface   string
	MappedInterface string
	Created         int64 // unix nanoseconds
}

// ARPRecord is the replicated form of an ARP entry.
type ARPRecord struct {
	Interface string
	IP        [4]byte
	MAC       [6]byte
	Updated   int64 // unix nanoseconds
}

// BridgeRecord is the replicated form of a bridge (MAC address) table
// entry: the station MAC was last seen on Interface.
type BridgeRecord struct {
	MAC       [6]byte
	Interface string
	Updated   int64 // unix nanoseconds
}

// Change is one replicated table change. Exactly the record named by Table
// is meaningful. For OpDelete the record's key fields suffice (Conn.Orig,
// the xlate's kind, protocol, real address and port and mapped interface,
// the ARP entry's interface and IP, the bridge entry's MAC) but the whole
// record is carried.
type Change struct {
	Table Table
	Op    Op
	// First marks, in what OnChange receives, an upsert that brings its
	// entry into the table: no earlier change of the entry is live. It is
	// not part of the wire form; a replication sender uses it to drop an
	// entry that is gone before the standby heard of it.
	First  bool
	Conn   ConnRecord
	Xlate  XlateRecord
	ARP    ARPRecord
	Bridge BridgeRecord
}

// Wire format, version 1 (big endian):
//
//	version(1)=1 table(1) op(1) bodyLen(2) body(bodyLen)
//
//	conn body:  orig(13) reply(13) state(1) closeFlags(1) flags(1)
//	            inIf(str) outIf(str) created(8) lastSeen(8)
//	            [TCP only: seqOffset(4) window(18) window(18)]
//	xlate body: kind(1) proto(1) real(4) realPort(2) mapped(4) mappedPort(2)
//	            realIf(str) mappedIf(str) created(8)
//	arp body:   iface(str) ip(4) mac(6) updated(8)
//	bridge body: mac(6) iface(str) updated(8)
//
// where a tuple is proto(1) src(4) dst(4) srcPort(2) dstPort(2) and str is
// len(1) bytes(len), 1-15 bytes, and a window is end(4) maxEnd(4)
// maxWin(4) maxAck(4) scale(1) flags(1). A reader of version 1 ignores body
// bytes past the fields it knows, so later versions may append fields: the
// TCP tracking block was appended that way, and a TCP record without it
// (from an older writer) gives a connection with no tracking, adopted like
// any replicated one.
const (
	changeVersion   = 1
	changeHeaderLen = 5
	connFlagHTTP    = 1
)

// Errors from ParseChange. Short input wraps io.ErrUnexpectedEOF.
var (
	ErrChangeVersion = errors.New("change: unknown version")
	ErrChangeTable   = errors.New("change: unknown table")
	ErrChangeOp      = errors.New("change: unknown op")
	ErrChangeField   = errors.New("change: invalid field")
	ErrChangeTrailer = errors.New("change: bytes after the record")
)

func appendTuple(b []byte, t Tuple) []byte {
	b = append(b, t.Proto)
	b = append(b, t.Src[:]...)
	b = append(b, t.Dst[:]...)
	b = binary.BigEndian.AppendUint16(b, t.SrcPort)
	return binary.BigEndian.AppendUint16(b, t.DstPort)
}

// AppendBinary appends the record's wire encoding to b.
func (c Change) AppendBinary(b []byte) []byte {
	start := len(b)
	b = append(b, changeVersion, byte(c.Table), byte(c.Op), 0, 0)
	switch c.Table {
	case TableConn:
		r := &c.Conn
		b = appendTuple(b, r.Orig)
		b = appendTuple(b, r.Reply)
		var fl byte
		if r.HTTP {
			fl |= connFlagHTTP
		}
		b = append(b, byte(r.State), r.CloseFlags, fl)
		b = recordio.AppendStr8(b, r.InInterface)
		b = recordio.AppendStr8(b, r.OutInterface)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Created))
		b = binary.BigEndian.AppendUint64(b, uint64(r.LastSeen))
		if r.Orig.Proto == header.ProtocolTCP {
			b = binary.BigEndian.AppendUint32(b, r.SeqOffset)
			for _, w := range r.Window {
				b = binary.BigEndian.AppendUint32(b, w.End)
				b = binary.BigEndian.AppendUint32(b, w.MaxEnd)
				b = binary.BigEndian.AppendUint32(b, w.MaxWin)
				b = binary.BigEndian.AppendUint32(b, w.MaxAck)
				b = append(b, w.Scale, w.Flags)
			}
		}
	case TableXlate:
		r := &c.Xlate
		b = append(b, byte(r.Kind), r.Proto)
		b = append(b, r.Real[:]...)
		b = binary.BigEndian.AppendUint16(b, r.RealPort)
		b = append(b, r.Mapped[:]...)
		b = binary.BigEndian.AppendUint16(b, r.MappedPort)
		b = recordio.AppendStr8(b, r.RealInterface)
		b = recordio.AppendStr8(b, r.MappedInterface)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Created))
	case TableARP:
		r := &c.ARP
		b = recordio.AppendStr8(b, r.Interface)
		b = append(b, r.IP[:]...)
		b = append(b, r.MAC[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Updated))
	case TableBridge:
		r := &c.Bridge
		b = append(b, r.MAC[:]...)
		b = recordio.AppendStr8(b, r.Interface)
		b = binary.BigEndian.AppendUint64(b, uint64(r.Updated))
	}
	binary.BigEndian.PutUint16(b[start+3:], uint16(len(b)-start-changeHeaderLen))
	return b
}

// MarshalBinary returns the record's wire encoding.
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

// readTuple reads a Tuple as AppendBinary writes it.
func readTuple(r *recordio.Reader) Tuple {
	return Tuple{Proto: r.U8(), Src: r.Addr4(), Dst: r.Addr4(), SrcPort: r.U16(), DstPort: r.U16()}
}

func validProto(p uint8) bool {
	return p == header.ProtocolTCP || p == header.ProtocolUDP || p == header.ProtocolICMP
}

func validIfName(s string) bool { return len(s) >= 1 && len(s) <= 15 }

// ParseChange decodes exactly one record as written by AppendBinary. It
// rejects unknown versions, tables and ops, impossible field values and
// bytes after the record, each with an error naming what was wrong.
func ParseChange(b []byte) (Change, error) {
	var c Change
	if len(b) < changeHeaderLen {
		return c, fmt.Errorf("change header: %w", io.ErrUnexpectedEOF)
	}
	if b[0] != changeVersion {
		return c, fmt.Errorf("%w %d", ErrChangeVersion, b[0])
	}
	c.Table, c.Op = Table(b[1]), Op(b[2])
	if c.Table == 0 || c.Table >= numTables {
		return Change{}, fmt.Errorf("%w %d", ErrChangeTable, b[1])
	}
	if c.Op != OpUpsert && c.Op != OpDelete {
		return Change{}, fmt.Errorf("%w %d", ErrChangeOp, b[2])
	}
	n := int(binary.BigEndian.Uint16(b[3:]))
	body := b[changeHeaderLen:]
	if len(body) < n {
		return Change{}, fmt.Errorf("%s body of %d bytes, have %d: %w", c.Table, n, len(body), io.ErrUnexpectedEOF)
	}
	if len(body) > n {
		return Change{}, fmt.Errorf("%w: %d", ErrChangeTrailer, len(body)-n)
	}
	r := recordio.NewReader(body)
	bad := func(format string, a ...any) (Change, error) {
		return Change{}, fmt.Errorf("%w: %s %s", ErrChangeField, c.Table, fmt.Sprintf(format, a...))
	}
	switch c.Table {
	case TableConn:
		x := &c.Conn
		x.Orig, x.Reply = readTuple(&r), readTuple(&r)
		x.State, x.CloseFlags = TCPState(r.U8()), r.U8()
		fl := r.U8()
		x.HTTP = fl&connFlagHTTP != 0
		x.InInterface, x.OutInterface = r.Str8(), r.Str8()
		x.Created, x.LastSeen = r.I64(), r.I64()
		if x.Orig.Proto == header.ProtocolTCP && r.Len() > 0 {
			x.SeqOffset = r.U32()
			for i := range x.Window {
				w := &x.Window[i]
				w.End, w.MaxEnd, w.MaxWin, w.MaxAck = r.U32(), r.U32(), r.U32(), r.U32()
				w.Scale, w.Flags = r.U8(), r.U8()
			}
		}
		if r.Short() {
			break
		}
		for _, w := range x.Window {
			if w.Scale > maxWindowScale || w.Flags&^tcpWinWireMask != 0 {
				return bad("TCP window scale %d flags %#x", w.Scale, w.Flags)
			}
		}
		switch {
		case !validProto(x.Orig.Proto) || x.Reply.Proto != x.Orig.Proto:
			return bad("protocols %d/%d", x.Orig.Proto, x.Reply.Proto)
		case x.Orig.Proto == header.ProtocolTCP && (x.State == TCPStateNone || x.State >= numTCPStates):
			return bad("TCP state %d", x.State)
		case x.Orig.Proto != header.ProtocolTCP && (x.State != TCPStateNone || x.CloseFlags != 0):
			return bad("state %d on a %s connection", x.State, protoName(x.Orig.Proto))
		case x.CloseFlags&^closeFlagsMask != 0:
			return bad("close flags %#x", x.CloseFlags)
		case !validIfName(x.InInterface) || !validIfName(x.OutInterface):
			return bad("interface names %q %q", x.InInterface, x.OutInterface)
		}
	case TableXlate:
		x := &c.Xlate
		x.Kind, x.Proto = NATKind(r.U8()), r.U8()
		x.Real, x.RealPort = r.Addr4(), r.U16()
		x.Mapped, x.MappedPort = r.Addr4(), r.U16()
		x.RealInterface, x.MappedInterface = r.Str8(), r.Str8()
		x.Created = r.I64()
		if r.Short() {
			break
		}
		switch {
		case x.Kind == NATDynamicPAT && !validProto(x.Proto):
			return bad("PAT protocol %d", x.Proto)
		case x.Kind == NATStatic && (x.Proto != 0 || x.RealPort != 0 || x.MappedPort != 0):
			return bad("static xlate with protocol or ports")
		case x.Kind != NATDynamicPAT && x.Kind != NATStatic:
			return bad("kind %d", x.Kind)
		case !validIfName(x.RealInterface) || !validIfName(x.MappedInterface):
			return bad("interface names %q %q", x.RealInterface, x.MappedInterface)
		}
	case TableARP:
		x := &c.ARP
		x.Interface = r.Str8()
		x.IP = r.Addr4()
		x.MAC = [6]byte(r.Take(6))
		x.Updated = r.I64()
		if r.Short() {
			break
		}
		if !validIfName(x.Interface) {
			return bad("interface name %q", x.Interface)
		}
	case TableBridge:
		x := &c.Bridge
		x.MAC = [6]byte(r.Take(6))
		x.Interface = r.Str8()
		x.Updated = r.I64()
		if r.Short() {
			break
		}
		switch {
		case !validStationMAC(x.MAC):
			return bad("station MAC %x is multicast or zero", x.MAC)
		case !validIfName(x.Interface):
			return bad("interface name %q", x.Interface)
		}
	}
	if r.Short() {
		return Change{}, fmt.Errorf("%s body: %w", c.Table, io.ErrUnexpectedEOF)
	}
	return c, nil
}

// entryHash is an entry's contribution to its table's digest: a 64-bit
// hash of its replicated encoding with the op and timestamps left out, so
// that the same entry hashes the same on both units whatever its age.
func entryHash(c Change) uint64 {
	c.Op = OpUpsert
	c.Conn.Created, c.Conn.LastSeen = 0, 0
	c.Conn.Window = [2]TCPWindow{} // soft state, not replicated on every change
	c.Xlate.Created = 0
	c.ARP.Updated = 0
	c.Bridge.Updated = 0
	var buf [160]byte
	return recordio.Hash(c.AppendBinary(buf[:0]))
}
