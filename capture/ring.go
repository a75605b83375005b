package capture

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The receive ring is TPACKET_V3, as libpcap uses: the kernel writes frames
// straight into memory shared with us, packed into blocks, and hands a block
// over (TP_STATUS_USER in its header) when it is full or retireTimeout after
// its first frame. One wake-up then serves a whole block of frames, with no
// system call and no copy per frame; that is what lets a capture keep up
// with a flood the lab's iperf3 makes.
//
// Block layout (struct tpacket_block_desc, then frames):
//
//	+0   version, offset_to_priv
//	+8   tpacket_hdr_v1: block_status, num_pkts, offset_to_first_pkt, blk_len, ...
//	...  frame: tpacket3_hdr (next_offset, sec, nsec, snaplen, len, status,
//	     mac, net, vlan_tci, vlan_tpid, ...), sockaddr_ll at +48, data at +mac
const (
	// ringBlocks is how many blocks the ring has; with ringMinBlock that
	// is 8 MiB of frames queued while the writer is slow.
	ringBlocks = 8
	// ringMinBlock is the smallest block; larger snap lengths get larger
	// blocks, since a frame never spans two.
	ringMinBlock = 1 << 20
	// ringFrameSize only satisfies PACKET_RX_RING's arithmetic: V3 packs
	// frames of any size into a block.
	ringFrameSize = 1 << 11
	// retireTimeout is the longest a frame waits in a part-filled block:
	// the latency a live viewer sees on a quiet link.
	retireTimeout = 20 * time.Millisecond

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

// ring is a mapped TPACKET_V3 receive ring. It is used by one goroutine
// at a time (Capture.Run); Capture serialises its unmapping with Run.
type ring struct {
	mem       []byte
	blockSize int
	cur       int // the block to read next
}

// ringBlockSize is the block size for a snap length: a power of two, at
// least ringMinBlock, with room for one whole frame and the headers.
func ringBlockSize(snapLen int) int {
	b := ringMinBlock
	for b < snapLen+512 {
		b <<= 1
	}
	return b
}

// newRing switches fd to TPACKET_V3 and maps its receive ring. It must run
// before the socket is bound, so no frame takes the non-ring path.
func newRing(fd, snapLen int) (*ring, error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("set PACKET_VERSION TPACKET_V3: %w", err)
	}
	bs := ringBlockSize(snapLen)
	req := unix.TpacketReq3{
		Block_size:     uint32(bs),
		Block_nr:       ringBlocks,
		Frame_size:     ringFrameSize,
		Frame_nr:       uint32(bs / ringFrameSize * ringBlocks),
		Retire_blk_tov: uint32(retireTimeout / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("set PACKET_RX_RING (%d blocks of %d bytes): %w", ringBlocks, bs, err)
	}
	mem, err := unix.Mmap(fd, 0, bs*ringBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map the receive ring: %w", err)
	}
	return &ring{mem: mem, blockSize: bs}, nil
}

// block returns the current block's memory.
func (r *ring) block() []byte {
	return r.mem[r.cur*r.blockSize : (r.cur+1)*r.blockSize]
}

// ready reports whether the kernel has handed the current block over.
func (r *ring) ready() bool {
	return atomic.LoadUint32(statusWord(r.block()))&unix.TP_STATUS_USER != 0
}

// release gives the current block back to the kernel and moves on.
func (r *ring) release() {
	atomic.StoreUint32(statusWord(r.block()), unix.TP_STATUS_KERNEL)
	r.cur = (r.cur + 1) % (len(r.mem) / r.blockSize)
}

func statusWord(block []byte) *uint32 {
	return (*uint32)(unsafe.Pointer(&block[blockStatusOff]))
}

func (r *ring) unmap() error {
	if r == nil || r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem = nil
	return err
}

// ringFrame is one frame of a block, its data still in the block.
type ringFrame struct {
	data      []byte // the bytes the kernel kept
	wireLen   int    // the frame's length on the wire
	ts        time.Time
	outgoing  bool
	vlanValid bool
	vlanTPID  uint16
	vlanTCI   uint16
}

// walkBlock calls fn for each frame of a handed-over block, stopping early
// if fn returns false. It checks every offset against the block, so a
// damaged block ends the walk instead of reading outside it, and allocates
// nothing.
func walkBlock(block []byte, fn func(f ringFrame) bool) {
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
		f := ringFrame{
			data:     block[start : start+kept],
			wireLen:  int(h.Len),
			ts:       time.Unix(int64(h.Sec), int64(h.Nsec)),
			outgoing: sll.Pkttype == unix.PACKET_OUTGOING,
		}
		if h.Status&unix.TP_STATUS_VLAN_VALID != 0 {
			f.vlanValid, f.vlanTCI, f.vlanTPID = true, uint16(h.Hv1.Vlan_tci), 0x8100
			if h.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				f.vlanTPID = h.Hv1.Vlan_tpid
			}
		}
		if !fn(f) || h.Next_offset == 0 {
			return
		}
		off += int(h.Next_offset)
	}
}

// le32 reads a native-order uint32 from a block header (the ring is in
// the machine's order; every Linux falab runs on is little-endian).
func nativeU32(b []byte, off int) uint32 {
	return *(*uint32)(unsafe.Pointer(&b[off]))
}
