package afpacket

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/falab/falab/topo"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// This file is the root-only test bench: throwaway named namespaces
// (falab-t-afp-<random>-...) joined by veth pairs, removed by t.Cleanup
// even when the test fails.

const (
	// testEtherType marks the test's own frames (IEEE 802 local
	// experimental), so stray kernel traffic cannot confuse a test.
	testEtherType = 0x88B5
	// safetyTimeout bounds every wait for a frame. It is a deadline for
	// a test that has gone wrong, never a pause the test relies on.
	safetyTimeout = 10 * time.Second
)

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: needs root to create network namespaces, veth links and AF_PACKET sockets")
	}
	if testing.Short() {
		tb.Skip("skipping in -short mode: creates network namespaces")
	}
}

// inNS runs fn on a fresh OS thread inside ns. If the thread cannot be
// returned to its original namespace it stays locked, so the runtime
// discards it rather than let it run other goroutines in the wrong
// namespace.
func inNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("return to original netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// newNS creates a named namespace with IPv6 off (no router solicitations
// or DAD on the test links) and deletes it at cleanup. It goes through
// topo.CreateNamespace, the project's one way to make a named namespace,
// which makes /run/netns a mount point first (see there for why).
func newNS(tb testing.TB, name string) netns.NsHandle {
	tb.Helper()
	created, err := topo.CreateNamespace(name)
	if err != nil {
		tb.Fatal(err)
	}
	if !created {
		tb.Fatalf("namespace %s already exists", name)
	}
	ns, err := netns.GetFromPath("/run/netns/" + name)
	if err == nil {
		err = inNS(ns, func() error {
			for _, p := range []string{"/proc/sys/net/ipv6/conf/all/disable_ipv6", "/proc/sys/net/ipv6/conf/default/disable_ipv6"} {
				if err := os.WriteFile(p, []byte("1"), 0); err != nil && !os.IsNotExist(err) {
					return fmt.Errorf("netns %s: %w", name, err)
				}
			}
			return nil
		})
	}
	tb.Cleanup(func() {
		if ns.IsOpen() {
			ns.Close()
		}
		// Someone else's sweep of falab-* namespaces (falab down --all)
		// may have removed it already; that is not this test's failure.
		if err := topo.RemoveNamespace(name); err != nil {
			tb.Errorf("delete netns %s: %v", name, err)
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	return ns
}

// end is one end of a test link: an interface inside a namespace.
type end struct {
	ns     netns.NsHandle
	ifname string
}

// randomSuffix returns n random hex digits for namespace names.
func randomSuffix(tb testing.TB) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// newVethPair makes two namespaces joined by a veth pair, both ends up.
func newVethPair(tb testing.TB) (a, b end) {
	tb.Helper()
	requireRoot(tb)
	prefix := "falab-t-afp-" + randomSuffix(tb)
	a = end{ns: newNS(tb, prefix+"-a"), ifname: "falab-t-afp-a"}
	b = end{ns: newNS(tb, prefix+"-b"), ifname: "falab-t-afp-b"}
	link(tb, a, b)
	return a, b
}

// link creates a veth pair from a to b and sets both ends up.
func link(tb testing.TB, a, b end) {
	tb.Helper()
	ha, err := netlink.NewHandleAt(a.ns)
	if err != nil {
		tb.Fatal(err)
	}
	defer ha.Close()
	hb, err := netlink.NewHandleAt(b.ns)
	if err != nil {
		tb.Fatal(err)
	}
	defer hb.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: a.ifname, MTU: 1500, TxQLen: 1000},
		PeerName:      b.ifname,
		PeerNamespace: netlink.NsFd(b.ns),
	}
	if err := ha.LinkAdd(veth); err != nil {
		tb.Fatalf("add veth %s/%s: %v", a.ifname, b.ifname, err)
	}
	for _, x := range []struct {
		h      *netlink.Handle
		ifname string
	}{{ha, a.ifname}, {hb, b.ifname}} {
		l, err := x.h.LinkByName(x.ifname)
		if err != nil {
			tb.Fatal(err)
		}
		if err := x.h.LinkSetUp(l); err != nil {
			tb.Fatalf("set %s up: %v", x.ifname, err)
		}
	}
	// Until the kernel's linkwatch marks a link operational (up to a
	// second later), its qdisc is noop and silently drops what is sent.
	waitOperUp(tb, a)
	waitOperUp(tb, b)
}

// waitOperUp waits, on link events rather than a timer, until e's link is
// operationally up.
func waitOperUp(tb testing.TB, e end) {
	tb.Helper()
	updates := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	defer close(done)
	ns := e.ns
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		Namespace:    &ns,
		ListExisting: true, // the current state first, so no event is missed
	})
	if err != nil {
		tb.Fatalf("subscribe to links of %s: %v", e.ifname, err)
	}
	timeout := time.After(safetyTimeout)
	for {
		select {
		case u := <-updates:
			if u.Attrs().Name == e.ifname && u.Attrs().OperState == netlink.OperUp {
				return
			}
		case <-timeout:
			tb.Fatalf("%s not operationally up after %v", e.ifname, safetyTimeout)
		}
	}
}

// open opens a Port on e and closes it at cleanup.
func open(tb testing.TB, e end, opts Options) *Port {
	tb.Helper()
	var p *Port
	err := inNS(e.ns, func() error {
		var err error
		p, err = Open(e.ifname, opts)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// testFrame builds a frame of size bytes from src to dst with the test
// EtherType; the payload starts with seq.
func testFrame(dst, src net.HardwareAddr, seq uint32, size int) []byte {
	f := make([]byte, max(size, 18))
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:], testEtherType)
	binary.BigEndian.PutUint32(f[14:], seq)
	for i := 18; i < len(f); i++ {
		f[i] = byte(i)
	}
	return f
}

// isTestFrame reports whether f carries the test EtherType, tagged or not.
func isTestFrame(f []byte) bool {
	if len(f) >= 14 && binary.BigEndian.Uint16(f[12:]) == testEtherType {
		return true
	}
	return len(f) >= 18 && binary.BigEndian.Uint16(f[12:]) == 0x8100 && binary.BigEndian.Uint16(f[16:]) == testEtherType
}

// makeBufs returns n buffers of size bytes each.
func makeBufs(n, size int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs
}

// readTestFrames reads until it has want test frames, returning them and
// the size of every ReadBatch result. It fails the test on an error.
func readTestFrames(tb testing.TB, p *Port, want, batch, bufSize int) (frames [][]byte, batches []int) {
	tb.Helper()
	if err := p.SetReadDeadline(time.Now().Add(safetyTimeout)); err != nil {
		tb.Fatal(err)
	}
	defer p.SetReadDeadline(time.Time{})
	bufs := makeBufs(batch, bufSize)
	sizes := make([]int, batch)
	for len(frames) < want {
		n, err := p.ReadBatch(bufs, sizes)
		if err != nil {
			st, _ := p.Stats()
			tb.Fatalf("ReadBatch after %d of %d frames: %v (port stats %+v)", len(frames), want, err, st)
		}
		batches = append(batches, n)
		for i := range n {
			if f := bufs[i][:sizes[i]]; isTestFrame(f) {
				frames = append(frames, append([]byte(nil), f...))
			}
		}
	}
	return frames, batches
}

// timeAfterSafety is the deadline for a read that should succeed.
func timeAfterSafety() time.Time { return time.Now().Add(safetyTimeout) }
