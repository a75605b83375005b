package afpacket

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A Tap only watches: it receives every frame crossing one interface, in
// both directions (frames the interface receives and frames its namespace
// sends), each with the kernel's timestamp, through a TPACKET_V3 receive
// ring, as libpcap does. It is what a packet capture reads.
//
// V3 suits a watcher where it would not suit the forwarding Port: the
// kernel packs frames of any length into blocks and hands a block over
// (TP_STATUS_USER in its header) when it is full or BlockTimeout after its
// first frame, so one wake-up serves a whole block, with no system call and
// no copy per frame. The block timer's latency is a viewer's, not a flow's.
//
// Block layout (struct tpacket_block_desc, then frames):
//
//	+0   version, offset_to_priv
//	+8   tpacket_hdr_v1: block_status, num_pkts, offset_to_first_pkt, blk_len, ...
//	...  frame: tpacket3_hdr (next_offset, sec, nsec, snaplen, len, status,
//	     mac, net, vlan_tci, vlan_tpid, ...), sockaddr_ll at +48, data at +mac
//
// Concurrency: ReadBlock and Wait are for one reader goroutine; Stats,
// SetReadDeadline and Close may be called from any goroutine, during a read
// too. Close wakes a waiting reader (which then gets ErrClosed) and unmaps
// the ring only once no read is running.
type Tap struct {
	*socket
	blockSize int
	cur       int // the block to read next, guarded by socket.rxMu

	readyFn func(fd uintptr) bool
}

// TapOptions tune a Tap. The zero value is ready to use.
type TapOptions struct {
	// SnapLen is the longest frame the ring must hold whole; it sizes
	// the blocks (a frame never spans two). Longer frames are cut, and
	// their wire length still reported. 0 is DefaultTapSnapLen, at most
	// MaxTapSnapLen.
	SnapLen int
	// Promisc puts the interface in promiscuous mode while the Tap is
	// open. Veths and bridge ports hand every frame to packet sockets
	// anyway; it matters on interfaces that filter by MAC.
	Promisc bool
}

const (
	// DefaultTapSnapLen is TapOptions.SnapLen's default: as tcpdump's,
	// enough for a whole GSO super-frame on a veth with offloads on.
	DefaultTapSnapLen = 262144
	// MaxTapSnapLen bounds TapOptions.SnapLen, and so the block size.
	MaxTapSnapLen = 1 << 20

	// TapBlocks is how many blocks a Tap's ring has; with the smallest
	// block that is 8 MiB of frames queued while the reader is slow.
	TapBlocks = 8
	// tapMinBlock is the smallest block; larger snap lengths get larger
	// blocks.
	tapMinBlock = 1 << 20
	// tapFrameSize only satisfies PACKET_RX_RING's arithmetic: V3 packs
	// frames of any size into a block.
	tapFrameSize = 1 << 11
	// TapBlockTimeout is the longest a frame waits in a part-filled
	// block: the latency a live viewer sees on a quiet link.
	TapBlockTimeout = 20 * time.Millisecond

	// blockStatusOff and friends are offsets into a block's header.
	blockStatusOff = 8
	numPktsOff     = 12
	firstPktOff    = 16
	// v3Alignment is V3_ALIGNMENT, to which the kernel rounds each
	// frame's next_offset (not TPACKET_ALIGNMENT's 16).
	v3Alignment = 8
	// sockaddrOff is TPACKET_ALIGN(sizeof(struct tpacket3_hdr)).
	sockaddrOff = (unix.SizeofTpacket3Hdr + unix.TPACKET_ALIGNMENT - 1) &^ (unix.TPACKET_ALIGNMENT - 1)
)

// TapBlockSize is the block size of a Tap's ring for a snap length: a power
// of two, at least 1 MiB, with room for one whole frame and its headers.
func TapBlockSize(snapLen int) int {
	b := tapMinBlock
	for b < snapLen+512 {
		b <<= 1
	}
	return b
}

// TapFrame is one frame of a block. Data lies in the ring: it is valid only
// until the callback that received it returns.
type TapFrame struct {
	// Data is the bytes the kernel kept of the frame.
	Data []byte
	// WireLen is the frame's length on the wire.
	WireLen int
	// Time is when the kernel received or sent the frame.
	Time time.Time
	// Outgoing is set for frames the interface's namespace sent.
	Outgoing bool
	// VLAN is set when the kernel moved an 802.1Q/802.1ad tag out of the
	// frame (VLAN receive offload); VLANTPID and VLANTCI are the tag.
	VLAN              bool
	VLANTPID, VLANTCI uint16
}

// TapStats are the kernel's counters for a Tap.
type TapStats struct {
	// KernelFrames counts frames the kernel handed to the socket,
	// including those it then dropped (PACKET_STATISTICS tp_packets).
	KernelFrames uint64
	// KernelDrops counts frames the kernel dropped because every block
	// was full: the reader fell behind (tp_drops).
	KernelDrops uint64
}

// OpenTap opens a Tap on the interface named ifname in the network
// namespace of the calling thread (see Open). Frames are queued from the
// moment it returns, so a caller that opens, makes traffic, then reads
// misses nothing, up to the ring's size.
func OpenTap(ifname string, o TapOptions) (*Tap, error) {
	switch {
	case o.SnapLen < 0 || o.SnapLen > MaxTapSnapLen:
		return nil, fmt.Errorf("afpacket: snap length %d is outside 0..%d", o.SnapLen, MaxTapSnapLen)
	case o.SnapLen == 0:
		o.SnapLen = DefaultTapSnapLen
	}
	bs := TapBlockSize(o.SnapLen)
	s, err := openSocket(ifname, socketSpec{
		version: unix.TPACKET_V3,
		ring: unix.TpacketReq3{
			Block_size:     uint32(bs),
			Block_nr:       TapBlocks,
			Frame_size:     tapFrameSize,
			Frame_nr:       uint32(bs / tapFrameSize * TapBlocks),
			Retire_blk_tov: uint32(TapBlockTimeout / time.Millisecond),
		},
		promisc: o.Promisc,
	})
	if err != nil {
		return nil, err
	}
	t := &Tap{socket: s, blockSize: bs}
	t.readyFn = func(uintptr) bool { return t.ready() }
	return t, nil
}

// BlockSize returns the size of one of the ring's TapBlocks blocks.
func (t *Tap) BlockSize() int { return t.blockSize }

// block returns the current block's memory.
func (t *Tap) block() []byte {
	return t.ring[t.cur*t.blockSize : (t.cur+1)*t.blockSize]
}

// ready reports whether the kernel has handed the current block over.
func (t *Tap) ready() bool {
	return atomic.LoadUint32(blockStatus(t.block()))&unix.TP_STATUS_USER != 0
}

func blockStatus(block []byte) *uint32 {
	return (*uint32)(unsafe.Pointer(&block[blockStatusOff]))
}

// ReadBlock calls fn for each frame of the next block the kernel has handed
// over, then gives the block back; fn returning false skips the rest of the
// block. It returns false, without waiting, when no block is ready, and
// ErrClosed once the Tap is closed. It allocates nothing.
func (t *Tap) ReadBlock(fn func(TapFrame) bool) (bool, error) {
	t.rxMu.Lock()
	defer t.rxMu.Unlock()
	if t.closed.Load() {
		return false, ErrClosed
	}
	if !t.ready() {
		return false, nil
	}
	b := t.block()
	walkBlock(b, fn)
	atomic.StoreUint32(blockStatus(b), unix.TP_STATUS_KERNEL)
	t.cur = (t.cur + 1) % TapBlocks
	return true, nil
}

// Wait blocks until a block is ready, the read deadline passes (an error
// wrapping os.ErrDeadlineExceeded), or the Tap is closed (ErrClosed).
func (t *Tap) Wait() error {
	t.rxMu.Lock()
	defer t.rxMu.Unlock()
	if t.closed.Load() {
		return ErrClosed
	}
	return t.wait(t.readyFn)
}

// Stats returns the kernel's counters, summed since OpenTap.
func (t *Tap) Stats() (TapStats, error) {
	frames, drops, err := t.kernelStats()
	return TapStats{KernelFrames: frames, KernelDrops: drops}, err
}

// Close closes the socket, which also ends promiscuous mode if OpenTap set
// it, and wakes a waiting reader. Closing twice returns nil.
func (t *Tap) Close() error { return t.close() }

// walkBlock calls fn for each frame of a handed-over block, stopping early
// if fn returns false. It checks every offset against the block, so a
// damaged block ends the walk instead of reading outside it, and allocates
// nothing.
func walkBlock(block []byte, fn func(TapFrame) bool) {
	if len(block) < firstPktOff+4 {
		return
	}
	n := nativeU32(block, numPktsOff)
	off := int(nativeU32(block, firstPktOff))
	for range n {
		if off <= 0 || off%v3Alignment != 0 || off+sockaddrOff+unix.SizeofSockaddrLinklayer > len(block) {
			return
		}
		h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&block[off]))
		start, kept := off+int(h.Mac), int(h.Snaplen)
		if start < off+sockaddrOff || kept < 0 || start+kept > len(block) {
			return
		}
		sll := (*unix.RawSockaddrLinklayer)(unsafe.Pointer(&block[off+sockaddrOff]))
		f := TapFrame{
			Data:     block[start : start+kept],
			WireLen:  int(h.Len),
			Time:     time.Unix(int64(h.Sec), int64(h.Nsec)),
			Outgoing: sll.Pkttype == unix.PACKET_OUTGOING,
		}
		if h.Status&unix.TP_STATUS_VLAN_VALID != 0 {
			f.VLAN, f.VLANTCI, f.VLANTPID = true, uint16(h.Hv1.Vlan_tci), 0x8100
			if h.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				f.VLANTPID = h.Hv1.Vlan_tpid
			}
		}
		if !fn(f) || h.Next_offset == 0 {
			return
		}
		off += int(h.Next_offset)
	}
}

// nativeU32 reads a native-order uint32 from a block header (the ring is
// in the machine's order).
func nativeU32(b []byte, off int) uint32 {
	return *(*uint32)(unsafe.Pointer(&b[off]))
}
