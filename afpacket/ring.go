package afpacket

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ringBlockSize is the size of one ring block. The kernel allocates each
// block as one physically contiguous chunk (falling back to vmalloc), so it
// is kept modest; it is a power of two, hence a multiple of the page size
// and of every allowed slot size up to it.
const ringBlockSize = 1 << 16

// ring is a TPACKET_V2 receive ring: slots of a fixed size, each a
// tpacket2_hdr followed by one frame, handed back and forth through the
// header's status word (TP_STATUS_USER: ours to read; TP_STATUS_KERNEL:
// the kernel's to fill). The socket maps and unmaps it.
type ring struct {
	mem       []byte
	slotSize  int
	slotCount int
	head      int // next slot to read, guarded by socket.rxMu
	// held counts the slots before head that ReadInPlace handed out and
	// Release has not yet given back; guarded by socket.rxMu.
	held int

	readyFn func(fd uintptr) bool
}

// v2Geometry is the ring Options ask for: RingFrames slots of
// RingFrameSize bytes, rounded up to whole blocks. PACKET_AUXDATA is not
// needed: each slot's header carries the VLAN tag and the status.
func v2Geometry(o Options) unix.TpacketReq3 {
	blockSize := max(ringBlockSize, o.RingFrameSize)
	perBlock := blockSize / o.RingFrameSize
	blocks := (o.RingFrames + perBlock - 1) / perBlock
	return unix.TpacketReq3{
		Block_size: uint32(blockSize),
		Block_nr:   uint32(blocks),
		Frame_size: uint32(o.RingFrameSize),
		Frame_nr:   uint32(blocks * perBlock),
	}
}

func newRing(mem []byte, slotSize int) *ring {
	r := &ring{mem: mem, slotSize: slotSize, slotCount: len(mem) / slotSize}
	r.readyFn = r.ready
	return r
}

// status returns the status word of slot i, the kernel's publication
// point: the kernel writes the frame, then (after a write barrier) the
// status, so an atomic load that sees TP_STATUS_USER sees the frame too.
func (r *ring) status(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[i*r.slotSize]))
}

// ready is the poller callback: true when the head slot holds a frame.
func (r *ring) ready(uintptr) bool {
	return atomic.LoadUint32(r.status(r.head))&unix.TP_STATUS_USER != 0
}

// read fills bufs (and, if not nil, hdrs: see Port.ReadBatchVNet).
func (r *ring) read(p *Port, bufs [][]byte, sizes []int, hdrs [][]byte) (int, error) {
	for {
		if n := r.drain(p, bufs, sizes, hdrs); n > 0 {
			return n, nil
		}
		// The ring is empty (or held only dropped frames). The poller
		// calls ready first, then waits for the socket to be readable:
		// the kernel signals each frame it puts in the ring.
		if err := p.wait(r.readyFn); err != nil {
			return 0, err
		}
	}
}

// drain copies ready frames into bufs (their virtio_net_hdr into hdrs,
// when not nil) and gives their slots back.
func (r *ring) drain(p *Port, bufs [][]byte, sizes []int, hdrs [][]byte) int {
	n := 0
	for n < len(bufs) {
		st := r.status(r.head)
		status := atomic.LoadUint32(st)
		if status&unix.TP_STATUS_USER == 0 {
			break
		}
		slot := r.mem[r.head*r.slotSize : (r.head+1)*r.slotSize]
		hdr := (*unix.Tpacket2Hdr)(unsafe.Pointer(&slot[0]))
		var vnet []byte
		if hdrs != nil {
			vnet = hdrs[n]
		}
		if size, ok := r.copyOut(p, slot, hdr, status, bufs[n], vnet); ok {
			sizes[n] = size
			n++
		}
		atomic.StoreUint32(st, unix.TP_STATUS_KERNEL)
		r.head++
		if r.head == r.slotCount {
			r.head = 0
		}
	}
	return n
}

// drainInPlace is drain without the copy: frames[i] and hdrs[i] are the
// slots' own memory, and the slots stay the reader's (held) until release.
// A dropped frame's slot is held too, so that release gives back one run.
func (r *ring) drainInPlace(p *Port, frames, hdrs [][]byte) int {
	n := 0
	for n < len(frames) && r.held < r.slotCount {
		status := atomic.LoadUint32(r.status(r.head))
		if status&unix.TP_STATUS_USER == 0 {
			break
		}
		slot := r.mem[r.head*r.slotSize : (r.head+1)*r.slotSize]
		hdr := (*unix.Tpacket2Hdr)(unsafe.Pointer(&slot[0]))
		if start, size, ok := r.locate(p, slot, hdr, status); ok && start >= VNetHdrLen {
			// Capacity to the slot's end: room the frame may grow into.
			frames[n] = slot[start : start+size : len(slot)]
			hdrs[n] = slot[start-VNetHdrLen : start : start]
			n++
		} else if ok {
			p.truncated.Add(1)
		}
		r.held++
		r.head++
		if r.head == r.slotCount {
			r.head = 0
		}
	}
	return n
}

// release gives the held slots back to the kernel, oldest first.
func (r *ring) release() {
	i := r.head - r.held
	if i < 0 {
		i += r.slotCount
	}
	for range r.held {
		atomic.StoreUint32(r.status(i), unix.TP_STATUS_KERNEL)
		if i++; i == r.slotCount {
			i = 0
		}
	}
	r.held = 0
}

// locate finds the frame in slot: its offset and length. It returns
// false, counting the drop, when the frame did not fit the slot or
// arrived with a VLAN tag.
func (r *ring) locate(p *Port, slot []byte, hdr *unix.Tpacket2Hdr, status uint32) (start, size int, ok bool) {
	if wasTagged(status, hdr.Vlan_tci) {
		p.vlanTagged.Add(1)
		return 0, 0, false
	}
	start, size = int(hdr.Mac), int(hdr.Snaplen)
	if int(hdr.Snaplen) < int(hdr.Len) || start < 0 || start+size > len(slot) {
		p.truncated.Add(1)
		return 0, 0, false
	}
	if status&unix.TP_STATUS_CSUMNOTREADY != 0 {
		p.checksumPending.Add(1)
	}
	return start, size, true
}

// copyOut copies the frame in slot into buf, and its virtio_net_hdr into
// vnet if that is not nil (else in front of the frame in buf). It returns
// false, counting the drop, when the frame did not fit the slot or does
// not fit buf, or arrived with a VLAN tag.
func (r *ring) copyOut(p *Port, slot []byte, hdr *unix.Tpacket2Hdr, status uint32, buf, vnet []byte) (int, bool) {
	if wasTagged(status, hdr.Vlan_tci) {
		p.vlanTagged.Add(1)
		return 0, false
	}
	start, snap := int(hdr.Mac), int(hdr.Snaplen)
	if p.opts.VNetHdr && vnet == nil {
		// The kernel writes the virtio_net_hdr just before the frame.
		start -= VNetHdrLen
		snap += VNetHdrLen
	}
	if int(hdr.Snaplen) < int(hdr.Len) || start < 0 || start+snap > len(slot) || snap > len(buf) {
		p.truncated.Add(1)
		return 0, false
	}
	if vnet != nil {
		if start < VNetHdrLen || len(vnet) < VNetHdrLen {
			p.truncated.Add(1)
			return 0, false
		}
		copy(vnet, slot[start-VNetHdrLen:start])
	}
	size := copy(buf, slot[start:start+snap])
	if status&unix.TP_STATUS_CSUMNOTREADY != 0 {
		p.checksumPending.Add(1)
	}
	return size, true
}

// wasTagged reports whether the kernel removed a VLAN tag from the frame
// whose ring header holds status and tci. TP_STATUS_VLAN_VALID marks even
// a priority tag (TCI 0); kernels before it only set the TCI.
func wasTagged(status uint32, tci uint16) bool {
	return status&unix.TP_STATUS_VLAN_VALID != 0 || tci != 0
}
