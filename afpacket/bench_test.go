package afpacket

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// benchFrameSize is the smallest Ethernet frame without FCS: packets per
// second is the figure that matters for a firewall, not bytes.
const benchFrameSize = 64

// BenchmarkReceive measures how many frames per second a Port reads from a
// veth pair while a sender goroutine on the other end writes as fast as it
// can, both with the given batch size. Figures: rx-pps (frames read per
// second) and drop-% (frames the kernel dropped at the reader).
func BenchmarkReceive(b *testing.B) {
	for _, batch := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			benchReceive(b, batch)
		})
	}
}

func benchReceive(b *testing.B, batch int) {
	ea, eb := newVethPair(b)
	pa := open(b, ea, Options{BatchSize: batch})
	pb := open(b, eb, Options{BatchSize: batch})
	frames := make([][]byte, batch)
	for i := range frames {
		frames[i] = testFrame(pb.HardwareAddr(), pa.HardwareAddr(), uint32(i), benchFrameSize)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			if _, err := pa.WriteBatch(frames); err != nil {
				return
			}
		}
	})
	defer func() { stop.Store(true); wg.Wait() }()

	bufs, sizes := makeBufs(batch, 2048), make([]int, batch)
	before, _ := pb.Stats()
	b.ResetTimer()
	start := time.Now()
	for got := 0; got < b.N; {
		n, err := pb.ReadBatch(bufs, sizes)
		if err != nil {
			b.Fatal(err)
		}
		got += n
	}
	elapsed := time.Since(start)
	b.StopTimer()
	after, _ := pb.Stats()
	frames64 := after.KernelFrames - before.KernelFrames
	drops := after.KernelDrops - before.KernelDrops
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rx-pps")
	if frames64 > 0 {
		b.ReportMetric(100*float64(drops)/float64(frames64), "drop-%")
	}
}

// BenchmarkForward compares forwarding 64-byte UDP/IPv4 packets between two
// namespaces by the Linux kernel (ip_forward) with the same job done by a
// Port pair in user space (read a batch, rewrite MACs, decrement TTL with an
// incremental checksum update, write the batch).
//
//	src ──veth── fwd ──veth── dst
//
// A sender in src writes as fast as it can; the figure is fwd-pps, the
// packets per second arriving at dst (its interface counter: dst has no
// address, so its kernel drops them without replying). With 2 CPUs the
// kernel path runs entirely in the sender's softirq, the user-space path on
// the sender's CPU plus the forwarder's; read the figures with that in mind.
func BenchmarkForward(b *testing.B) {
	b.Run("kernel", func(b *testing.B) { benchForward(b, nil) })
	for _, batch := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			benchForward(b, &Options{BatchSize: batch})
		})
	}
}

// Lab addresses for the forwarding bench, from 198.18.0.0/15.
var (
	benchSrcIP = netip.MustParseAddr("198.18.101.2")
	benchDstIP = netip.MustParseAddr("198.18.102.2")
)

func benchForward(b *testing.B, userspace *Options) {
	requireRoot(b)
	prefix := "falab-t-afp-" + randomSuffix(b)
	src := end{ns: newNS(b, prefix+"-src"), ifname: "src0"}
	fwdIn := end{ns: newNS(b, prefix+"-fwd"), ifname: "fwd-in"}
	fwdOut := end{ns: fwdIn.ns, ifname: "fwd-out"}
	dst := end{ns: newNS(b, prefix+"-dst"), ifname: "dst0"}
	link(b, src, fwdIn)
	link(b, fwdOut, dst)

	ps := open(b, src, Options{BatchSize: 32})
	dstMAC := linkAttrs(b, dst).HardwareAddr
	inMAC := linkAttrs(b, fwdIn).HardwareAddr
	outMAC := linkAttrs(b, fwdOut).HardwareAddr

	var wg sync.WaitGroup
	var in *Port
	if userspace == nil {
		setupKernelForwarding(b, fwdIn, fwdOut, dstMAC)
	} else {
		in = open(b, fwdIn, *userspace)
		out := open(b, fwdOut, Options{BatchSize: userspace.BatchSize})
		wg.Go(func() { forwardLoop(in, out, dstMAC, outMAC, userspace.BatchSize) })
	}

	frame := udpFrame(inMAC, ps.HardwareAddr(), benchSrcIP, benchDstIP)
	frames := make([][]byte, 32)
	for i := range frames {
		frames[i] = frame
	}
	var stop atomic.Bool
	wg.Go(func() {
		for !stop.Load() {
			if _, err := ps.WriteBatch(frames); err != nil {
				return
			}
		}
	})
	defer func() {
		stop.Store(true)
		if in != nil {
			in.Close() // ends forwardLoop
		}
		wg.Wait()
	}()

	startCount := linkAttrs(b, dst).Statistics.RxPackets
	b.ResetTimer()
	start := time.Now()
	var got uint64
	for got < uint64(b.N) {
		time.Sleep(2 * time.Millisecond) // a benchmark, not a test: polling the counter is fine
		got = linkAttrs(b, dst).Statistics.RxPackets - startCount
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(got)/elapsed.Seconds(), "fwd-pps")
}

// forwardLoop is a minimal user-space router: what the firewall's fast path
// does to a packet, without its tables.
func forwardLoop(in, out *Port, dstMAC, outMAC net.HardwareAddr, batch int) {
	bufs, sizes := makeBufs(batch, 2048), make([]int, batch)
	fwd := make([][]byte, 0, batch)
	for {
		n, err := in.ReadBatch(bufs, sizes)
		if err != nil {
			return
		}
		fwd = fwd[:0]
		for i := range n {
			f := bufs[i][:sizes[i]]
			if len(f) < 34 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[22] <= 1 {
				continue
			}
			copy(f[0:6], dstMAC)
			copy(f[6:12], outMAC)
			// TTL is the high byte of the 16-bit word at IP offset
			// 8: decrementing it adds 0x0100 to the checksum
			// (RFC 1624, with end-around carry).
			f[22]--
			sum := uint32(binary.BigEndian.Uint16(f[24:])) + 0x0100
			binary.BigEndian.PutUint16(f[24:], uint16(sum+sum>>16))
			fwd = append(fwd, f)
		}
		// A refused frame is dropped, as the firewall would.
		out.WriteBatch(fwd)
	}
}

// setupKernelForwarding gives fwd addresses on both links, turns on IPv4
// forwarding and pins dst's MAC, so the kernel forwards without ARP.
func setupKernelForwarding(tb testing.TB, in, out end, dstMAC net.HardwareAddr) {
	tb.Helper()
	h, err := netlink.NewHandleAt(in.ns)
	if err != nil {
		tb.Fatal(err)
	}
	defer h.Close()
	for _, x := range []struct {
		ifname, addr string
	}{{in.ifname, "198.18.101.1/24"}, {out.ifname, "198.18.102.1/24"}} {
		l, err := h.LinkByName(x.ifname)
		if err != nil {
			tb.Fatal(err)
		}
		a, _ := netlink.ParseAddr(x.addr)
		if err := h.AddrAdd(l, a); err != nil {
			tb.Fatalf("add %s to %s: %v", x.addr, x.ifname, err)
		}
	}
	outLink, err := h.LinkByName(out.ifname)
	if err != nil {
		tb.Fatal(err)
	}
	neigh := &netlink.Neigh{
		LinkIndex:    outLink.Attrs().Index,
		State:        netlink.NUD_PERMANENT,
		IP:           net.IP(benchDstIP.AsSlice()),
		HardwareAddr: dstMAC,
	}
	if err := h.NeighAdd(neigh); err != nil {
		tb.Fatalf("add neighbour: %v", err)
	}
	err = inNS(in.ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0)
	})
	if err != nil {
		tb.Fatalf("enable forwarding: %v", err)
	}
}

// linkAttrs returns the current attributes (address, counters) of e.
func linkAttrs(tb testing.TB, e end) *netlink.LinkAttrs {
	tb.Helper()
	h, err := netlink.NewHandleAt(e.ns)
	if err != nil {
		tb.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(e.ifname)
	if err != nil {
		tb.Fatal(err)
	}
	return l.Attrs()
}

// udpFrame builds a 64-byte Ethernet/IPv4/UDP frame with a valid IPv4
// header checksum (UDP checksum 0: none).
func udpFrame(dstMAC, srcMAC net.HardwareAddr, srcIP, dstIP netip.Addr) []byte {
	f := make([]byte, benchFrameSize)
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(f)-14))
	ip[8] = 64 // TTL
	ip[9] = 17 // UDP
	s, d := srcIP.As4(), dstIP.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := f[34:]
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], 9) // discard
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	return f
}

// BenchmarkRoundTrip measures latency: one frame from a to b, b sends it
// back, a reads it; one round trip per op (figure: rtt-µs). It is the
// reason for a per-frame ring (TPACKET_V2): a block ring (V3) would add its
// block timeout to every quiet flow.
func BenchmarkRoundTrip(b *testing.B) {
	ea, eb := newVethPair(b)
	pa := open(b, ea, Options{})
	pb := open(b, eb, Options{})
	ping := [][]byte{testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 1, benchFrameSize)}
	var wg sync.WaitGroup
	wg.Go(func() {
		bufs, sizes := makeBufs(8, 2048), make([]int, 8)
		out := make([][]byte, 0, 8)
		for {
			n, err := pb.ReadBatch(bufs, sizes)
			if err != nil {
				return
			}
			out = out[:0]
			for i := range n {
				f := bufs[i][:sizes[i]]
				if isTestFrame(f) {
					copy(f[0:6], pa.HardwareAddr())
					copy(f[6:12], pb.HardwareAddr())
					out = append(out, f)
				}
			}
			pb.WriteBatch(out)
		}
	})
	defer func() { pb.Close(); wg.Wait() }()
	bufs, sizes := makeBufs(8, 2048), make([]int, 8)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := pa.WriteBatch(ping); err != nil {
			b.Fatal(err)
		}
		for got := false; !got; {
			n, err := pa.ReadBatch(bufs, sizes)
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				got = got || isTestFrame(bufs[i][:sizes[i]])
			}
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "rtt-µs")
}
