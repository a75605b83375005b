// Package afpacket is the firewall units' packet I/O: batched reads and
// writes of whole Ethernet frames on one network interface through a Linux
// AF_PACKET socket.
// It must not import any other falab package: it moves frames and knows
// nothing of what they mean.
//
// A Port is bound to one interface (ETH_P_ALL), puts it in promiscuous mode
// for as long as the Port is open (a unit must receive frames sent to a
// virtual MAC the kernel does not own), and never reads back the frames it
// transmits itself (PACKET_IGNORE_OUTGOING). The socket is non-blocking and
// waits through the Go runtime poller, so a blocked ReadBatch costs no
// thread and Close unblocks it.
//
// Two receive paths exist, chosen by Options.RX:
//
//   - RXRing (the default): a TPACKET_V2 receive ring shared with the
//     kernel. The kernel copies each frame straight into the ring, without
//     queueing an skb on the socket, and ReadBatch drains every ready slot
//     without a system call; it only enters the kernel (epoll) when the ring
//     is empty. V2 rather than V3 because V3 hands over whole blocks, which
//     holds a lone frame back until a block timer fires (>= 1 ms): a
//     forwarding firewall cannot add that latency to every quiet flow.
//   - RXMmsg: recvmmsg(2), one system call per batch. Simpler, no shared
//     memory; kept as a fallback and as the yardstick in the benchmarks.
//
// Frames are sent with sendmmsg(2), one system call per batch. A TX ring
// would also cost one system call per batch (the send that kicks it), and
// PACKET_QDISC_BYPASS would hide the unit's transmissions from tcpdump in
// its namespace, so neither is used.
//
// Measured (BenchmarkForward, 64-byte UDP between two namespaces through a
// third, 2 shared vCPUs): the kernel's ip_forward 0.72-0.75 Mpps; a Port
// pair with the ring and batches of 32 0.71-0.74 Mpps; with recvmmsg
// 0.48-0.51 Mpps; batches of 1 cost about 40%. One ring round trip between
// two Ports takes about 3.6 µs (BenchmarkRoundTrip).
//
// The kernel removes the 802.1Q/802.1ad tag from received frames before
// AF_PACKET sees them (__netif_receive_skb_core untags, even on veth) and
// reports it separately (PACKET_AUXDATA, or the ring slot's header). A Port
// puts the tag back, so ReadBatch returns the frame as it was on the wire:
// a firewall that serves VLAN subinterfaces must see the tag.
//
// Options.VNetHdr turns on PACKET_VNET_HDR: every frame then starts with a
// struct virtio_net_hdr (VNetHdr), so GSO super-frames (up to 64 KiB) and
// frames whose checksum is still to be done travel whole, in both
// directions. It is off by default: the lab disables offloads on the units'
// interfaces, and the firewall does not yet read the header.
package afpacket

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by ReadBatch and WriteBatch once the Port is closed.
// It matches net.ErrClosed with errors.Is.
var ErrClosed = fmt.Errorf("afpacket: port closed: %w", net.ErrClosed)

// RXMode selects how a Port receives frames.
type RXMode int

const (
	// RXRing receives through a TPACKET_V2 ring mapped into the process.
	RXRing RXMode = iota
	// RXMmsg receives with recvmmsg(2).
	RXMmsg
)

// String returns the mode's name as used in benchmark names.
func (m RXMode) String() string {
	switch m {
	case RXRing:
		return "ring"
	case RXMmsg:
		return "mmsg"
	default:
		return fmt.Sprintf("RXMode(%d)", int(m))
	}
}

// Options tune a Port. The zero value is ready to use: each zero field takes
// the default named in its comment.
type Options struct {
	// RX selects the receive path (default RXRing).
	RX RXMode
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
	// RecvBuffer is the socket receive buffer in bytes (SO_RCVBUFFORCE),
	// the queue of the RXMmsg path. Default 4 MiB.
	RecvBuffer int
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
	if o.RecvBuffer == 0 {
		o.RecvBuffer = 4 << 20
	}
	if o.SendBuffer == 0 {
		o.SendBuffer = 4 << 20
	}
	switch {
	case o.RX != RXRing && o.RX != RXMmsg:
		return o, fmt.Errorf("afpacket: unknown RX mode %d", int(o.RX))
	case o.BatchSize < 1 || o.BatchSize > 1024:
		return o, fmt.Errorf("afpacket: BatchSize %d out of range 1..1024", o.BatchSize)
	case o.RingFrameSize < 256 || o.RingFrameSize > 1<<20 || o.RingFrameSize&(o.RingFrameSize-1) != 0:
		return o, fmt.Errorf("afpacket: RingFrameSize %d is not a power of two in 256..1MiB", o.RingFrameSize)
	case o.RingFrames < 1 || o.RingFrames > 1<<20:
		return o, fmt.Errorf("afpacket: RingFrames %d out of range 1..1Mi", o.RingFrames)
	case o.RecvBuffer < 0 || o.SendBuffer < 0:
		return o, fmt.Errorf("afpacket: negative socket buffer size (recv %d, send %d)", o.RecvBuffer, o.SendBuffer)
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
	// KernelDrops counts frames the kernel dropped because the ring or
	// the receive buffer was full (PACKET_STATISTICS tp_drops).
	KernelDrops uint64
	// Truncated counts frames dropped because they did not fit the
	// caller's buffer or the ring slot.
	Truncated uint64
	// VLANRestored counts frames whose VLAN tag the kernel had removed
	// and ReadBatch put back.
	VLANRestored uint64
	// ChecksumPending counts frames whose TCP/UDP checksum was not yet
	// filled in (TP_STATUS_CSUMNOTREADY): a sender in this machine with
	// checksum offload on. Forwarded as they are, they arrive with a
	// wrong checksum; the cure is offloads off on the sending interface.
	ChecksumPending uint64
}

// Port is one interface's AF_PACKET socket.
//
// Concurrency: ReadBatch, WriteBatch, Stats and Close may be called from
// different goroutines at once. Concurrent ReadBatch calls are serialized
// (they share the receive scratch space and ring cursor), as are concurrent
// WriteBatch calls; the intended use is one reader and one writer goroutine
// per Port. Close unblocks a pending ReadBatch, which then returns ErrClosed.
type Port struct {
	name   string
	index  int
	hwaddr net.HardwareAddr
	opts   Options

	file *os.File
	raw  syscall.RawConn

	closed    atomic.Bool
	closeOnce sync.Once

	rxMu sync.Mutex
	rx   receiver // guarded by rxMu

	txMu sync.Mutex
	tx   *sender // guarded by txMu

	statsMu     sync.Mutex
	kernelStats Stats // guarded by statsMu: PACKET_STATISTICS resets on read, so it is summed here

	rxFrames, rxBytes       atomic.Uint64
	txFrames, txBytes       atomic.Uint64
	txErrors                atomic.Uint64
	truncated, vlanRestored atomic.Uint64
	checksumPending         atomic.Uint64
}

// receiver is one receive path: the ring or recvmmsg.
type receiver interface {
	// read fills bufs (len(bufs) == len(sizes) >= 1) with ready frames,
	// waiting through raw until at least one is ready.
	read(p *Port, bufs [][]byte, sizes []int) (int, error)
	// close releases what the receiver holds, after the socket is closed
	// and no read is running.
	close() error
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
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("afpacket: interface %q: %w", ifname, err)
	}
	// Protocol 0 until bind: the socket receives nothing from other
	// interfaces while it is being set up.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("afpacket: socket for %q: %w", ifname, err)
	}
	p := &Port{name: ifname, index: ifi.Index, hwaddr: ifi.HardwareAddr, opts: opts}
	if err := p.setup(fd); err != nil {
		if p.rx != nil {
			p.rx.close()
		}
		unix.Close(fd)
		return nil, fmt.Errorf("afpacket: %q: %w", ifname, err)
	}
	// The fd is non-blocking, so os.NewFile registers it with the runtime
	// poller and File.Close wakes a goroutine waiting in RawConn.Read.
	p.file = os.NewFile(uintptr(fd), "afpacket:"+ifname)
	raw, err := p.file.SyscallConn()
	if err != nil {
		p.rx.close()
		p.file.Close()
		return nil, fmt.Errorf("afpacket: %q: %w", ifname, err)
	}
	p.raw = raw
	return p, nil
}

func (p *Port) setup(fd int) error {
	setInt := func(level, opt, val int, name string) error {
		if err := unix.SetsockoptInt(fd, level, opt, val); err != nil {
			return fmt.Errorf("setsockopt %s=%d: %w", name, val, err)
		}
		return nil
	}
	if err := setInt(unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING"); err != nil {
		return err
	}
	// The FORCE variants pass net.core.rmem_max; they need CAP_NET_ADMIN,
	// which opening a packet socket nearly always comes with.
	if err := setInt(unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, p.opts.RecvBuffer, "SO_RCVBUFFORCE"); err != nil {
		if err := setInt(unix.SOL_SOCKET, unix.SO_RCVBUF, p.opts.RecvBuffer, "SO_RCVBUF"); err != nil {
			return err
		}
	}
	if err := setInt(unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, p.opts.SendBuffer, "SO_SNDBUFFORCE"); err != nil {
		if err := setInt(unix.SOL_SOCKET, unix.SO_SNDBUF, p.opts.SendBuffer, "SO_SNDBUF"); err != nil {
			return err
		}
	}
	if p.opts.VNetHdr {
		// Before the ring: the kernel refuses it once a ring exists.
		if err := setInt(unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1, "PACKET_VNET_HDR"); err != nil {
			return err
		}
	}
	switch p.opts.RX {
	case RXRing:
		r, err := newRing(fd, p.opts)
		if err != nil {
			return err
		}
		p.rx = r
	case RXMmsg:
		if err := setInt(unix.SOL_PACKET, unix.PACKET_AUXDATA, 1, "PACKET_AUXDATA"); err != nil {
			return err
		}
		p.rx = newMmsgReceiver(p.opts.BatchSize)
	}
	p.tx = newSender(p.opts.BatchSize)
	// Promiscuous membership belongs to the socket: the kernel drops it
	// when the socket closes, even if the process dies.
	mreq := unix.PacketMreq{Ifindex: int32(p.index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fmt.Errorf("setsockopt PACKET_ADD_MEMBERSHIP promisc: %w", err)
	}
	proto := uint16(unix.ETH_P_ALL)
	if p.opts.Protocol != 0 {
		proto = p.opts.Protocol
	}
	sa := unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: p.index}
	if err := unix.Bind(fd, &sa); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Name returns the interface name the Port was opened on.
func (p *Port) Name() string { return p.name }

// HardwareAddr returns the interface's MAC address as it was at Open.
func (p *Port) HardwareAddr() net.HardwareAddr { return p.hwaddr }

// ReadBatch fills up to min(len(bufs), len(sizes), Options.BatchSize)
// frames: frame i is bufs[i][:sizes[i]]. It blocks until at least one frame
// is ready, the read deadline passes, or the Port is closed (ErrClosed).
// Frames longer than their buffer are dropped and counted in
// Stats.Truncated; a VLAN tag the kernel removed is put back, so a buffer
// needs 4 bytes more than the untagged frame.
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
	got, err := p.rx.read(p, bufs[:n], sizes[:n])
	if got > 0 {
		var total uint64
		for _, s := range sizes[:got] {
			total += uint64(s)
		}
		p.rxFrames.Add(uint64(got))
		p.rxBytes.Add(total)
	}
	return got, p.fixErr(err)
}

// WriteBatch sends every frame in frames and returns how many the kernel
// accepted. A frame the kernel refuses (too long, no buffer space) is
// skipped and counted in Stats.TXErrors; the rest are still sent, and the
// first such refusal is returned as the error. A full send buffer is waited
// out, not reported. After Close it returns ErrClosed.
func (p *Port) WriteBatch(frames [][]byte) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	p.txMu.Lock()
	defer p.txMu.Unlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	sent, err := p.tx.write(p, frames)
	return sent, p.fixErr(err)
}

// fixErr turns the poller's "use of closed file" into ErrClosed.
func (p *Port) fixErr(err error) error {
	if err == nil || errors.Is(err, ErrClosed) {
		return err
	}
	if p.closed.Load() {
		return ErrClosed
	}
	return err
}

// SetReadDeadline makes a pending and future ReadBatch return an error
// wrapping os.ErrDeadlineExceeded once t has passed; the zero time clears
// it. The firewall's reader uses it to wake for housekeeping.
func (p *Port) SetReadDeadline(t time.Time) error {
	return p.file.SetReadDeadline(t)
}

// Stats returns the Port's counters. The kernel's counters are fetched and
// summed on each call.
func (p *Port) Stats() (Stats, error) {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	var kerr error
	if !p.closed.Load() {
		kerr = p.pollKernelStats()
	}
	s := p.kernelStats
	s.RXFrames = p.rxFrames.Load()
	s.RXBytes = p.rxBytes.Load()
	s.TXFrames = p.txFrames.Load()
	s.TXBytes = p.txBytes.Load()
	s.TXErrors = p.txErrors.Load()
	s.Truncated = p.truncated.Load()
	s.VLANRestored = p.vlanRestored.Load()
	s.ChecksumPending = p.checksumPending.Load()
	return s, kerr
}

// pollKernelStats adds PACKET_STATISTICS, which the kernel zeroes on each
// read, to the running totals. Called with statsMu held.
func (p *Port) pollKernelStats() error {
	var ks *unix.TpacketStats
	var serr error
	err := p.raw.Control(func(fd uintptr) {
		ks, serr = unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("afpacket: %q: PACKET_STATISTICS: %w", p.name, p.fixErr(err))
	}
	p.kernelStats.KernelFrames += uint64(ks.Packets)
	p.kernelStats.KernelDrops += uint64(ks.Drops)
	return nil
}

// Close closes the socket, which takes the interface out of promiscuous
// mode, and unblocks a pending ReadBatch. Closing twice returns nil.
func (p *Port) Close() error {
	var err error
	p.closeOnce.Do(func() {
		// Last counters first: they live in the socket.
		p.statsMu.Lock()
		p.pollKernelStats()
		p.closed.Store(true)
		p.statsMu.Unlock()
		err = p.file.Close()
		// The reader has been woken by the close; once it has let go
		// of rxMu nothing touches the ring, and it can be unmapped.
		p.rxMu.Lock()
		if cerr := p.rx.close(); err == nil {
			err = cerr
		}
		p.rxMu.Unlock()
	})
	return err
}
