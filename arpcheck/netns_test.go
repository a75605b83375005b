package arpcheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/falab/falab/topo"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// This file is the root-only test: throwaway namespaces
// falab-t-arpck-<random>-{h,sw,u1,u2}, a host and two "units" (here plain
// kernels that answer ARP for the same address) on a bridge, removed by
// t.Cleanup even when the test fails.

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: needs root to create network namespaces, veth links and AF_PACKET sockets")
	}
	if testing.Short() {
		tb.Skip("skipping in -short mode: creates network namespaces")
	}
}

// testNS is a namespace made for the test and a netlink handle into it.
type testNS struct {
	name string
	fd   netns.NsHandle
	h    *netlink.Handle
}

func newNS(t *testing.T, name string) *testNS {
	t.Helper()
	created, err := topo.CreateNamespace(name)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatalf("namespace %s already exists", name)
	}
	n := &testNS{name: name}
	t.Cleanup(func() {
		if n.h != nil {
			n.h.Close()
		}
		if n.fd.IsOpen() {
			n.fd.Close()
		}
		if err := topo.RemoveNamespace(name); err != nil {
			t.Errorf("remove namespace %s: %v", name, err)
		}
	})
	if n.fd, err = netns.GetFromPath("/run/netns/" + name); err != nil {
		t.Fatal(err)
	}
	if n.h, err = netlink.NewHandleAt(n.fd); err != nil {
		t.Fatal(err)
	}
	return n
}

// plug wires node's eth0 (MAC mac, address addr) to bridge br0 in sw.
func plug(t *testing.T, sw, node *testNS, port string, mac net.HardwareAddr, addr netip.Prefix) {
	t.Helper()
	br, err := sw.h.LinkByName("br0")
	if err != nil {
		t.Fatal(err)
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: port, MasterIndex: br.Attrs().Index},
		PeerName:         "eth0",
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(node.fd),
	}
	if err := sw.h.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s/%s-%s/eth0: %v", sw.name, port, node.name, err)
	}
	p, err := sw.h.LinkByName(port)
	if err == nil {
		err = sw.h.LinkSetUp(p)
	}
	if err != nil {
		t.Fatal(err)
	}
	e, err := node.h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	ipnet := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}
	if err := node.h.AddrAdd(e, &netlink.Addr{IPNet: ipnet}); err != nil {
		t.Fatal(err)
	}
	if err := node.h.LinkSetUp(e); err != nil {
		t.Fatal(err)
	}
}

// waitMACs repeats a one-request check until want MACs answer: a new
// bridge port starts forwarding only after the kernel's link watch has
// seen its carrier. It waits for the wire; the test's assertions are on
// the check that follows.
func waitMACs(t *testing.T, host string, target netip.Addr, want int) {
	t.Helper()
	giveUp := time.Now().Add(safetyTimeout)
	for {
		res, err := Check(context.Background(), host, "eth0", []netip.Addr{target}, Options{Requests: 1, Wait: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if len(res[0].MACs) >= want {
			return
		}
		if time.Now().After(giveUp) {
			t.Fatalf("waiting for %d MACs to answer for %v: %s", want, target, res[0].Verdict())
		}
	}
}

func TestCheckOnTheWire(t *testing.T) {
	requireRoot(t)
	var rnd [3]byte
	rand.Read(rnd[:])
	prefix := "falab-t-arpck-" + hex.EncodeToString(rnd[:])
	// Registered first, so it runs last: after the namespaces are gone.
	t.Cleanup(func() {
		if left, err := topo.List(prefix); err != nil || len(left) > 0 {
			t.Errorf("namespaces left behind: %v %v", left, err)
		}
	})
	host, sw, u1, u2 := newNS(t, prefix+"-h"), newNS(t, prefix+"-sw"), newNS(t, prefix+"-u1"), newNS(t, prefix+"-u2")

	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := sw.h.LinkAdd(br); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	if err := sw.h.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	gwAddr := netip.MustParsePrefix("198.19.201.1/24")
	mac1 := net.HardwareAddr{0x02, 0xa1, 0, 0, 0, 0x01}
	mac2 := net.HardwareAddr{0x02, 0xa1, 0, 0, 0, 0x02}
	plug(t, sw, host, "p-h", net.HardwareAddr{0x02, 0xa1, 0, 0, 0, 0x11}, netip.MustParsePrefix("198.19.201.11/24"))
	plug(t, sw, u1, "p-u1", mac1, gwAddr)
	target := gwAddr.Addr()

	waitMACs(t, host.name, target, 1)
	start := time.Now()
	res, err := Check(context.Background(), host.name, "eth0", []netip.Addr{target}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Target: target, Requests: 3, Replies: 3, MACs: []MACCount{{mac1.String(), 3}}}
	if fmt.Sprint(res) != fmt.Sprint([]Result{want}) || !res[0].OK() {
		t.Fatalf("one unit: got %+v (%s), want %+v", res, res[0].Verdict(), want)
	}
	t.Logf("one unit: %s (check took %v)", res[0].Verdict(), time.Since(start).Round(time.Millisecond))

	// A second kernel holding the same address: two units answer.
	plug(t, sw, u2, "p-u2", mac2, gwAddr)
	waitMACs(t, host.name, target, 2)
	res, err = Check(context.Background(), host.name, "eth0", []netip.Addr{target}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want = Result{Target: target, Requests: 3, Replies: 6, MACs: []MACCount{{mac1.String(), 3}, {mac2.String(), 3}}, DoubledRounds: 3}
	if fmt.Sprint(res) != fmt.Sprint([]Result{want}) || res[0].OK() {
		t.Fatalf("two units: got %+v (%s), want %+v", res, res[0].Verdict(), want)
	}
	t.Logf("two units: %s", res[0].Verdict())

	// An address nobody holds.
	res, err = Check(context.Background(), host.name, "eth0", []netip.Addr{netip.MustParseAddr("198.19.201.99")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Replies != 0 || res[0].OK() {
		t.Fatalf("nobody: got %+v", res)
	}
	t.Logf("nobody: %s", res[0].Verdict())

	// The context ends a check blocked reading the real socket.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Check(ctx, host.name, "eth0", []netip.Addr{target}, Options{Requests: 1, Wait: time.Hour})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(safetyTimeout):
		t.Fatal("Check did not return when its context ended")
	}
}
