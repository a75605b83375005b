// Package capture records the frames crossing one interface of a lab node to
// a pcapng file, as `falab capture NODE IFACE` does:
// It must not import firewall, unit or lab: it records a link as any capture
// tool would.
//
//	falab capture fw-b outside | wireshark -k -i -
//
// The socket is an AF_PACKET socket created inside the node's namespace
// (sockets keep the namespace they were born in, so only its creation runs
// there) and bound to the one interface. It sees both directions: frames the
// interface receives and frames the node sends, marked inbound or outbound
// in each packet's epb_flags. Frames arrive through a TPACKET_V3 receive
// ring; timestamps are the kernel's, in nanoseconds. VLAN tags the kernel moved out of the frame (VLAN receive
// offload) are put back, as libpcap does, so the file shows the wire.
//
// The pcapng writer ([Writer]) is our own and small: one section, one
// Ethernet interface, Enhanced Packet Blocks.
package capture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/falab/falab/topo"
	"golang.org/x/sys/unix"
)

const (
	// DefaultSnapLen is the snap length when Options.SnapLen is 0: as
	// tcpdump's, enough for a whole GSO super-frame on a veth with
	// offloads on.
	DefaultSnapLen = 262144
	// MaxSnapLen bounds Options.SnapLen, and so the ring's block size.
	MaxSnapLen = 1 << 20

	// vlanTagLen is the 802.1Q tag put back between the MACs and the type.
	vlanTagLen = 4
	// flushBuffer is the write buffer between the ring and the output;
	// it is flushed whenever the ring has nothing more to read.
	flushBuffer = 64 << 10
)

// Options tunes a capture. The zero value captures every frame, whole,
// until the context ends.
type Options struct {
	// Count stops the capture after this many frames; 0 is no limit.
	Count int
	// Duration stops the capture this long after Run starts; 0 is no
	// limit.
	Duration time.Duration
	// SnapLen is the most bytes kept of each frame; 0 is DefaultSnapLen.
	SnapLen int
	// Promisc puts the interface in promiscuous mode while the capture is
	// open. Veths and bridge ports hand every frame to packet sockets
	// anyway; it matters on interfaces that filter by MAC.
	Promisc bool
	// Log receives the capture's start and end at debug level; nil
	// discards.
	Log *slog.Logger
}

// Stats counts what a capture saw.
type Stats struct {
	// Packets is the number of frames written.
	Packets uint64 `json:"packets"`
	// Bytes is the sum of the written frames' lengths on the wire.
	Bytes uint64 `json:"bytes"`
	// Truncated is the number of frames cut to the snap length.
	Truncated uint64 `json:"truncated"`
	// Drops is the number of frames the kernel dropped because the
	// receive ring was full (PACKET_STATISTICS): the writer fell behind.
	Drops uint64 `json:"drops"`
}

// Capture is an open packet socket on one interface of one namespace, with
// its receive ring.
//
// Run may be called once. Stats and Close may be called from any
// goroutine, during Run too; Close ends a running Run.
type Capture struct {
	ns, ifname string
	opts       Options
	log        *slog.Logger
	file       *os.File // the socket, in the runtime's poller
	raw        syscall.RawConn

	packets, bytes, truncated atomic.Uint64

	mu      sync.Mutex
	ring    *ring // guarded by mu; unmapped by Close, or by Run's end if Close came during Run
	started bool  // guarded by mu
	running bool  // guarded by mu
	closed  atomic.Bool
	drops   uint64 // guarded by mu; the kernel resets its counter on each read

	scratch []byte // owned by Run: a frame with its VLAN tag put back
}

// Run captures frames from interface ifname in namespace ns to w as pcapng
// until ctx ends, opts.Count frames have been written, or opts.Duration has
// passed; each of these is a normal end and returns a nil error. It is Open,
// then Capture.Run, then Close.
func Run(ctx context.Context, ns, ifname string, w io.Writer, opts Options) (Stats, error) {
	c, err := Open(ns, ifname, opts)
	if err != nil {
		return Stats{}, err
	}
	st, err := c.Run(ctx, w)
	if cerr := c.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return st, err
}

// Open creates the packet socket in namespace ns and binds it to ifname.
// Frames are queued from the moment Open returns, so a caller that opens,
// then makes traffic, then calls Run misses nothing (up to the ring's
// 8 MiB).
func Open(ns, ifname string, opts Options) (*Capture, error) {
	if err := topo.ValidateNamespaceName(ns); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	if err := topo.ValidateIfname(ifname); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	switch {
	case opts.Count < 0:
		return nil, fmt.Errorf("capture: count %d is negative", opts.Count)
	case opts.Duration < 0:
		return nil, fmt.Errorf("capture: duration %v is negative", opts.Duration)
	case opts.SnapLen < 0 || opts.SnapLen > MaxSnapLen:
		return nil, fmt.Errorf("capture: snap length %d is outside 0..%d", opts.SnapLen, MaxSnapLen)
	}
	if opts.SnapLen == 0 {
		opts.SnapLen = DefaultSnapLen
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Capture{ns: ns, ifname: ifname, opts: opts, log: log}

	var fd int
	err := topo.Do(ns, func() error {
		var err error
		fd, c.ring, err = openSocket(ifname, opts.SnapLen, opts.Promisc)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("capture %s:%s: %w", ns, ifname, err)
	}
	// The fd is non-blocking, so os.NewFile puts it in the runtime's
	// poller: reads park the goroutine, not a thread, and a read deadline
	// wakes them when the capture must stop.
	c.file = os.NewFile(uintptr(fd), "packet:"+ns+":"+ifname)
	if c.raw, err = c.file.SyscallConn(); err != nil {
		c.file.Close()
		c.ring.unmap()
		return nil, fmt.Errorf("capture %s:%s: %w", ns, ifname, err)
	}
	c.scratch = make([]byte, vlanTagLen+opts.SnapLen)
	log.Debug("capture open", "namespace", ns, "interface", ifname, "snaplen", opts.SnapLen, "promisc", opts.Promisc)
	return c, nil
}

// openSocket runs inside the namespace: it creates the socket with protocol
// 0, which receives nothing, sets up its ring, then binds it to the
// interface with ETH_P_ALL, so no frame of another interface is ever queued
// on it.
func openSocket(ifname string, snapLen int, promisc bool) (fd int, r *ring, err error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return -1, nil, fmt.Errorf("interface %q: %w", ifname, err)
	}
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("open packet socket: %w", err)
	}
	defer func() {
		if err != nil {
			r.unmap()
			unix.Close(fd)
		}
	}()
	if r, err = newRing(fd, snapLen); err != nil {
		return -1, nil, err
	}
	if promisc {
		mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return -1, nil, fmt.Errorf("promiscuous mode on %s: %w", ifname, err)
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}
	if err := unix.Bind(fd, sa); err != nil {
		return -1, nil, fmt.Errorf("bind packet socket to %s: %w", ifname, err)
	}
	return fd, r, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// errStop ends the read loop when the frame count is reached.
var errStop = errors.New("capture: count reached")

// Run writes the pcapng header to w, then every frame until ctx ends, the
// count is reached, the duration has passed or Close is called, and
// flushes. Those ends return a nil error; a failed write or read returns
// it, with the stats so far. Output is buffered and flushed whenever the
// ring has no frame waiting, so a live reader (wireshark -k -i -) sees each
// frame within the ring's block timeout (20 ms) on a quiet link.
func (c *Capture) Run(ctx context.Context, w io.Writer) (Stats, error) {
	c.mu.Lock()
	switch {
	case c.started:
		c.mu.Unlock()
		return c.Stats(), errors.New("capture: Run called twice")
	case c.closed.Load():
		c.mu.Unlock()
		return c.Stats(), errors.New("capture: Run after Close")
	}
	c.started, c.running = true, true
	r := c.ring
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.running = false
		if c.closed.Load() {
			c.ring.unmap()
		}
		c.mu.Unlock()
	}()
	bw := bufio.NewWriterSize(w, flushBuffer)
	pw, err := NewWriter(bw, Interface{Name: c.ifname, Comment: "namespace " + c.ns, SnapLen: uint32(c.opts.SnapLen)})
	if err != nil {
		return c.Stats(), err
	}
	// The header goes out at once, so a reader on a pipe knows the
	// link type before the first frame.
	if err := bw.Flush(); err != nil {
		return c.Stats(), fmt.Errorf("capture: write pcapng header: %w", err)
	}
	start := time.Now()
	if c.opts.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Duration)
		defer cancel()
	}
	// A deadline in the past wakes the parked read: that is how ctx stops
	// the loop without polling.
	stop := context.AfterFunc(ctx, func() { c.file.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	err = c.loop(ctx, r, pw, bw)
	if errors.Is(err, errStop) || errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil
	}
	if ferr := bw.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("capture: flush: %w", ferr)
	}
	st := c.Stats()
	c.log.Debug("capture done", "namespace", c.ns, "interface", c.ifname, "packets", st.Packets,
		"bytes", st.Bytes, "drops", st.Drops, "elapsed", time.Since(start).Round(time.Millisecond), "err", err)
	return st, err
}

// loop writes the frames of each block the kernel hands over, and parks
// on the socket when none is ready, until an error, errStop included.
// ctx wakes a parked loop through the read deadline; a loop kept busy by a
// flood sees it between blocks.
func (c *Capture) loop(ctx context.Context, r *ring, pw *Writer, bw *bufio.Writer) error {
	var werr error
	write := func(f ringFrame) bool {
		if c.closed.Load() {
			werr = errStop
			return false
		}
		data, wireLen := c.frame(f)
		if werr = pw.WritePacket(f.ts, data, wireLen, f.direction()); werr != nil {
			return false
		}
		c.bytes.Add(uint64(wireLen))
		if len(data) < wireLen {
			c.truncated.Add(1)
		}
		if p := c.packets.Add(1); c.opts.Count > 0 && p >= uint64(c.opts.Count) {
			werr = errStop
			return false
		}
		return true
	}
	for {
		for r.ready() {
			walkBlock(r.block(), write)
			r.release()
			if werr != nil {
				return werr
			}
			if ctx.Err() != nil {
				return errStop
			}
		}
		// Nothing to read: let the output catch up before parking.
		if bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("capture: flush: %w", err)
			}
		}
		err := c.raw.Read(func(uintptr) bool { return r.ready() })
		switch {
		case err != nil && c.closed.Load():
			// RawConn.Read on a closed file returns the poller's
			// unexported "use of closed file": Close is known by its
			// flag.
			return errStop
		case err != nil:
			return err
		}
	}
}

// frame is what the file records of f: the bytes kept, cut to the snap
// length, with an offloaded VLAN tag put back; and the wire length.
func (c *Capture) frame(f ringFrame) (data []byte, wireLen int) {
	data, wireLen = f.data, f.wireLen
	if f.vlanValid {
		n := copy(c.scratch[vlanTagLen:], data)
		data, wireLen = insertVLAN(c.scratch[:vlanTagLen+n], f.vlanTPID, f.vlanTCI), wireLen+vlanTagLen
	}
	if len(data) > c.opts.SnapLen {
		data = data[:c.opts.SnapLen]
	}
	return data, wireLen
}

// Stats returns the counts so far, reading the kernel's drop counter.
func (c *Capture) Stats() Stats {
	c.mu.Lock()
	c.raw.Control(func(fd uintptr) {
		if ks, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			c.drops += uint64(ks.Drops)
		}
	})
	drops := c.drops
	c.mu.Unlock()
	return Stats{
		Packets:   c.packets.Load(),
		Bytes:     c.bytes.Load(),
		Truncated: c.truncated.Load(),
		Drops:     drops,
	}
}

// Close closes the socket, which also ends promiscuous mode if Open set it,
// and ends a running Run. The ring is unmapped here, or by Run as it
// returns if it is running, so no frame is read from unmapped memory.
func (c *Capture) Close() error {
	c.mu.Lock()
	c.closed.Store(true)
	var err error
	if !c.running {
		err = c.ring.unmap()
	}
	c.mu.Unlock()
	if cerr := c.file.Close(); cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("capture %s:%s: close: %w", c.ns, c.ifname, err)
	}
	return nil
}

// direction is the epb_flags direction of f.
func (f ringFrame) direction() Direction {
	if f.outgoing {
		return DirOutbound
	}
	return DirInbound
}

// insertVLAN puts an 802.1Q tag back after the two MAC addresses. b is the
// frame with vlanTagLen bytes of headroom in front; the MACs move into the
// headroom and the tag takes their old place. A frame too short to hold two
// MACs is returned without its headroom, untouched.
func insertVLAN(b []byte, tpid, tci uint16) []byte {
	const macs = 12
	if len(b) < vlanTagLen+macs {
		return b[vlanTagLen:]
	}
	copy(b, b[vlanTagLen:vlanTagLen+macs])
	b[macs], b[macs+1] = byte(tpid>>8), byte(tpid)
	b[macs+2], b[macs+3] = byte(tci>>8), byte(tci)
	return b
}
