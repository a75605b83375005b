package arpcheck

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// safetyTimeout bounds waits in tests that have gone wrong; no test relies
// on it passing.
const safetyTimeout = 10 * time.Second

var (
	hostMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x11}
	hostIP  = netip.MustParseAddr("198.18.1.11")
	hostNet = netip.MustParsePrefix("198.18.1.11/24")
	otherIP = netip.MustParseAddr("198.18.1.12")
	otherHW = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x12}
	gw      = netip.MustParseAddr("198.18.1.1")
	gw2     = netip.MustParseAddr("198.18.2.1")
	macA    = net.HardwareAddr{0xaa, 0, 0, 0, 0, 0x01}
	macB    = net.HardwareAddr{0xaa, 0, 0, 0, 0, 0x02}
)

// fastOpts keeps the fake tests quick; the fake hands over queued frames
// before it reports a deadline, so counts do not depend on timing.
var fastOpts = Options{Requests: 3, Interval: time.Millisecond, Wait: 2 * time.Millisecond}

// item is one Read result.
type item struct {
	p   *arp.Packet
	err error
}

// fakeConn is an in-memory ARP socket. Each request written is echoed
// back (as an AF_PACKET socket sees its own outgoing frames) and then
// answered by respond. Read returns queued items before it reports a passed
// deadline, so every reply queued by a write is counted.
type fakeConn struct {
	respond func(req *arp.Packet) []item

	mu       sync.Mutex
	deadline time.Time
	queue    []item
	writes   []*arp.Packet
	dsts     []net.HardwareAddr
	wake     chan struct{} // one token: the queue or the deadline changed
	wrote    chan struct{} // closed at the first write
	readErr  error         // returned by Read once the queue is empty
}

func newFake(respond func(req *arp.Packet) []item) *fakeConn {
	return &fakeConn{respond: respond, wake: make(chan struct{}, 1), wrote: make(chan struct{})}
}

func (f *fakeConn) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fakeConn) WriteTo(p *arp.Packet, addr net.HardwareAddr) error {
	f.mu.Lock()
	if len(f.writes) == 0 {
		close(f.wrote)
	}
	f.writes = append(f.writes, p)
	f.dsts = append(f.dsts, addr)
	f.queue = append(f.queue, item{p: p})
	if f.respond != nil {
		f.queue = append(f.queue, f.respond(p)...)
	}
	f.mu.Unlock()
	f.poke()
	return nil
}

func (f *fakeConn) SetReadDeadline(t time.Time) error {
	f.mu.Lock()
	f.deadline = t
	f.mu.Unlock()
	f.poke()
	return nil
}

func (f *fakeConn) Read() (*arp.Packet, *ethernet.Frame, error) {
	for {
		f.mu.Lock()
		if len(f.queue) > 0 {
			it := f.queue[0]
			f.queue = f.queue[1:]
			f.mu.Unlock()
			return it.p, nil, it.err
		}
		if f.readErr != nil {
			err := f.readErr
			f.mu.Unlock()
			return nil, nil, err
		}
		d := f.deadline
		f.mu.Unlock()
		if d.IsZero() {
			<-f.wake
			continue
		}
		wait := time.Until(d)
		if wait <= 0 {
			return nil, nil, &net.OpError{Op: "read", Net: "packet", Err: os.ErrDeadlineExceeded}
		}
		tm := time.NewTimer(wait)
		select {
		case <-f.wake:
		case <-tm.C:
		}
		tm.Stop()
	}
}

func reply(from net.HardwareAddr, ip netip.Addr, toHW net.HardwareAddr, toIP netip.Addr) item {
	p, err := arp.NewPacket(arp.OperationReply, from, ip, toHW, toIP)
	if err != nil {
		panic(err)
	}
	return item{p: p}
}

// units answers each request for a target with one reply from each MAC
// listed for it, as the units on a segment would.
func units(m map[netip.Addr][]net.HardwareAddr) func(*arp.Packet) []item {
	return func(req *arp.Packet) []item {
		var out []item
		for _, mac := range m[req.TargetIP] {
			out = append(out, reply(mac, req.TargetIP, req.SenderHardwareAddr, req.SenderIP))
		}
		return out
	}
}

func run(t *testing.T, f *fakeConn, targets ...netip.Addr) []Result {
	t.Helper()
	res, err := probe(context.Background(), f, hostMAC, []netip.Prefix{hostNet}, targets, fastOpts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestProbeOneMAC(t *testing.T) {
	f := newFake(units(map[netip.Addr][]net.HardwareAddr{gw: {macA}}))
	res := run(t, f, gw)
	want := []Result{{Target: gw, Requests: 3, Replies: 3, MACs: []MACCount{{"aa:00:00:00:00:01", 3}}}}
	if d := cmp.Diff(want, res, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Fatalf("results (-want +got):\n%s", d)
	}
	if !res[0].OK() {
		t.Errorf("OK() = false for one MAC: %s", res[0].Verdict())
	}
}

func TestProbeTwoMACs(t *testing.T) {
	f := newFake(units(map[netip.Addr][]net.HardwareAddr{gw: {macB, macA}}))
	res := run(t, f, gw)
	r := res[0]
	if r.OK() {
		t.Fatalf("OK() = true with two MACs answering: %+v", r)
	}
	if got, want := r.Verdict(), "198.18.1.1: 2 MACs answer (aa:00:00:00:00:01 x3, aa:00:00:00:00:02 x3): two units answer"; got != want {
		t.Errorf("Verdict() = %q, want %q", got, want)
	}
	if r.Replies != 6 {
		t.Errorf("Replies = %d, want 6", r.Replies)
	}
}

func TestProbeNoReply(t *testing.T) {
	f := newFake(nil)
	r := run(t, f, gw)[0]
	if r.OK() || r.Replies != 0 || len(r.MACs) != 0 {
		t.Fatalf("got %+v, want no replies and not OK", r)
	}
	if got, want := r.Verdict(), "198.18.1.1: no reply (no unit answers)"; got != want {
		t.Errorf("Verdict() = %q, want %q", got, want)
	}
}

// TestProbeIgnoresOthers surrounds each good reply with frames that must
// not count: replies for another address, replies to another host, a
// gratuitous ARP, requests from others, a request claiming the gateway's
// address, a non-Ethernet reply and a malformed frame.
func TestProbeIgnoresOthers(t *testing.T) {
	bad := func(req *arp.Packet) []item {
		// Another host's request for the gateway, and its answer from a
		// second MAC (the kind of unicast a bridge may flood to us).
		otherReq, _ := arp.NewPacket(arp.OperationRequest, otherHW, otherIP, make(net.HardwareAddr, 6), gw)
		garp := reply(macB, gw, ethernet.Broadcast, gw)
		// A unicast request to us (as a unit refreshing its entry sends):
		// it carries our MAC and address as target but is no reply.
		asksAsGW, _ := arp.NewPacket(arp.OperationRequest, macB, gw, hostMAC, hostIP)
		short := reply(macB, gw, hostMAC, hostIP)
		short.p.SenderHardwareAddr = short.p.SenderHardwareAddr[:4]
		return []item{
			reply(macB, netip.MustParseAddr("198.18.1.99"), hostMAC, hostIP), // another address
			reply(macB, gw, otherHW, otherIP),                                // to another host
			reply(macB, gw, hostMAC, otherIP),                                // our MAC, not our address
			reply(macB, gw, otherHW, hostIP),                                 // our address, not our MAC
			garp,
			{p: otherReq},
			{p: asksAsGW},
			short,
			{err: io.ErrUnexpectedEOF}, // how arp.Client.Read reports a truncated frame
			reply(macA, req.TargetIP, req.SenderHardwareAddr, req.SenderIP),
		}
	}
	f := newFake(bad)
	r := run(t, f, gw)[0]
	want := Result{Target: gw, Requests: 3, Replies: 3, MACs: []MACCount{{"aa:00:00:00:00:01", 3}}}
	if d := cmp.Diff(want, r, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Fatalf("result (-want +got):\n%s", d)
	}
}

// TestProbeTargetsCountedApart: two targets asked in the same rounds keep
// their own counts, and a target's replies never leak into another's.
func TestProbeTargetsCountedApart(t *testing.T) {
	f := newFake(units(map[netip.Addr][]net.HardwareAddr{gw: {macA}, gw2: {macA, macB}}))
	res := run(t, f, gw, gw2)
	if len(res) != 2 || res[0].Target != gw || res[1].Target != gw2 {
		t.Fatalf("results not in target order: %+v", res)
	}
	if !res[0].OK() || res[0].Replies != 3 {
		t.Errorf("gw: %s (replies %d), want one MAC x3", res[0].Verdict(), res[0].Replies)
	}
	if res[1].OK() || len(res[1].MACs) != 2 || res[1].Replies != 6 {
		t.Errorf("gw2: %s (replies %d), want two MACs x3", res[1].Verdict(), res[1].Replies)
	}
}

// TestProbeRequests checks what goes on the wire: Requests rounds of one
// broadcast request per target, from the host's MAC and the address on the
// target's subnet.
func TestProbeRequests(t *testing.T) {
	f := newFake(nil)
	second := netip.MustParsePrefix("198.18.2.11/24")
	_, err := probe(context.Background(), f, hostMAC, []netip.Prefix{hostNet, second}, []netip.Addr{gw, gw2},
		Options{Requests: 2, Interval: time.Millisecond, Wait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.writes) != 4 {
		t.Fatalf("%d requests sent, want 4 (2 rounds x 2 targets)", len(f.writes))
	}
	for i, p := range f.writes {
		wantT, wantS := gw, hostIP
		if i%2 == 1 {
			wantT, wantS = gw2, second.Addr()
		}
		if p.Operation != arp.OperationRequest || p.TargetIP != wantT || p.SenderIP != wantS ||
			p.SenderHardwareAddr.String() != hostMAC.String() || f.dsts[i].String() != ethernet.Broadcast.String() {
			t.Errorf("request %d: %+v to %v; want request for %v from %v %v to broadcast", i, p, f.dsts[i], wantT, hostMAC, wantS)
		}
	}
}

// TestProbeCancel: with a wait of an hour, cancelling ctx ends the check.
func TestProbeCancel(t *testing.T) {
	f := newFake(units(map[netip.Addr][]net.HardwareAddr{gw: {macA}}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := probe(ctx, f, hostMAC, []netip.Prefix{hostNet}, []netip.Addr{gw}, Options{Requests: 1, Wait: time.Hour})
		done <- err
	}()
	<-f.wrote
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(safetyTimeout):
		t.Fatal("probe did not return after ctx was cancelled")
	}
}

// TestProbeSocketError: a socket error ends the check with an error rather
// than being skipped like a malformed frame.
func TestProbeSocketError(t *testing.T) {
	f := newFake(nil)
	f.readErr = &net.OpError{Op: "read", Net: "packet", Err: errors.New("network is down")}
	_, err := probe(context.Background(), f, hostMAC, []netip.Prefix{hostNet}, []netip.Addr{gw}, Options{Wait: time.Hour})
	if err == nil {
		t.Fatal("no error from a failing socket")
	}
}

func TestProbeBadTargets(t *testing.T) {
	for _, targets := range [][]netip.Addr{
		{netip.MustParseAddr("2001:db8::1")},
		{{}},
		{gw, gw},
	} {
		if _, err := probe(context.Background(), newFake(nil), hostMAC, []netip.Prefix{hostNet}, targets, fastOpts); err == nil {
			t.Errorf("targets %v: no error", targets)
		}
		if _, err := Check(context.Background(), "falab-unused", "eth0", targets, fastOpts); err == nil {
			t.Errorf("Check targets %v: no error", targets)
		}
	}
}

func TestVerdict(t *testing.T) {
	m := func(mac string, n int) MACCount { return MACCount{MAC: mac, Count: n} }
	tests := []struct {
		r    Result
		ok   bool
		want string
	}{
		{Result{Target: gw}, false, "198.18.1.1: no reply (no unit answers)"},
		{Result{Target: gw, Replies: 3, MACs: []MACCount{m("aa:00:00:00:00:01", 3)}}, true,
			"198.18.1.1: one MAC answers (aa:00:00:00:00:01 x3)"},
		{Result{Target: gw, Replies: 5, MACs: []MACCount{m("aa:00:00:00:00:01", 3), m("aa:00:00:00:00:02", 2)}}, false,
			"198.18.1.1: 2 MACs answer (aa:00:00:00:00:01 x3, aa:00:00:00:00:02 x2): two units answer"},
		{Result{Target: gw, Replies: 3, MACs: []MACCount{m("a", 1), m("b", 1), m("c", 1)}}, false,
			"198.18.1.1: 3 MACs answer (a x1, b x1, c x1): 3 units answer"},
		// Inconsistent (decoded) results are never OK.
		{Result{Target: gw, Replies: 2}, false, "198.18.1.1: no reply (no unit answers)"},
		{Result{Target: gw, MACs: []MACCount{m("a", 1)}}, false, "198.18.1.1: no reply (no unit answers)"},
	}
	for i, tt := range tests {
		if got := tt.r.OK(); got != tt.ok {
			t.Errorf("%d: OK() = %v, want %v", i, got, tt.ok)
		}
		if got := tt.r.Verdict(); got != tt.want {
			t.Errorf("%d: Verdict() = %q, want %q", i, got, tt.want)
		}
	}
}

// TestMACOrder: most replies first, ties by MAC.
func TestMACOrder(t *testing.T) {
	macC := net.HardwareAddr{0xaa, 0, 0, 0, 0, 0x03}
	n := 0
	f := newFake(func(req *arp.Packet) []item {
		n++
		out := []item{reply(macC, gw, hostMAC, hostIP), reply(macB, gw, hostMAC, hostIP)}
		if n == 1 {
			out = append(out, reply(macA, gw, hostMAC, hostIP))
		}
		return out
	})
	got := run(t, f, gw)[0].MACs
	want := []MACCount{{"aa:00:00:00:00:02", 3}, {"aa:00:00:00:00:03", 3}, {"aa:00:00:00:00:01", 1}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("MACs (-want +got):\n%s", d)
	}
}

func TestResultJSON(t *testing.T) {
	r := Result{Target: gw, Requests: 3, Replies: 3, MACs: []MACCount{{"aa:00:00:00:00:01", 3}}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"target":"198.18.1.1","requests":3,"replies":3,"macs":[{"mac":"aa:00:00:00:00:01","count":3}],"doubled_rounds":0}`
	if string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
	b, _ = json.Marshal(run(t, newFake(nil), gw)[0])
	if want := `{"target":"198.18.1.1","requests":3,"replies":0,"macs":[],"doubled_rounds":0}`; string(b) != want {
		t.Errorf("JSON of no reply = %s, want %s", b, want)
	}
}

func TestOptionsDefaults(t *testing.T) {
	got := Options{}.withDefaults()
	want := Options{Requests: 3, Interval: 20 * time.Millisecond, Wait: 100 * time.Millisecond}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	if got := (Options{Requests: 1, Interval: 5, Wait: 7}).withDefaults(); got != (Options{1, 5, 7}) {
		t.Errorf("set options changed: %+v", got)
	}
}

// TestProbeTwoUnitsOneVirtualMAC: with a virtual MAC, two actives answer
// with the same MAC; every request then draws two replies, and that is the
// only sign on the wire.
func TestProbeTwoUnitsOneVirtualMAC(t *testing.T) {
	f := newFake(units(map[netip.Addr][]net.HardwareAddr{gw: {macA, macA}}))
	r := run(t, f, gw)[0]
	if r.OK() || r.DoubledRounds != 3 || r.Replies != 6 {
		t.Fatalf("got %+v (OK %v), want not OK with 3 doubled rounds", r, r.OK())
	}
	if got, want := r.Verdict(), "198.18.1.1: every request answered twice or more by one MAC (aa:00:00:00:00:01 x6 over 3 requests): two units answer with the virtual MAC"; got != want {
		t.Errorf("Verdict() = %q, want %q", got, want)
	}
	// One extra reply in one round (the host kernel asked too) is not two units.
	one := Result{Target: gw, Requests: 3, Replies: 4, MACs: []MACCount{{"aa:00:00:00:00:01", 4}}, DoubledRounds: 1}
	if !one.OK() {
		t.Errorf("one doubled round of three judged two units: %s", one.Verdict())
	}
}
