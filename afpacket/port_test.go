package afpacket

import (
	"errors"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Port must satisfy the firewall's packet I/O interface.
var _ interface {
	ReadBatch(bufs [][]byte, sizes []int) (int, error)
	WriteBatch(frames [][]byte) (int, error)
	Close() error
} = (*Port)(nil)

// foreignMAC is a unicast, locally administered MAC no test interface
// owns: the kind of virtual MAC a standby unit takes over.
var foreignMAC = net.HardwareAddr{0x02, 0x00, 0xfa, 0x1a, 0xb0, 0x01}

func TestFramesArriveWhole(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, b := newVethPair(t)
	pa := open(t, a, Options{})
	pb := open(t, b, Options{})
	var want [][]byte
	for i, size := range []int{18, 60, 61, 128, 999, 1514} {
		want = append(want, testFrame(pb.HardwareAddr(), pa.HardwareAddr(), uint32(i), size))
	}
	n, err := pa.WriteBatch(want)
	if err != nil || n != len(want) {
		t.Fatalf("WriteBatch = %d, %v; want %d, nil", n, err, len(want))
	}
	got, _ := readTestFrames(t, pb, len(want), 8, 2048)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("frames received (-sent +received):\n%s", diff)
	}
	st, err := pb.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.RXFrames < uint64(len(want)) || st.KernelFrames < uint64(len(want)) {
		t.Errorf("receiver stats %+v: want RXFrames and KernelFrames >= %d", st, len(want))
	}
	if st, _ := pa.Stats(); st.TXFrames != uint64(len(want)) || st.TXErrors != 0 {
		t.Errorf("sender stats %+v: want TXFrames %d, TXErrors 0", st, len(want))
	}
}

func TestReadBatchReturnsSeveralFrames(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, b := newVethPair(t)
	pa := open(t, a, Options{})
	pb := open(t, b, Options{})
	const count = 64
	frames := make([][]byte, count)
	for i := range frames {
		frames[i] = testFrame(pb.HardwareAddr(), pa.HardwareAddr(), uint32(i), 100)
	}
	// All frames are queued before the first read: veth delivers
	// within the sender's system call (backlog processed on the
	// way out), so the reader finds them waiting.
	if n, err := pa.WriteBatch(frames); err != nil || n != count {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	got, batches := readTestFrames(t, pb, count, 32, 2048)
	if diff := cmp.Diff(frames, got); diff != "" {
		t.Errorf("frames (-sent +received):\n%s", diff)
	}
	if max := maxOf(batches); max < 2 {
		t.Errorf("ReadBatch sizes %v: no read returned more than one frame", batches)
	}
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func TestOwnFramesAreNotReadBack(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, b := newVethPair(t)
	pa := open(t, a, Options{})
	pb := open(t, b, Options{})
	var own [][]byte
	for i := range 3 {
		own = append(own, testFrame(pb.HardwareAddr(), pa.HardwareAddr(), uint32(i), 80))
	}
	if _, err := pa.WriteBatch(own); err != nil {
		t.Fatal(err)
	}
	// Once b has them, a's own copies would already be queued at a.
	readTestFrames(t, pb, len(own), 8, 2048)
	reply := testFrame(pa.HardwareAddr(), pb.HardwareAddr(), 100, 80)
	if _, err := pb.WriteBatch([][]byte{reply}); err != nil {
		t.Fatal(err)
	}
	got, _ := readTestFrames(t, pa, 1, 8, 2048)
	if diff := cmp.Diff([][]byte{reply}, got); diff != "" {
		t.Errorf("first frames read on the sending port (-want +got); its own frames came back?\n%s", diff)
	}
}

func TestCloseUnblocksReadBatch(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, _ := newVethPair(t)
	pa := open(t, a, Options{})
	errc := make(chan error, 1)
	go func() {
		bufs, sizes := makeBufs(4, 2048), make([]int, 4)
		for {
			// Stray kernel frames may arrive; only the close
			// must end the loop.
			if _, err := pa.ReadBatch(bufs, sizes); err != nil {
				errc <- err
				return
			}
		}
	}()
	if err := pa.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadBatch after Close = %v; want ErrClosed", err)
		}
	case <-time.After(safetyTimeout):
		t.Fatal("ReadBatch still blocked after Close")
	}
	if _, err := pa.WriteBatch([][]byte{make([]byte, 60)}); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteBatch after Close = %v; want ErrClosed", err)
	}
	if err := pa.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
}

func TestPromiscuousReceive(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, b := newVethPair(t)
	pa := open(t, a, Options{})
	pb := open(t, b, Options{})
	promisc := func() int {
		h, err := netlink.NewHandleAt(b.ns)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		l, err := h.LinkByName(b.ifname)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Promisc
	}
	// veth itself filters no MACs, so delivery alone would not
	// prove promiscuity; the interface flag does.
	if got := promisc(); got != 1 {
		t.Errorf("%s promiscuous = %d while the port is open; want 1", b.ifname, got)
	}
	f := testFrame(foreignMAC, pa.HardwareAddr(), 7, 64)
	if _, err := pa.WriteBatch([][]byte{f}); err != nil {
		t.Fatal(err)
	}
	got, _ := readTestFrames(t, pb, 1, 4, 2048)
	if diff := cmp.Diff([][]byte{f}, got); diff != "" {
		t.Errorf("frame to foreign MAC (-sent +received):\n%s", diff)
	}
	pb.Close()
	if got := promisc(); got != 0 {
		t.Errorf("%s promiscuous = %d after Close; want 0", b.ifname, got)
	}
}

// TestTaggedFramesAreDroppedAndCounted: the firewall has no VLAN
// subinterfaces, so a frame that came with a tag (which the kernel removes
// before the ring) must not reach it as if it were untagged.
func TestTaggedFramesAreDroppedAndCounted(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, b := newVethPair(t)
	pa := open(t, a, Options{})
	pb := open(t, b, Options{})
	// dst, src, 802.1Q tag (PCP 5, VID 100), test EtherType, payload.
	tagged := withTag(testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 0, 80), 5<<13|100)
	// Priority-tagged (VID 0): TP_STATUS_VLAN_VALID marks it.
	priority := withTag(testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 1, 80), 3<<13)
	untagged := testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 2, 80)
	if _, err := pa.WriteBatch([][]byte{tagged, priority, untagged}); err != nil {
		t.Fatal(err)
	}
	got, _ := readTestFrames(t, pb, 1, 4, 2048)
	if diff := cmp.Diff([][]byte{untagged}, got); diff != "" {
		t.Errorf("frames read (-want +got):\n%s", diff)
	}
	if st, _ := pb.Stats(); st.VLANTagged != 2 {
		t.Errorf("VLANTagged = %d; want 2 (the kernel strips tags on receive)", st.VLANTagged)
	}
}

// withTag returns f with an 802.1Q tag carrying tci after its MACs.
func withTag(f []byte, tci uint16) []byte {
	out := make([]byte, len(f)+4)
	copy(out[:12], f)
	out[12], out[13] = 0x81, 0x00
	out[14], out[15] = byte(tci>>8), byte(tci)
	copy(out[16:], f[12:])
	return out
}

func TestTooLongFramesAreDroppedAndCounted(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, b := newVethPair(t)
	pa := open(t, a, Options{})
	pb := open(t, b, Options{})
	long := testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 0, 200)
	short := testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 1, 100)
	if _, err := pa.WriteBatch([][]byte{long, short}); err != nil {
		t.Fatal(err)
	}
	got, _ := readTestFrames(t, pb, 1, 4, 128)
	if diff := cmp.Diff([][]byte{short}, got); diff != "" {
		t.Errorf("frames read into 128-byte buffers (-want +got):\n%s", diff)
	}
	if st, _ := pb.Stats(); st.Truncated != 1 {
		t.Errorf("Truncated = %d; want 1", st.Truncated)
	}
}

func TestKernelDropsCounted(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, b := newVethPair(t)
	pa := open(t, a, Options{})
	// Room for a handful of frames only, and nobody reading.
	pb := open(t, b, Options{RingFrames: 16, RingFrameSize: 2048})
	const count = 256
	frames := make([][]byte, count)
	for i := range frames {
		frames[i] = testFrame(pb.HardwareAddr(), pa.HardwareAddr(), uint32(i), 100)
	}
	if n, err := pa.WriteBatch(frames); err != nil || n != count {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	st, err := pb.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.KernelDrops == 0 || st.KernelFrames < count {
		t.Errorf("stats %+v after %d frames into a full queue: want KernelDrops > 0, KernelFrames >= %d", st, count, count)
	}
	// Counters are summed across reads of PACKET_STATISTICS,
	// which the kernel resets.
	st2, _ := pb.Stats()
	if st2.KernelDrops < st.KernelDrops {
		t.Errorf("KernelDrops went from %d to %d", st.KernelDrops, st2.KernelDrops)
	}
}

func TestWriteBatchSkipsRefusedFrames(t *testing.T) {
	t.Parallel()
	a, b := newVethPair(t)
	pa := open(t, a, Options{BatchSize: 4})
	pb := open(t, b, Options{})
	good1 := testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 1, 100)
	tooLong := testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 2, 9000)
	good2 := testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 3, 100)
	frames := [][]byte{good1, tooLong, good2, good1, good2, good1}
	n, err := pa.WriteBatch(frames)
	if n != len(frames)-1 || err == nil {
		t.Errorf("WriteBatch = %d, %v; want %d and an error for the 9000-byte frame", n, err, len(frames)-1)
	}
	got, _ := readTestFrames(t, pb, len(frames)-1, 8, 2048)
	want := [][]byte{good1, good2, good1, good2, good1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("frames received (-want +got):\n%s", diff)
	}
	if st, _ := pa.Stats(); st.TXErrors != 1 {
		t.Errorf("TXErrors = %d; want 1", st.TXErrors)
	}
}

// TestReadWriteAllocateNothing is not parallel: AllocsPerRun counts every
// allocation in the process.
func TestReadWriteAllocateNothing(t *testing.T) {
	a, b := newVethPair(t)
	pa := open(t, a, Options{})
	pb := open(t, b, Options{})
	frames := [][]byte{
		testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 1, 100),
		testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 2, 100),
	}
	bufs, sizes := makeBufs(8, 2048), make([]int, 8)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := pa.WriteBatch(frames); err != nil {
			t.Fatal(err)
		}
		// Stray frames aside, at least one of ours is waiting.
		if _, err := pb.ReadBatch(bufs, sizes); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("WriteBatch+ReadBatch allocate %v times per run; want 0", allocs)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name   string
		ifname string
		opts   Options
	}{
		{"batch too large", "lo", Options{BatchSize: 5000}},
		{"slot size not a power of two", "lo", Options{RingFrameSize: 3000}},
		{"slot size too small", "lo", Options{RingFrameSize: 128}},
		{"negative buffer", "lo", Options{SendBuffer: -1}},
		{"no such interface", "falab-t-afp-none", Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Open(tt.ifname, tt.opts)
			if err == nil {
				p.Close()
				t.Fatalf("Open(%q, %+v) succeeded; want an error", tt.ifname, tt.opts)
			}
		})
	}
}

func TestReadDeadline(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, _ := newVethPair(t)
	pa := open(t, a, Options{})
	// A deadline already past: the read returns at once, whether
	// or not it had to wait.
	if err := pa.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	bufs, sizes := makeBufs(4, 2048), make([]int, 4)
	for {
		_, err := pa.ReadBatch(bufs, sizes)
		if err == nil {
			continue // a stray frame was already waiting
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("ReadBatch past its deadline = %v; want os.ErrDeadlineExceeded", err)
		}
		break
	}
}

// TestChecksumPendingCounted sends UDP from the kernel of one namespace,
// with the veth's checksum offload on (its default), and expects the
// receiving port to report the frame's checksum as not filled in.
func TestChecksumPendingCounted(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, b := newVethPair(t)
	pb := open(t, b, Options{})
	ha, err := netlink.NewHandleAt(a.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	la, err := ha.LinkByName(a.ifname)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("198.18.7.1/24")
	if err := ha.AddrAdd(la, addr); err != nil {
		t.Fatal(err)
	}
	peer := net.IPv4(198, 18, 7, 2)
	neigh := &netlink.Neigh{LinkIndex: la.Attrs().Index, State: netlink.NUD_PERMANENT, IP: peer, HardwareAddr: pb.HardwareAddr()}
	if err := ha.NeighAdd(neigh); err != nil {
		t.Fatal(err)
	}
	err = inNS(a.ns, func() error {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: peer, Port: 9})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("checksum left to the NIC"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.SetReadDeadline(time.Now().Add(safetyTimeout)); err != nil {
		t.Fatal(err)
	}
	bufs, sizes := makeBufs(4, 2048), make([]int, 4)
	for {
		n, err := pb.ReadBatch(bufs, sizes)
		if err != nil {
			t.Fatalf("no UDP frame arrived: %v", err)
		}
		if slices.ContainsFunc(bufs[:n], func(f []byte) bool { return f[12] == 0x08 && f[13] == 0x00 && f[23] == 17 }) {
			break
		}
	}
	if st, _ := pb.Stats(); st.ChecksumPending == 0 {
		t.Errorf("ChecksumPending = 0 after a UDP frame sent with checksum offload on; stats %+v", st)
	}
}

// TestRingSlotLimit checks the documented slot arithmetic: a slot holds 66
// bytes of header, then the frame.
func TestRingSlotLimit(t *testing.T) {
	t.Parallel()
	a, b := newVethPair(t)
	pa := open(t, a, Options{})
	pb := open(t, b, Options{RingFrameSize: 256})
	fits := testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 1, 256-66)
	tooLong := testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 2, 256-66+1)
	if _, err := pa.WriteBatch([][]byte{tooLong, fits}); err != nil {
		t.Fatal(err)
	}
	got, _ := readTestFrames(t, pb, 1, 4, 2048)
	if diff := cmp.Diff([][]byte{fits}, got); diff != "" {
		t.Errorf("frames through 256-byte slots (-want +got):\n%s", diff)
	}
	if st, _ := pb.Stats(); st.Truncated != 1 {
		t.Errorf("Truncated = %d; want 1", st.Truncated)
	}
}

// TestLinkDownUpKeepsThePort: the interface going down and up (a cable
// pulled, a chaos fault) is not the end of the port: reads go on after it
// comes back. (The kernel reports the down once as a socket error; the
// recvmmsg path used to return it, which ended a unit's data plane.)
func TestLinkDownUpKeepsThePort(t *testing.T) {
	t.Parallel() // each test has namespaces of its own
	a, b := newVethPair(t)
	pa := open(t, a, Options{})
	pb := open(t, b, Options{})
	hb, err := netlink.NewHandleAt(b.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	lb, err := hb.LinkByName(b.ifname)
	if err != nil {
		t.Fatal(err)
	}
	if err := hb.LinkSetDown(lb); err != nil {
		t.Fatal(err)
	}
	if err := hb.LinkSetUp(lb); err != nil {
		t.Fatal(err)
	}
	// A veth's carrier follows its peer's at once; send until the
	// frame arrives (the first may meet the link still coming up).
	frame := testFrame(pb.HardwareAddr(), pa.HardwareAddr(), 7, 100)
	got := make(chan error, 1)
	go func() {
		bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
		for {
			n, err := pb.ReadBatch(bufs, sizes)
			if err != nil {
				got <- err
				return
			}
			if n == 1 && sizes[0] == len(frame) {
				got <- nil
				return
			}
		}
	}()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := pa.WriteBatch([][]byte{frame}); err != nil && !errors.Is(err, unix.ENETDOWN) {
			t.Logf("write: %v", err)
		}
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("ReadBatch after the link came back: %v", err)
			}
			return
		case <-deadline:
			t.Fatal("no frame read within 5s of the link coming back")
		case <-tick.C:
		}
	}
}
