package capture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/falab/falab/afpacket"
)

// Multi-interface pcapng: one section, one Interface Description Block per
// captured interface (numbered from 0 in order), and Enhanced Packet Blocks
// naming theirs, so one file holds a link as both firewall units saw it.

// NewMultiWriter writes the section header and one interface block per
// iface to w; packets go with WritePacketOn.
func NewMultiWriter(w io.Writer, ifaces ...Interface) (*Writer, error) {
	if len(ifaces) == 0 {
		return nil, errors.New("capture: no interface")
	}
	pw := &Writer{w: w}
	b := appendSHB(nil, "falab")
	for _, ifc := range ifaces {
		b = appendIDB(b, ifc)
		pw.snapLen = max(pw.snapLen, ifc.SnapLen)
	}
	pw.ifaces = uint32(len(ifaces))
	if _, err := w.Write(b); err != nil {
		return nil, fmt.Errorf("capture: write pcapng header: %w", err)
	}
	return pw, nil
}

// WritePacketOn writes one frame captured on interface iface (its index in
// NewMultiWriter's list) with an optional comment (opt_comment), which
// Wireshark shows on the packet (pkt_comment).
func (pw *Writer) WritePacketOn(iface uint32, ts time.Time, data []byte, origLen int, dir Direction, comment string) error {
	if iface >= max(pw.ifaces, 1) {
		return fmt.Errorf("capture: interface %d of %d", iface, max(pw.ifaces, 1))
	}
	if origLen < len(data) {
		return fmt.Errorf("capture: original length %d is shorter than the %d bytes captured", origLen, len(data))
	}
	if (pw.snapLen != 0 && len(data) > int(pw.snapLen)) || len(data) > maxBlockData || origLen > 1<<32-1 {
		return fmt.Errorf("%w: %d bytes captured (snap length %d)", ErrPacketTooLong, len(data), pw.snapLen)
	}
	pw.buf = appendEPBOn(pw.buf[:0], iface, ts, data, uint32(origLen), dir, comment)
	if _, err := pw.w.Write(pw.buf); err != nil {
		return fmt.Errorf("capture: write packet: %w", err)
	}
	return nil
}

// appendEPBOn appends an Enhanced Packet Block on interface iface with
// its direction and comment options.
func appendEPBOn(b []byte, iface uint32, ts time.Time, data []byte, origLen uint32, dir Direction, comment string) []byte {
	b, start := beginBlock(b, blockEPB)
	ns := uint64(ts.UnixNano())
	b = le.AppendUint32(b, iface)
	b = le.AppendUint32(b, uint32(ns>>32))
	b = le.AppendUint32(b, uint32(ns))
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, origLen)
	b = append(b, data...)
	for range pad4(len(data)) - len(data) {
		b = append(b, 0)
	}
	if dir != DirUnknown || comment != "" {
		b = appendStringOption(b, optComment, comment)
		if dir != DirUnknown {
			b = appendOption(b, optEpbFlags, le.AppendUint32(nil, uint32(dir)))
		}
		b = appendOption(b, optEndOfOpt, nil)
	}
	return endBlock(b, start)
}

// Source is one interface a Follow captures: Name labels it in the file
// (e.g. "fw-a:outside").
type Source struct {
	Name, NS, Iface string
}

// Follower captures several interfaces into one pcapng, e.g. the same link
// on both firewall units, so a takeover (the GARP from the new active, the
// traffic moving from one unit to the other) reads in one file. Annotate
// puts a comment on the next packet of an interface.
type Follower struct {
	caps    []*Capture
	names   []string
	mu      sync.Mutex // guards pw, bw, pending
	pw      *Writer
	bw      *bufio.Writer
	pending []string // a comment for each interface's next packet
}

// OpenFollow opens a capture on each source (frames queue from then on).
func OpenFollow(srcs []Source, opts Options) (*Follower, error) {
	if len(srcs) == 0 {
		return nil, errors.New("capture: follow: no source")
	}
	f := &Follower{pending: make([]string, len(srcs))}
	for _, s := range srcs {
		c, err := Open(s.NS, s.Iface, opts)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.caps, f.names = append(f.caps, c), append(f.names, s.Name)
	}
	return f, nil
}

// Annotate sets a comment for the next packet captured on interface i (a
// second one before that packet joins the first).
func (f *Follower) Annotate(i int, comment string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i < 0 || i >= len(f.pending) {
		return
	}
	if f.pending[i] != "" {
		comment = f.pending[i] + "; " + comment
	}
	f.pending[i] = comment
}

// Run writes every source's frames to w as one pcapng until ctx ends, the
// count or the duration is reached, or Close; it returns each source's
// stats in order.
func (f *Follower) Run(ctx context.Context, w io.Writer) ([]Stats, error) {
	opts := f.caps[0].opts
	ifaces := make([]Interface, len(f.caps))
	for i, c := range f.caps {
		ifaces[i] = Interface{Name: f.names[i], Comment: "namespace " + c.ns + ", interface " + c.ifname, SnapLen: uint32(opts.SnapLen)}
	}
	f.bw = bufio.NewWriterSize(w, flushBuffer)
	var err error
	if f.pw, err = NewMultiWriter(f.bw, ifaces...); err != nil {
		return nil, err
	}
	if err := f.bw.Flush(); err != nil {
		return nil, fmt.Errorf("capture: write pcapng header: %w", err)
	}
	if opts.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Duration)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(f.caps))
	var wg sync.WaitGroup
	for i, c := range f.caps {
		c.started.Store(true)
		stop := context.AfterFunc(ctx, func() { c.tap.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
		wg.Go(func() {
			errs[i] = f.loop(ctx, i, c)
			cancel() // the count reached on one, or an error, ends all
		})
	}
	wg.Wait()
	f.mu.Lock()
	ferr := f.bw.Flush()
	f.mu.Unlock()
	stats := make([]Stats, len(f.caps))
	for i, c := range f.caps {
		stats[i] = c.Stats()
	}
	for _, e := range errs {
		if e != nil && !errors.Is(e, errStop) && !errors.Is(e, os.ErrDeadlineExceeded) && !errors.Is(e, afpacket.ErrClosed) {
			return stats, e
		}
	}
	if ferr != nil {
		return stats, fmt.Errorf("capture: flush: %w", ferr)
	}
	return stats, nil
}

// loop is Capture.loop for one source of a Follower: the frames go to the
// shared writer under its lock, with the interface's pending comment.
func (f *Follower) loop(ctx context.Context, i int, c *Capture) error {
	var werr error
	total := func() (n uint64) {
		for _, c := range f.caps {
			n += c.packets.Load()
		}
		return n
	}
	write := func(fr afpacket.TapFrame) bool {
		if c.closed.Load() {
			werr = errStop
			return false
		}
		data, wireLen := c.frame(fr)
		f.mu.Lock()
		werr = f.pw.WritePacketOn(uint32(i), fr.Time, data, wireLen, direction(fr), f.pending[i])
		f.pending[i] = ""
		f.mu.Unlock()
		if werr != nil {
			return false
		}
		c.bytes.Add(uint64(wireLen))
		if len(data) < wireLen {
			c.truncated.Add(1)
		}
		c.packets.Add(1)
		if c.opts.Count > 0 && total() >= uint64(c.opts.Count) {
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
		f.mu.Lock()
		err = f.bw.Flush()
		f.mu.Unlock()
		if err != nil {
			return fmt.Errorf("capture: flush: %w", err)
		}
		if err := c.tap.Wait(); err != nil {
			return err
		}
	}
}

// Close closes every source.
func (f *Follower) Close() error {
	var first error
	for _, c := range f.caps {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
