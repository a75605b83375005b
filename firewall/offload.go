package firewall

// Offloaded frames: GSO super-frames and frames whose transport checksum is
// still to be done, read and written with their virtio_net_hdr
// (PACKET_VNET_HDR) on an OffloadPort.
//
// A TCP super-frame of an established connection that no engine inspects
// and no listener diverts travels whole: the path parses, looks up, tracks
// (one segment of the whole length) and NATs its headers once, and the
// kernel cuts it into gso_size segments on the egress interface (or hands
// it whole to a peer that takes it). With NEEDS_CSUM the TCP checksum field
// holds the partial sum of the pseudo-header only (the kernel completes it
// over the segment from csum_start), so NAT updates that field for the
// address change alone: ports, sequence numbers and SACK blocks are part of
// the data the kernel sums later, not of the field.
//
// Everything else is made ordinary first (plain), so that no other part of
// the path ever meets a partial checksum or a frame longer than an MTU: a
// super-frame is cut into segments in software, each with a full checksum,
// and each runs the path on its own (engines see ordinary segments, the
// unit's own stack gets ordinary packets, a segment too big for the egress
// MTU is fragmented or refused as before); a frame with only NEEDS_CSUM has
// its checksum completed. That is the simplest correct route: only the
// engine-free established TCP flow, which carries the bulk, is the fast
// path, and nothing else needed to change.

import (
	"encoding/binary"

	"github.com/falab/falab/firewall/header"
)

// OffloadPort is a Port that also carries each frame's virtio_net_hdr
// (afpacket.Port opened with Options.VNetHdr): frames as long as
// MaxOffloadFrameSize, checksum still to do, GSO super-frames. The
// firewall reads and writes an attached OffloadPort whose VNetHdr reports
// true through ReadBatchVNet and WriteBatchVNet; hdrs[i] is frames[i]'s
// header, vnetHdrLen bytes, in the kernel's layout (struct
// virtio_net_hdr, host byte order).
type OffloadPort interface {
	Port
	VNetHdr() bool
	ReadBatchVNet(bufs [][]byte, sizes []int, hdrs [][]byte) (int, error)
	WriteBatchVNet(frames, hdrs [][]byte) (int, error)
}

// MaxOffloadFrameSize is the size of the read buffers of an OffloadPort: the
// longest IPv4 packet (a super-frame's total length is its whole length)
// with its Ethernet header and a VLAN tag.
const MaxOffloadFrameSize = header.EthernetLen + 4 + 65535

// virtio_net_hdr, the kernel ABI (include/uapi/linux/virtio_net.h).
const (
	vnetHdrLen    = 10
	vnetNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID: checksum already verified
	vnetGSONone   = 0
	vnetGSOTCPv4  = 1
	vnetGSOUDPL4  = 5
	vnetGSOECN    = 0x80 // the super-frame has CWR set: only its first segment keeps it
)

// noOffload is the header sent with an ordinary frame: nothing to do.
var noOffload [vnetHdrLen]byte

// offload is what the virtio_net_hdr of the frame at hand asks for. The
// zero value is an ordinary frame.
type offload struct {
	hdr     []byte // as received, sent on with the frame kept whole; nil: an ordinary frame
	frame0  *byte  // the frame hdr belongs to: only that frame carries it out (queue)
	bad     DropReason
	partial bool  // NEEDS_CSUM: the L4 checksum field holds the pseudo-header sum
	gso     uint8 // vnetGSOTCPv4, vnetGSOUDPL4 or vnetGSONone
	ecn     bool
	size    int    // gso_size: payload bytes per segment
	start   int    // csum_start, from the Ethernet header
	at      int    // csum_offset, from start
	segLen  int    // the IPv4 length of a full segment (set by check)
	segs    uint64 // segments the frame stands for (set by check; 1 if not GSO)
}

func (o *offload) set() bool { return o.hdr != nil }

// parseOffload reads a virtio_net_hdr. A header that asks for nothing
// (no GSO, checksum done or verified) gives the zero offload; one the
// firewall cannot honour (flags or a GSO kind it does not know, GSO
// without NEEDS_CSUM or without a segment size, IPv6 GSO) gives
// DropBadOffload in bad.
func parseOffload(hdr []byte) offload {
	if len(hdr) < vnetHdrLen {
		return offload{bad: DropBadOffload}
	}
	flags, kind := hdr[0], hdr[1]
	o := offload{
		partial: flags&vnetNeedsCsum != 0,
		gso:     kind &^ vnetGSOECN,
		ecn:     kind&vnetGSOECN != 0,
		size:    int(binary.NativeEndian.Uint16(hdr[4:])),
		start:   int(binary.NativeEndian.Uint16(hdr[6:])),
		at:      int(binary.NativeEndian.Uint16(hdr[8:])),
	}
	switch {
	case flags&^(vnetNeedsCsum|vnetDataValid) != 0:
		return offload{bad: DropBadOffload}
	case o.gso == vnetGSONone && !o.ecn:
		if !o.partial {
			return offload{}
		}
	case o.gso != vnetGSOTCPv4 && o.gso != vnetGSOUDPL4,
		o.ecn && o.gso != vnetGSOTCPv4, !o.partial, o.size == 0:
		return offload{bad: DropBadOffload}
	}
	o.hdr = hdr
	return o
}

// check holds the offload of the frame at hand to its IPv4 packet: the
// checksum to complete is the TCP or UDP one, starting at the transport
// header, the GSO kind is the packet's protocol, a super-frame is not a
// fragment and carries a payload, and a segment fits a buffer.
func (o *offload) check(ip header.IPv4) DropReason {
	hl := ip.HeaderLength()
	l4 := ip[hl:]
	var thl int
	switch ip.Protocol() {
	case header.ProtocolTCP:
		t := header.TCP(l4)
		if o.at != 16 || o.gso == vnetGSOUDPL4 || t.Check() != nil {
			return DropBadOffload
		}
		thl = t.DataOffset()
	case header.ProtocolUDP:
		if o.at != 6 || o.gso == vnetGSOTCPv4 || len(l4) < header.UDPMinimumSize {
			return DropBadOffload
		}
		thl = header.UDPMinimumSize
	default:
		return DropBadOffload
	}
	if !o.partial || o.start != header.EthernetLen+hl || ip.IsFragment() {
		return DropBadOffload
	}
	o.segs = 1
	o.segLen = len(ip)
	if o.gso == vnetGSONone {
		return dropNone
	}
	payload := len(l4) - thl
	if payload == 0 || header.EthernetLen+hl+thl+min(o.size, payload) > MaxFrameSize {
		return DropBadOffload
	}
	o.segs = uint64((payload + o.size - 1) / o.size)
	o.segLen = hl + thl + min(o.size, payload)
	return dropNone
}

// keepsWhole reports whether the offloaded packet at hand (w.p, of
// connection c travelling in dir; c nil for a new flow) can leave as it
// is: TCP of an established connection that no engine inspects and no
// listener diverts, to an OffloadPort without a crypto map, in segments
// that fit its MTU unless the packet may not be fragmented (then egress
// refuses it with fragmentation needed, as it would each segment).
func (w *worker) keepsWhole(c *conn, dir int) bool {
	f := w.f
	if c == nil || c.engine != nil || c.diverted() || w.p.tuple.Proto != header.ProtocolTCP {
		return false
	}
	out := w.peerSide(c, dir)
	if f.transparent && w.l2.out >= 0 {
		out = w.l2.out
	}
	it := f.ifs[out]
	if it.offload == nil || it.crypto {
		return false
	}
	return f.transparent || w.off.segLen <= it.mtu || w.p.ip.DontFragment()
}

// carriesOffload reports whether frame is the offloaded frame at hand,
// kept whole: it must leave with its virtio_net_hdr.
func (w *worker) carriesOffload(frame []byte) bool {
	return w.off.set() && len(frame) > 0 && &frame[0] == w.off.frame0
}

// wireLen returns the IPv4 length the packet at hand has on the wire: a
// super-frame's segments', else its own.
func (w *worker) wireLen() int {
	if w.off.gso != vnetGSONone {
		return w.off.segLen
	}
	return len(w.p.ip)
}

// plain makes the offloaded frame at hand ordinary: a frame whose checksum
// is still to do gets it, and the path goes on with it (done false); a
// super-frame is cut into segments, each of which runs the path from the
// IPv4 step on, and done is true (their drops are counted; r is none).
func (w *worker) plain(in *iface, frame []byte) (r DropReason, done bool) {
	o := w.off
	w.off = offload{}
	if o.gso == vnetGSONone {
		completeChecksum(frame, o.start, o.at)
		return dropNone, false
	}
	ip := header.IPv4(frame[header.EthernetLen:])
	f := w.f
	for seg := range segments(ip, o) {
		b := f.getBuf()
		w.held = append(w.held, b) // given back after flush, when the segment is sent
		n := copy(b.data, frame[:header.EthernetLen])
		n += copy(b.data[n:], seg.head)
		n += copy(b.data[n:], seg.payload)
		seg.finish(header.IPv4(b.data[header.EthernetLen:n]))
		if r := w.network(in, linkIPv4, b.data[:n]); r != dropNone {
			f.drops[r].Add(1)
			in.stats.drops.Add(1)
		}
	}
	return dropNone, true
}

// completeChecksum finishes a transport checksum the sender left to the
// hardware: the field at start+at holds the pseudo-header sum, so the
// ones' complement sum from start to the end, that field included, is
// the checksum. A UDP result of zero is sent as 0xffff (zero means none).
func completeChecksum(frame []byte, start, at int) {
	field := frame[start+at:]
	c := ^header.Checksum(frame[start:], 0)
	if c == 0 && at == 6 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(field, c)
}

// gsoSegment is one segment of a super-frame, as the kernel's GSO would cut
// it (tcp_gso_segment, __udp_gso_segment): the super-frame's IPv4 and
// transport headers and gso_size bytes of its payload.
type gsoSegment struct {
	head, payload []byte
	index         int // 0 for the first
	offset        int // of payload in the super-frame's payload
	last          bool
}

// segments cuts the super-frame ip (checked by o.check) into segments.
func segments(ip header.IPv4, o offload) func(yield func(gsoSegment) bool) {
	return func(yield func(gsoSegment) bool) {
		hl := ip.HeaderLength()
		thl := header.UDPMinimumSize
		if ip.Protocol() == header.ProtocolTCP {
			thl = header.TCP(ip[hl:]).DataOffset()
		}
		head, payload := ip[:hl+thl], ip[hl+thl:]
		for i, off := 0, 0; off < len(payload); i, off = i+1, off+o.size {
			end := min(off+o.size, len(payload))
			s := gsoSegment{head: head, payload: payload[off:end], index: i, offset: off, last: end == len(payload)}
			if !yield(s) {
				return
			}
		}
	}
}

// finish fixes the copy ip of the segment's headers and payload: lengths,
// IPv4 ID (one more per segment), TCP sequence number and flags (FIN and
// PSH on the last segment only, CWR on the first only), and both
// checksums computed in full.
func (s gsoSegment) finish(ip header.IPv4) {
	ip.SetTotalLength(uint16(len(ip)))
	ip.SetID(ip.ID() + uint16(s.index))
	ip.SetChecksum(ip.CalculateChecksum())
	src, dst := ip.SourceAddress(), ip.DestinationAddress()
	l4 := ip[ip.HeaderLength():]
	if ip.Protocol() == header.ProtocolUDP {
		u := header.UDP(l4)
		u.SetLength(uint16(len(l4)))
		u.SetChecksum(u.CalculateChecksum(src, dst))
		return
	}
	t := header.TCP(l4)
	t.SetSequenceNumber(t.SequenceNumber() + uint32(s.offset))
	fl := t.Flags()
	if !s.last {
		fl &^= header.TCPFlagFIN | header.TCPFlagPSH
	}
	if s.index > 0 {
		fl &^= header.TCPFlagCWR
	}
	t.SetFlags(fl)
	t.SetChecksum(t.CalculateChecksum(src, dst))
}

// translatePartial is translate's transport step for a TCP packet whose
// checksum field holds the pseudo-header's partial sum (NEEDS_CSUM): the
// ports change without touching it (the kernel sums them when it
// completes the checksum), the addresses change it as the pseudo-header
// does. That sum is stored as it is, not complemented, so RFC 1624's
// update applies to its complement.
func translatePartial(l4 header.TCP, t Tuple, src, dst [4]byte, sport, dport uint16) {
	sum := l4.Checksum()
	if src != t.Src {
		sum = ^header.ChecksumUpdateAddr(^sum, t.Src, src)
	}
	if dst != t.Dst {
		sum = ^header.ChecksumUpdateAddr(^sum, t.Dst, dst)
	}
	l4.SetChecksum(sum)
	l4.SetSourcePort(sport)
	l4.SetDestinationPort(dport)
}
