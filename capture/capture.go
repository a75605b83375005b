// Package capture records the frames crossing one interface of a lab node to
// a pcapng file, as `falab capture NODE IFACE` does:
// It must not import firewall, unit or lab: it records a link as any capture
// tool would.
//
//	falab capture fw-b outside | wireshark -k -i -
//
// The frames come from an afpacket.Tap (a TPACKET_V3 ring) opened inside
// the node's namespace (sockets keep the namespace they were born in, so
// only its creation runs there) and bound to the one interface, with no
// filter: every frame, both directions, marked inbound or outbound in each
// packet's epb_flags. Timestamps are the kernel's, in nanoseconds. VLAN tags
// the kernel moved out of the frame (VLAN receive offload) are put back, as
// libpcap does, so the file shows the wire.
//
// The pcapng writer ([Writer]) is our own and small: one section, one
// Ethernet interface, Enhanced Packet Blocks.
//
// This package's job is recording; the socket and its ring are afpacket's.
// It must not import the data plane (firewall) or the lab runtime.
package capture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/falab/falab/afpacket"
	"github.com/falab/falab/topo"
)

const (
	// DefaultSnapLen is the snap length when Options.SnapLen is 0: as
	// tcpdump's, enough for a whole GSO super-frame on a veth with
	// offloads on.
	DefaultSnapLen = afpacket.DefaultTapSnapLen
	// MaxSnapLen bounds Options.SnapLen, and so the ring's block size.
	MaxSnapLen = afpacket.MaxTapSnapLen

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
	tap        *afpacket.Tap

	packets, bytes, truncated atomic.Uint64

	started atomic.Bool
	closed  atomic.Bool

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
	err := topo.Do(ns, func() error {
		var err error
		c.tap, err = afpacket.OpenTap(ifname, afpacket.TapOptions{SnapLen: opts.SnapLen, Promisc: opts.Promisc})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("capture %s:%s: %w", ns, ifname, err)
	}
	c.scratch = make([]byte, vlanTagLen+opts.SnapLen)
	log.Debug("capture open", "namespace", ns, "interface", ifname, "snaplen", opts.SnapLen, "promisc", opts.Promisc)
	return c, nil
}

// errStop ends the read loop when the frame count is reached.
var errStop = errors.New("capture: count reached")

// Run writes the pcapng header to w, then every frame until ctx ends, the
// count is reached, the duration has passed or Close is called, and
// flushes. Those ends return a nil error; a failed write or read returns
// it, with the stats so far. Output is buffered and flushed whenever the
// ring has no frame waiting, so a live reader (wireshark -k -i -) sees each
// frame within the ring's block timeout (20 ms) on a quiet link.
func (c *Capture) Run(ctx context.Context, w io.Writer) (Stats, error) {
	switch {
	case c.closed.Load():
		return c.Stats(), errors.New("capture: Run after Close")
	case !c.started.CompareAndSwap(false, true):
		return c.Stats(), errors.New("capture: Run called twice")
	}
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
	stop := context.AfterFunc(ctx, func() { c.tap.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	err = c.loop(ctx, pw, bw)
	if errors.Is(err, errStop) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, afpacket.ErrClosed) {
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
func (c *Capture) loop(ctx context.Context, pw *Writer, bw *bufio.Writer) error {
	var werr error
	write := func(f afpacket.TapFrame) bool {
		if c.closed.Load() {
			werr = errStop
			return false
		}
		data, wireLen := c.frame(f)
		if werr = pw.WritePacket(f.Time, data, wireLen, direction(f)); werr != nil {
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
		got, err := c.tap.ReadBlock(write)
		switch {
		case err != nil:
			return err
		case werr != nil:
			return werr
		case ctx.Err() != nil:
			return errStop
		case got:
			continue
		}
		// Nothing to read: let the output catch up before parking.
		if bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("capture: flush: %w", err)
			}
		}
		if err := c.tap.Wait(); err != nil {
			return err
		}
	}
}

// frame is what the file records of f: the bytes kept, cut to the snap
// length, with an offloaded VLAN tag put back; and the wire length.
func (c *Capture) frame(f afpacket.TapFrame) (data []byte, wireLen int) {
	data, wireLen = f.Data, f.WireLen
	if f.VLAN {
		n := copy(c.scratch[vlanTagLen:], data)
		data, wireLen = insertVLAN(c.scratch[:vlanTagLen+n], f.VLANTPID, f.VLANTCI), wireLen+vlanTagLen
	}
	if len(data) > c.opts.SnapLen {
		data = data[:c.opts.SnapLen]
	}
	return data, wireLen
}

// Stats returns the counts so far, reading the kernel's drop counter.
func (c *Capture) Stats() Stats {
	// After Close the Tap keeps its last counts.
	ks, _ := c.tap.Stats()
	return Stats{
		Packets:   c.packets.Load(),
		Bytes:     c.bytes.Load(),
		Truncated: c.truncated.Load(),
		Drops:     ks.KernelDrops,
	}
}

// Close closes the socket, which also ends promiscuous mode if Open set it,
// and ends a running Run (after the block in hand, if it is writing one).
func (c *Capture) Close() error {
	c.closed.Store(true)
	if err := c.tap.Close(); err != nil {
		return fmt.Errorf("capture %s:%s: close: %w", c.ns, c.ifname, err)
	}
	return nil
}

// direction is the epb_flags direction of f.
func direction(f afpacket.TapFrame) Direction {
	if f.Outgoing {
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
