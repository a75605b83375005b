package capture

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/falab/falab/afpacket"
	"github.com/falab/falab/topo"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// This file is the root-only bench: two throwaway namespaces
// falab-t-cap-<random>-a and -b joined by one veth pair a:e0 <-> b:e0,
// removed in t.Cleanup whatever happens. The link carries no addresses and
// no IPv6, so the kernel sends nothing on it and every frame a capture sees
// is one the test sent.

// safetyTimeout bounds a capture that has gone wrong; no test waits on it
// when things work, since captures stop on their frame count.
const safetyTimeout = 10 * time.Second

// testEtherType marks the test's own non-ARP frames (IEEE 802 local
// experimental).
const testEtherType = 0x88B5

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces and AF_PACKET sockets (run the tests as root)")
	}
	if testing.Short() {
		t.Skip("skipping in -short mode: creates network namespaces")
	}
}

// bench is the pair of namespaces.
type bench struct{ a, b string }

func newBench(t testing.TB) bench {
	t.Helper()
	requireRoot(t)
	tag := make([]byte, 3)
	rand.Read(tag)
	prefix := "falab-t-cap-" + hex.EncodeToString(tag) + "-"
	t.Cleanup(func() {
		if _, err := topo.RemovePrefix(prefix); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	bn := bench{a: prefix + "a", b: prefix + "b"}
	plan := topo.Plan{
		Namespaces: []topo.Namespace{{Name: bn.a}, {Name: bn.b}},
		Links: []topo.Link{{
			A: topo.Endpoint{Namespace: bn.a, Ifname: "e0", DisableIPv6: true, OffloadsOff: true},
			B: topo.Endpoint{Namespace: bn.b, Ifname: "e0", DisableIPv6: true, OffloadsOff: true},
		}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := topo.Deploy(ctx, plan, nil); err != nil {
		t.Fatal(err)
	}
	return bn
}

// send writes raw frames on ns:e0 through a packet socket of its own.
func send(t testing.TB, ns string, frames ...[]byte) {
	t.Helper()
	err := topo.Do(ns, func() error {
		ifi, err := net.InterfaceByName("e0")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for i, f := range frames {
			sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
			copy(sa.Addr[:], f[:6])
			if err := unix.Sendto(fd, f, 0, sa); err != nil {
				return fmt.Errorf("send frame %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rawSender opens a packet socket on ns:e0 for frames to frame's
// destination MAC, closed at cleanup.
func rawSender(t testing.TB, ns string, frame []byte) (int, *unix.SockaddrLinklayer) {
	t.Helper()
	var fd int
	sa := &unix.SockaddrLinklayer{Halen: 6}
	copy(sa.Addr[:], frame[:6])
	err := topo.Do(ns, func() error {
		ifi, err := net.InterfaceByName("e0")
		if err != nil {
			return err
		}
		sa.Ifindex = ifi.Index
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd, sa
}

// testFrame is a frame of testEtherType, size bytes, numbered by seq.
func testFrame(size int, seq byte) []byte {
	f := make([]byte, size)
	copy(f, []byte{0x02, 0xfa, 0x1a, 0xb0, 0x00, 0x02, 0x02, 0xfa, 0x1a, 0xb0, 0x00, 0x01, testEtherType >> 8, testEtherType & 0xff})
	for i := 14; i < size; i++ {
		f[i] = seq + byte(i)
	}
	return f
}

// garpReply is the other gratuitous ARP form: a reply to broadcast, sender
// = target. tshark lists it as "Gratuitous ARP for ADDR (Reply)".
func garpReply() []byte {
	f := bytes.Clone(garpFrame)
	f[21] = 2                                            // opcode reply
	copy(f[32:38], []byte{255, 255, 255, 255, 255, 255}) // target MAC broadcast
	return f
}

// tagged is f with an 802.1Q tag of VLAN 100 priority 1 after the MACs.
func tagged(f []byte) []byte {
	return append(append(bytes.Clone(f[:12]), 0x81, 0x00, 0x20, 0x64), f[12:]...)
}

// captureResult is one finished capture.
type captureResult struct {
	stats Stats
	err   error
	file  []byte
}

// start opens a capture (so it queues frames from now on) and runs it in
// the background; wait returns its result.
func start(t testing.TB, ns string, opts Options) (c *Capture, wait func() captureResult) {
	t.Helper()
	c, err := Open(ns, "e0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), safetyTimeout)
	var (
		res  captureResult
		buf  bytes.Buffer
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		defer cancel()
		res.stats, res.err = c.Run(ctx, &buf)
	}()
	return c, func() captureResult {
		<-done
		res.file = buf.Bytes()
		return res
	}
}

func TestCaptureBothDirections(t *testing.T) {
	bn := newBench(t)
	frames := [][]byte{garpFrame, garpReply(), testFrame(60, 1), tagged(testFrame(100, 2)), testFrame(1514, 3)}
	var total uint64
	for _, f := range frames {
		total += uint64(len(f))
	}
	_, waitB := start(t, bn.b, Options{Count: len(frames)})
	_, waitA := start(t, bn.a, Options{Count: len(frames)})
	before := time.Now()
	send(t, bn.a, frames...)
	resB, resA := waitB(), waitA()
	after := time.Now()

	for _, side := range []struct {
		name string
		res  captureResult
		dir  Direction
		ns   string
	}{{"receiver b", resB, DirInbound, bn.b}, {"sender a", resA, DirOutbound, bn.a}} {
		t.Run(side.name, func(t *testing.T) {
			if side.res.err != nil {
				t.Fatal(side.res.err)
			}
			if diff := cmp.Diff(Stats{Packets: uint64(len(frames)), Bytes: total}, side.res.stats); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			f, err := readPcapng(side.res.file)
			if err != nil {
				t.Fatal(err)
			}
			wantIf := []pcapIface{{LinkType: LinkTypeEthernet, SnapLen: DefaultSnapLen, Name: "e0", Comment: "namespace " + side.ns, TSResol: 9}}
			if diff := cmp.Diff(wantIf, f.Interfaces); diff != "" {
				t.Errorf("interface (-want +got):\n%s", diff)
			}
			var want, got []pcapPacket
			for _, fr := range frames {
				// The tagged frame comes back tagged: the kernel took
				// the tag out and the capture put it back.
				want = append(want, pcapPacket{Data: fr, OrigLen: uint32(len(fr)), Flags: uint32(side.dir)})
			}
			prev := uint64(before.UnixNano())
			for _, p := range f.Packets {
				if p.TS < prev || p.TS > uint64(after.UnixNano()) {
					t.Errorf("timestamp %d outside [%d, %d] or before the previous frame's", p.TS, prev, after.UnixNano())
				}
				prev = p.TS
				p.TS = 0
				got = append(got, p)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("frames (-want +got):\n%s", diff)
			}
		})
	}

	// Wireshark's reader agrees: both gratuitous ARPs, and the reply form
	// is listed as "Gratuitous ARP".
	path := filepath.Join(t.TempDir(), "b.pcapng")
	if err := os.WriteFile(path, resB.file, 0o644); err != nil {
		t.Fatal(err)
	}
	rows := tsharkRows(t, path, "arp.isgratuitous", "frame.p2p_dir", "arp.opcode", "arp.src.proto_ipv4")
	if diff := cmp.Diff([][]string{{"1", "1", "198.18.1.1"}, {"1", "2", "198.18.1.1"}}, rows); diff != "" {
		t.Errorf("tshark's gratuitous ARPs (-want +got):\n%s", diff)
	}
	out, err := exec.Command("tshark", "-r", path, "-Y", "arp").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "Gratuitous ARP for 198.18.1.1") {
		t.Errorf("tshark -r FILE -Y arp does not list the gratuitous ARP:\n%s", out)
	}
	if rows := tsharkRows(t, path, "vlan.id == 100", "vlan.priority"); !cmp.Equal(rows, [][]string{{"1"}}) {
		t.Errorf("tshark's VLAN 100 frames: %q, want one of priority 1", rows)
	}
}

func TestCaptureSnapLen(t *testing.T) {
	bn := newBench(t)
	_, wait := start(t, bn.b, Options{Count: 2, SnapLen: 100})
	send(t, bn.a, testFrame(1514, 1), testFrame(64, 2))
	res := wait()
	if res.err != nil {
		t.Fatal(res.err)
	}
	if diff := cmp.Diff(Stats{Packets: 2, Bytes: 1514 + 64, Truncated: 1}, res.stats); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	f, err := readPcapng(res.file)
	if err != nil {
		t.Fatal(err)
	}
	var got []pcapPacket
	for _, p := range f.Packets {
		p.TS = 0
		got = append(got, p)
	}
	want := []pcapPacket{
		{Data: testFrame(1514, 1)[:100], OrigLen: 1514, Flags: uint32(DirInbound)},
		{Data: testFrame(64, 2), OrigLen: 64, Flags: uint32(DirInbound)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
}

// TestCaptureStops: every way a capture ends returns a nil error and a
// whole, readable file.
func TestCaptureStops(t *testing.T) {
	bn := newBench(t)
	tests := []struct {
		name string
		opts Options
		stop func(c *Capture, cancel context.CancelFunc)
	}{
		{name: "duration on a quiet link", opts: Options{Duration: 50 * time.Millisecond}},
		{name: "context cancelled", stop: func(_ *Capture, cancel context.CancelFunc) { cancel() }},
		{name: "closed", stop: func(c *Capture, _ context.CancelFunc) { c.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(bn.b, "e0", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), safetyTimeout)
			defer cancel()
			var buf bytes.Buffer
			var wg sync.WaitGroup
			var st Stats
			wg.Go(func() { st, err = c.Run(ctx, &buf) })
			if tt.stop != nil {
				send(t, bn.a, testFrame(60, 1))
				// The frame is written (and so the loop is running)
				// before the stop; Stats is safe during Run.
				for c.Stats().Packets == 0 && ctx.Err() == nil {
					runtime.Gosched()
				}
				tt.stop(c, cancel)
			}
			wg.Wait()
			if ctx.Err() != nil && tt.stop == nil {
				t.Fatal("capture ran into the safety timeout")
			}
			if err != nil {
				t.Fatal(err)
			}
			f, rerr := readPcapng(buf.Bytes())
			if rerr != nil {
				t.Fatal(rerr)
			}
			if uint64(len(f.Packets)) != st.Packets {
				t.Errorf("file has %d packets, stats say %d", len(f.Packets), st.Packets)
			}
			if _, err := c.Run(context.Background(), &buf); err == nil {
				t.Error("a second Run did not fail")
			}
		})
	}
}

func TestCapturePromisc(t *testing.T) {
	bn := newBench(t)
	promiscuity := func() string {
		out, err := exec.Command("ip", "-netns", bn.b, "-details", "link", "show", "e0").CombinedOutput()
		if err != nil {
			t.Fatalf("ip link show: %v\n%s", err, out)
		}
		fs := strings.Fields(string(out))
		for i, f := range fs {
			if f == "promiscuity" && i+1 < len(fs) {
				return fs[i+1]
			}
		}
		t.Fatalf("no promiscuity in %s", out)
		return ""
	}
	c, err := Open(bn.b, "e0", Options{Promisc: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := promiscuity(); got != "1" {
		t.Errorf("promiscuity while open: %s, want 1", got)
	}
	c.Close()
	if got := promiscuity(); got != "0" {
		t.Errorf("promiscuity after Close: %s, want 0", got)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name, ns, ifname string
		opts             Options
		root             bool
		want             string
	}{
		{name: "not a lab namespace", ns: "netns0", ifname: "eth0", want: `namespace "netns0": name does not start with "falab-"`},
		{name: "bad interface name", ns: "falab-x-a", ifname: "a/b", want: `interface name "a/b" has character '/'`},
		{name: "negative count", ns: "falab-x-a", ifname: "eth0", opts: Options{Count: -1}, want: "count -1 is negative"},
		{name: "negative duration", ns: "falab-x-a", ifname: "eth0", opts: Options{Duration: -time.Second}, want: "duration -1s is negative"},
		{name: "huge snap length", ns: "falab-x-a", ifname: "eth0", opts: Options{SnapLen: 1 << 30}, want: "snap length 1073741824 is outside 0..1048576"},
		{name: "no such namespace", ns: "falab-t-cap-nonexistent", ifname: "eth0", root: true, want: "namespace falab-t-cap-nonexistent: open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				requireRoot(t)
			}
			_, err := Open(tt.ns, tt.ifname, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	t.Run("no such interface", func(t *testing.T) {
		bn := newBench(t)
		_, err := Open(bn.b, "eth9", Options{})
		if want := fmt.Sprintf(`capture %s:eth9: afpacket: interface "eth9"`, bn.b); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one containing %q", err, want)
		}
	})
}

// TestCaptureStreamsLive: as `falab capture NODE IFACE | wireshark -k -i -`
// needs, a reader on a pipe gets the header at once and each frame while
// the capture keeps running, not at its end.
func TestCaptureStreamsLive(t *testing.T) {
	bn := newBench(t)
	pr, pw := io.Pipe()
	c, err := Open(bn.b, "e0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	// Read block by block; a stuck stream hits the safety deadline.
	timer := time.AfterFunc(safetyTimeout, func() { pr.CloseWithError(fmt.Errorf("no block within %v", safetyTimeout)) })
	defer timer.Stop()
	readBlock := func() (typ uint32, body []byte) {
		t.Helper()
		head := make([]byte, 8)
		if _, err := io.ReadFull(pr, head); err != nil {
			t.Fatal(err)
		}
		rest := make([]byte, le.Uint32(head[4:])-8)
		if _, err := io.ReadFull(pr, rest); err != nil {
			t.Fatal(err)
		}
		return le.Uint32(head), rest
	}
	if typ, _ := readBlock(); typ != blockSHB {
		t.Fatalf("first block %#x, want the section header", typ)
	}
	if typ, _ := readBlock(); typ != blockIDB {
		t.Fatalf("second block %#x, want the interface description", typ)
	}
	for i := range 3 {
		want := testFrame(60, byte(i))
		send(t, bn.a, want)
		typ, body := readBlock()
		if typ != blockEPB || !bytes.Equal(body[20:20+len(want)], want) {
			t.Fatalf("frame %d: block %#x does not hold the frame sent", i, typ)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// stallingWriter takes the first write (the pcapng header), then holds
// every later one until release is closed, telling stalled when it first
// holds one.
type stallingWriter struct {
	writes           int
	stalled, release chan struct{}
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	if w.writes++; w.writes == 2 {
		close(w.stalled)
	}
	if w.writes > 1 {
		<-w.release
	}
	return len(p), nil
}

// TestCaptureStopsDuringFlood: a capture that is never out of frames still
// stops when its context ends, after the block in hand, not after
// draining the ring. The writer stalls while the flood fills the ring, so
// that when it resumes every block is ready.
func TestCaptureStopsDuringFlood(t *testing.T) {
	bn := newBench(t)
	c, err := Open(bn.b, "e0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := &stallingWriter{stalled: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Stats, 1)
	go func() {
		st, err := c.Run(ctx, w)
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	frame := testFrame(64, 0)
	fd, sa := rawSender(t, bn.a, frame)
	// One block holds this many 64-byte frames (each with its
	// tpacket3_hdr, 16-aligned, its sockaddr_ll and 2 bytes to align the
	// IP header, 8-aligned); the flood sends two rings' worth.
	const sockaddrOff = (unix.SizeofTpacket3Hdr + unix.TPACKET_ALIGNMENT - 1) &^ (unix.TPACKET_ALIGNMENT - 1)
	perBlock := afpacket.TapBlockSize(DefaultSnapLen) / ((sockaddrOff + unix.SizeofSockaddrLinklayer + 2 + len(frame) + 7) &^ 7)
	for range 2 * afpacket.TapBlocks * perBlock {
		unix.Sendto(fd, frame, 0, sa)
	}
	select {
	case <-w.stalled:
	case <-time.After(safetyTimeout):
		t.Fatal("the writer never saw a frame")
	}
	if st := c.Stats(); st.Drops == 0 {
		t.Fatalf("the ring is not full (%+v): the test would prove nothing", st)
	}
	cancel()
	close(w.release)
	select {
	case st := <-done:
		t.Logf("stopped after %d frames, %d dropped; a block holds %d", st.Packets, st.Drops, perBlock)
		if st.Packets > uint64(perBlock) {
			t.Errorf("wrote %d frames after the context ended, more than the block in hand (%d)", st.Packets, perBlock)
		}
	case <-time.After(safetyTimeout):
		t.Fatal("capture kept running after its context ended")
	}
}
