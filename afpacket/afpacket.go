// Package afpacket is falab's one AF_PACKET layer: whole Ethernet frames on
// one network interface through a Linux packet socket with a receive ring
// mapped into the process. A Port is the firewall units' packet I/O
// (batched reads and writes); a Tap only watches, for packet capture. Both
// share one implementation of the socket, its ring, its waits and its
// counters (socket.go). It must not import the data plane, the lab or
// topo: it works in the namespace of the calling thread.
//
// A Port is bound to one interface (ETH_P_ALL), puts it in promiscuous mode
// for as long as the Port is open (a unit must receive frames sent to a
// virtual MAC the kernel does not own), and never reads back the frames it
// transmits itself (PACKET_IGNORE_OUTGOING). The socket is non-blocking and
// waits through the Go runtime poller, so a blocked ReadBatch costs no
// thread and Close unblocks it.
//
// Frames arrive through a TPACKET_V2 receive ring shared with the kernel.
// The kernel copies each frame straight into the ring, without queueing an
// skb on the socket, and ReadBatch drains every ready slot without a system
// call; it only enters the kernel (epoll) when the ring is empty. V2 rather
// than V3 because V3 hands over whole blocks, which holds a lone frame back
// until a block timer fires (>= 1 ms): a forwarding firewall cannot add that
// latency to every quiet flow. A Tap, which only watches, takes V3's blocks
// and the kernel's timestamps (see tap.go).
//
// Frames are sent with sendmmsg(2), one system call per batch. A TX ring
// would also cost one system call per batch (the send that kicks it), and
// PACKET_QDISC_BYPASS would hide the unit's transmissions from tcpdump in
// its namespace, so neither is used.
//
// Measured (BenchmarkForward, 64-byte UDP between two namespaces through a
// third, 2 shared vCPUs): the kernel's ip_forward 0.72-0.75 Mpps; a Port
// pair with the ring and batches of 32 0.71-0.74 Mpps (recvmmsg, since
// removed, managed 0.48-0.51); batches of 1 cost about 40%. One ring round trip between
// two Ports takes about 3.6 µs (BenchmarkRoundTrip).
//
// The firewall serves no VLAN subinterfaces, so a Port drops every frame
// that arrived with an 802.1Q/802.1ad tag and counts it (Stats.VLANTagged).
// The kernel removes the tag before AF_PACKET sees the frame
// (__netif_receive_skb_core untags, even on veth) and reports it only in
// the ring slot's header: handed on as it is, a frame of another VLAN would
// cross into the untagged network.
//
// Options.VNetHdr turns on PACKET_VNET_HDR: every frame then starts with a
// struct virtio_net_hdr (VNetHdr), so GSO super-frames (up to 64 KiB) and
// frames whose checksum is still to be done travel whole, in both
// directions. It is off by default; a lab with offloads on opens the units'
// data interfaces with it (ReadBatchVNet and WriteBatchVNet keep the header
// apart from the frame, for the firewall's OffloadPort; ReadInPlace lends
// the ring's slots without copying, until Release). The TPACKET_V2
// ring takes the header too: tpacket_rcv writes it just before the frame.
package afpacket

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by ReadBatch and WriteBatch once the Port is closed.
// It matches net.ErrClosed with errors.Is.
var ErrClosed = fmt.Errorf("afpacket: port closed: %w", net.ErrClosed)

// Options tune a Port. The zero value is ready to use: each zero field takes
// the default named in its comment.
type Options struct {
	// BatchSize is the most frames one ReadBatch or WriteBatch system
	// call handles; longer batches are split (WriteBatch) or capped
	// (ReadBatch). Default 64.
	BatchSize int
	// RingFrameSize is the size of one RX ring slot in bytes, a power of
	// two >= 256. A slot holds 66 bytes of header (76 with VNetHdr), then
	// the frame; longer frames are dropped and counted in
	// Stats.Truncated. Default 2048 (frames up to 1982 bytes: a 1500-byte
	// MTU plus tags).
	RingFrameSize int
	// RingFrames is the number of RX ring slots: how many frames the
	// kernel can queue while the reader is busy. Rounded up to fill whole
	// ring blocks. Default 4096.
	RingFrames int
	// SendBuffer is the socket send buffer in bytes (SO_SNDBUFFORCE).
	// Default 4 MiB.
	SendBuffer int
	// VNetHdr prefixes every frame, read and written, with a
	// VNetHdrLen-byte virtio_net_hdr (PACKET_VNET_HDR). GSO frames are
	// then as long as 64 KiB plus the header: size the buffers and
	// RingFrameSize (131072) for that, and RingFrames down with it.
	VNetHdr bool
	// Protocol, when not zero, is the one EtherType the Port receives
	// (the socket is bound to it instead of ETH_P_ALL). The kernel then
	// queues those frames on this socket apart from any other socket on
	// the interface: a unit's failover control frames get their own queue
	// and reader, so a saturated data ring cannot delay or drop them.
	Protocol uint16
	// Exclude lists EtherTypes the Port never receives: a socket filter
	// drops them in the kernel, before they take a ring slot or wake the
	// reader. A unit's data socket excludes what its control and ARP
	// sockets (Protocol) receive, so a flood of those frames is copied
	// and read once, not twice. At most 16.
	Exclude []uint16
}

func (o Options) withDefaults() (Options, error) {
	if o.BatchSize == 0 {
		o.BatchSize = 64
	}
	if o.RingFrameSize == 0 {
		o.RingFrameSize = 2048
	}
	if o.RingFrames == 0 {
		o.RingFrames = 4096
	}
	if o.SendBuffer == 0 {
		o.SendBuffer = 4 << 20
	}
	switch {
	case o.BatchSize < 1 || o.BatchSize > 1024:
		return o, fmt.Errorf("afpacket: BatchSize %d out of range 1..1024", o.BatchSize)
	case o.RingFrameSize < 256 || o.RingFrameSize > 1<<20 || o.RingFrameSize&(o.RingFrameSize-1) != 0:
		return o, fmt.Errorf("afpacket: RingFrameSize %d is not a power of two in 256..1MiB", o.RingFrameSize)
	case o.RingFrames < 1 || o.RingFrames > 1<<20:
		return o, fmt.Errorf("afpacket: RingFrames %d out of range 1..1Mi", o.RingFrames)
	case o.SendBuffer < 0:
		return o, fmt.Errorf("afpacket: negative send buffer size %d", o.SendBuffer)
	case len(o.Exclude) > maxExclude:
		return o, fmt.Errorf("afpacket: %d EtherTypes to exclude, at most %d", len(o.Exclude), maxExclude)
	}
	return o, nil
}

// Stats are a Port's counters since Open.
type Stats struct {
	// RXFrames and RXBytes count the frames ReadBatch returned.
	RXFrames, RXBytes uint64
	// TXFrames and TXBytes count the frames the kernel accepted from
	// WriteBatch.
	TXFrames, TXBytes uint64
	// TXErrors counts frames the kernel refused (too long, no buffer
	// space, interface down); WriteBatch skipped them.
	TXErrors uint64
	// KernelFrames counts frames the kernel handed to the socket,
	// including those it then dropped (PACKET_STATISTICS tp_packets).
	KernelFrames uint64
	// KernelDrops counts frames the kernel dropped because the ring was
	// full (PACKET_STATISTICS tp_drops).
	KernelDrops uint64
	// Truncated counts frames dropped because they did not fit the
	// caller's buffer or the ring slot.
	Truncated uint64
	// VLANTagged counts frames dropped because they arrived with a VLAN
	// tag (which the kernel had removed): the firewall has no VLAN
	// subinterfaces.
	VLANTagged uint64
	// ChecksumPending counts frames whose TCP/UDP checksum was not yet
	// filled in (TP_STATUS_CSUMNOTREADY): a sender in this machine with
	// checksum offload on. Forwarded as they are without VNetHdr, they
	// arrive with a wrong checksum (the cure is offloads off on the
	// sending interface); with VNetHdr their header says NEEDS_CSUM.
	ChecksumPending uint64
}

// Port is one interface's AF_PACKET socket for forwarding.
//
// Concurrency: ReadBatch, WriteBatch, Stats and Close may be called from
// different goroutines at once. Concurrent ReadBatch calls are serialized
// (they share the ring cursor), as are concurrent WriteBatch calls; the
// intended use is one reader and one writer goroutine per Port. Close
// unblocks a pending ReadBatch, which then returns ErrClosed.
type Port struct {
	*socket
	opts Options

	rx *ring // guarded by socket.rxMu

	txMu sync.Mutex
	tx   *sender // guarded by txMu

	rxFrames, rxBytes     atomic.Uint64
	txFrames, txBytes     atomic.Uint64
	txErrors              atomic.Uint64
	truncated, vlanTagged atomic.Uint64
	checksumPending       atomic.Uint64
}

// Open opens a Port on the interface named ifname in the network namespace
// of the calling thread. A caller working in another namespace must lock its
// OS thread, enter the namespace, call Open, and return before unlocking;
// the socket stays bound to the namespace it was created in.
func Open(ifname string, opts Options) (*Port, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s, err := openSocket(ifname, socketSpec{
		version:  unix.TPACKET_V2,
		ring:     v2Geometry(opts),
		protocol: opts.Protocol,
		// A unit must receive frames sent to a virtual MAC the kernel
		// does not own.
		promisc: true,
		options: opts.socketOptions,
	})
	if err != nil {
		return nil, err
	}
	p := &Port{socket: s, opts: opts, tx: newSender(opts.BatchSize)}
	p.rx = newRing(s.ring, opts.RingFrameSize)
	return p, nil
}

// socketOptions sets what must precede a Port's ring.
func (o Options) socketOptions(fd int) error {
	setInt := func(level, opt, val int, name string) error {
		if err := unix.SetsockoptInt(fd, level, opt, val); err != nil {
			return fmt.Errorf("setsockopt %s=%d: %w", name, val, err)
		}
		return nil
	}
	if err := setInt(unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING"); err != nil {
		return err
	}
	// The FORCE variant passes net.core.wmem_max; it needs CAP_NET_ADMIN,
	// which opening a packet socket nearly always comes with.
	if err := setInt(unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, o.SendBuffer, "SO_SNDBUFFORCE"); err != nil {
		if err := setInt(unix.SOL_SOCKET, unix.SO_SNDBUF, o.SendBuffer, "SO_SNDBUF"); err != nil {
			return err
		}
	}
	if len(o.Exclude) > 0 {
		// Before bind, so that no frame arrives unfiltered.
		if err := attachExcludeFilter(fd, o.Exclude); err != nil {
			return err
		}
	}
	if o.VNetHdr {
		// The kernel refuses it once a ring exists.
		if err := setInt(unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1, "PACKET_VNET_HDR"); err != nil {
			return err
		}
	}
	return nil
}

// ReadBatch fills up to min(len(bufs), len(sizes), Options.BatchSize)
// frames: frame i is bufs[i][:sizes[i]]. It blocks until at least one frame
// is ready, the read deadline passes, or the Port is closed (ErrClosed).
// Frames longer than their buffer are dropped and counted in
// Stats.Truncated, frames that came tagged in Stats.VLANTagged.
func (p *Port) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	n := min(len(bufs), len(sizes), p.opts.BatchSize)
	if n == 0 {
		return 0, nil
	}
	p.rxMu.Lock()
	defer p.rxMu.Unlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	return p.read(bufs[:n], sizes[:n], nil)
}

// ReadBatchVNet is ReadBatch for a Port opened with Options.VNetHdr, with
// each frame's virtio_net_hdr apart: frame i is bufs[i][:sizes[i]] and its
// header is copied into hdrs[i], which must hold VNetHdrLen bytes. A
// forwarder then reads frames and headers into buffers of its own layout.
func (p *Port) ReadBatchVNet(bufs [][]byte, sizes []int, hdrs [][]byte) (int, error) {
	if !p.opts.VNetHdr {
		return 0, errNoVNetHdr
	}
	n := min(len(bufs), len(sizes), len(hdrs), p.opts.BatchSize)
	if n == 0 {
		return 0, nil
	}
	p.rxMu.Lock()
	defer p.rxMu.Unlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	return p.read(bufs[:n], sizes[:n], hdrs[:n])
}

// ReadInPlace is ReadBatchVNet without the copy, for a forwarder that is
// done with each batch before it reads the next: frames[i] and hdrs[i]
// are the receive ring's own memory (writable; frames[i] may grow up to
// its capacity, the end of its slot). They stay valid, and their slots
// withheld from the kernel, until Release, which the caller must call
// after each successful ReadInPlace and before the next; until then the
// Port's reading is locked (Close waits for it). Saves copying every
// frame once (16% of a unit's CPU forwarding 64 KiB super-frames).
func (p *Port) ReadInPlace(frames, hdrs [][]byte) (int, error) {
	if !p.opts.VNetHdr {
		return 0, errNoVNetHdr
	}
	n := min(len(frames), len(hdrs), p.opts.BatchSize)
	if n == 0 {
		return 0, nil
	}
	p.rxMu.Lock()
	if p.closed.Load() {
		p.rxMu.Unlock()
		return 0, ErrClosed
	}
	for {
		if got := p.rx.drainInPlace(p, frames[:n], hdrs[:n]); got > 0 {
			var total uint64
			for _, f := range frames[:got] {
				total += uint64(len(f))
			}
			p.rxFrames.Add(uint64(got))
			p.rxBytes.Add(total)
			return got, nil // rxMu stays locked until Release
		}
		p.rx.release() // slots of dropped frames only
		if err := p.wait(p.rx.readyFn); err != nil {
			p.rxMu.Unlock()
			return 0, err
		}
	}
}

// Release gives back the slots of the frames the last ReadInPlace
// returned, which must no longer be used, and unlocks reading.
func (p *Port) Release() {
	p.rx.release()
	p.rxMu.Unlock()
}

var errNoVNetHdr = fmt.Errorf("afpacket: port opened without Options.VNetHdr")

// VNetHdr reports whether the Port was opened with Options.VNetHdr.
func (p *Port) VNetHdr() bool { return p.opts.VNetHdr }

// read drains the ring and counts; called with rxMu held.
func (p *Port) read(bufs [][]byte, sizes []int, hdrs [][]byte) (int, error) {
	got, err := p.rx.read(p, bufs, sizes, hdrs)
	if got > 0 {
		var total uint64
		for _, s := range sizes[:got] {
			total += uint64(s)
		}
		p.rxFrames.Add(uint64(got))
		p.rxBytes.Add(total)
	}
	return got, err
}

// WriteBatch sends every frame in frames and returns how many the kernel
// accepted. A frame the kernel refuses (too long, no buffer space) is
// skipped and counted in Stats.TXErrors; the rest are still sent, and the
// first such refusal is returned as the error. A full send buffer is waited
// out, not reported. After Close it returns ErrClosed.
func (p *Port) WriteBatch(frames [][]byte) (int, error) { return p.writeBatch(frames, nil) }

// WriteBatchVNet is WriteBatch for a Port opened with Options.VNetHdr, with
// each frame's virtio_net_hdr apart: hdrs[i] (VNetHdrLen bytes) goes in
// front of frames[i], in the same message (a second iovec), so neither is
// copied. A header with GSO set hands the kernel a super-frame to cut into
// segments (or to pass whole to a peer that takes it).
func (p *Port) WriteBatchVNet(frames, hdrs [][]byte) (int, error) {
	if !p.opts.VNetHdr {
		return 0, errNoVNetHdr
	}
	if len(hdrs) < len(frames) {
		return 0, fmt.Errorf("afpacket: %d headers for %d frames", len(hdrs), len(frames))
	}
	return p.writeBatch(frames, hdrs)
}

// writeBatch sends frames, each behind hdrs[i] when hdrs is not nil.
func (p *Port) writeBatch(frames, hdrs [][]byte) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	p.txMu.Lock()
	defer p.txMu.Unlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	sent, err := p.tx.write(p, frames, hdrs)
	return sent, p.fixErr(err)
}

// Stats returns the Port's counters. The kernel's counters are fetched and
// summed on each call.
func (p *Port) Stats() (Stats, error) {
	var s Stats
	var err error
	s.KernelFrames, s.KernelDrops, err = p.kernelStats()
	s.RXFrames = p.rxFrames.Load()
	s.RXBytes = p.rxBytes.Load()
	s.TXFrames = p.txFrames.Load()
	s.TXBytes = p.txBytes.Load()
	s.TXErrors = p.txErrors.Load()
	s.Truncated = p.truncated.Load()
	s.VLANTagged = p.vlanTagged.Load()
	s.ChecksumPending = p.checksumPending.Load()
	return s, err
}

// Close closes the socket, which takes the interface out of promiscuous
// mode, and unblocks a pending ReadBatch. Closing twice returns nil.
func (p *Port) Close() error { return p.close() }
