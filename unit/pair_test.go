package unit

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/failover"
	"github.com/falab/falab/firewall"
	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/replicate"
	"github.com/falab/falab/topo"
)

// TestUnitPair runs two real units (New and Run, as `falab unit` does) in
// one process and proves the glue end to end: they negotiate one Active and
// one Standby Ready, a flow through the active reaches the standby's
// tables, a clean shutdown of the active hands over to the standby, and
// once Run returns nothing the unit started is still running or touching
// its ports.
//
// The units need the failover link's addresses, so the pair runs in a
// network namespace of its own. Entering one from a goroutine is not
// enough (Run's goroutines run on other OS threads, still in the old
// namespace), so this test creates the namespace and re-executes its own
// binary inside it (ip netns exec) to run TestUnitPairChild, which does the
// work and reports through its exit status and output.
func TestUnitPair(t *testing.T) {
	if testing.Short() {
		t.Skip("TestUnitPair runs a unit pair for about 10 s in a namespace of its own: skipped under -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("TestUnitPair needs root: it creates a network namespace")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("TestUnitPair needs iproute2's ip (ip netns exec)")
	}
	ns := fmt.Sprintf("falab-t-upair-%08x", rand.Uint32())
	if _, err := topo.CreateNamespace(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topo.RemoveNamespace(ns); err != nil {
			t.Error(err)
		}
	})
	// Both ends of the failover link on lo: the kernel still refuses a
	// datagram to a closed port (the takeover's sign of a dead peer), and
	// the link watcher sees lo's carrier.
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", pairAddrA.String() + "/30", "dev", "lo"},
		{"addr", "add", pairAddrB.String() + "/30", "dev", "lo"},
	} {
		if out, err := exec.Command(ip, append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip -n %s %s: %v\n%s", ns, strings.Join(args, " "), err, out)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ip, "netns", "exec", ns, os.Args[0],
		"-test.run=^TestUnitPairChild$", "-test.v", "-test.count=1", "-test.timeout=100s")
	cmd.Env = append(os.Environ(), pairChildEnv+"="+ns)
	out, err := cmd.CombinedOutput()
	t.Logf("TestUnitPairChild in namespace %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("child test: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestUnitPairChild")) {
		t.Fatal("child test did not pass (skipped, or not run)")
	}
}

// pairChildEnv names the namespace TestUnitPairChild must run in; unset,
// the child test skips.
const pairChildEnv = "FALAB_UNITPAIR_CHILD"

var (
	pairAddrA = netip.MustParseAddr("198.19.255.1") // fw-a's end of the failover link
	pairAddrB = netip.MustParseAddr("198.19.255.2")

	pairInsideMAC   = net.HardwareAddr{0x02, 0xfa, 0, 0, 1, 1} // virtual MACs: active, standby
	pairInsideSbMAC = net.HardwareAddr{0x02, 0xfb, 0, 0, 1, 2}
	pairOutsideMAC  = net.HardwareAddr{0x02, 0xfa, 0, 0, 2, 1}

	pairClientMAC = net.HardwareAddr{0x02, 0xaa, 0, 0, 1, 10}
	pairClientIP  = [4]byte{198, 18, 1, 10}
	pairServerMAC = net.HardwareAddr{0x02, 0xaa, 0, 0, 2, 20}
	pairServerIP  = [4]byte{198, 18, 2, 20}
)

// pairConfig is one unit's config as lab.UnitConfig would write it for a
// two-interface lab (inside 100, outside 0, virtual MACs), with the
// failover link on lo and short timers.
func pairConfig(dir, name, peer, role string, local, remote netip.Addr) *Config {
	fw := firewall.Config{
		AccessLists: map[string][]firewall.ACE{},
		Interfaces: []firewall.InterfaceConfig{
			{Name: "inside", SecurityLevel: 100, Prefix: netip.MustParsePrefix("198.18.1.1/24"), StandbyAddr: netip.MustParseAddr("198.18.1.2"),
				ActiveMAC: pairInsideMAC, StandbyMAC: pairInsideSbMAC},
			{Name: "outside", SecurityLevel: 0, Prefix: netip.MustParsePrefix("198.18.2.1/24"), StandbyAddr: netip.MustParseAddr("198.18.2.2"),
				ActiveMAC: pairOutsideMAC, StandbyMAC: net.HardwareAddr{0x02, 0xfb, 0, 0, 2, 2}},
		},
	}
	return &Config{
		Lab: "upair", Name: name, Peer: peer, Role: role,
		Firewall:          fw,
		FailoverInterface: "lo", LocalAddr: local, PeerAddr: remote,
		UnitPoll: 20 * time.Millisecond, UnitHold: 100 * time.Millisecond,
		InterfacePoll: time.Millisecond, InterfaceHold: 5 * time.Millisecond,
		NegotiationWindow: 300 * time.Millisecond,
		MACMode:           "virtual",
		Socket:            filepath.Join(dir, name+".sock"),
		Log:               filepath.Join(dir, name+".log"),
	}
}

// TestUnitPairChild is TestUnitPair's work, run inside its namespace.
func TestUnitPairChild(t *testing.T) {
	ns := os.Getenv(pairChildEnv)
	if ns == "" {
		t.Skip("run by TestUnitPair inside the namespace it creates")
	}
	requireNamespace(t, ns)
	baseline := runtime.NumGoroutine()

	dir := t.TempDir()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	key := testKey(7)
	inside, outside := &hub{}, &hub{}
	client := inside.port("client", nil)
	server := outside.port("server", nil)
	units := []*pairUnit{
		newPairUnit(t, pairConfig(dir, "fw-a", "fw-b", "primary", pairAddrA, pairAddrB), key, inside, outside, log),
		newPairUnit(t, pairConfig(dir, "fw-b", "fw-a", "secondary", pairAddrB, pairAddrA), key, inside, outside, log),
	}
	defer func() {
		// On a failure: stop whatever still runs, then say what happened.
		for _, p := range units {
			p.stop()
		}
		if t.Failed() {
			for _, p := range units {
				t.Logf("%s's events:\n%s", p.name, p.timeline())
			}
			t.Logf("log:\n%s", logs.String())
		}
	}()
	for _, p := range units {
		p.start()
	}

	// 1. One Active, one Standby Ready, in sync over one session.
	var act, sby *pairUnit
	waitUntil(t, 15*time.Second, "one unit Active and the other Standby Ready", func() (bool, string) {
		a, b := units[0].u.Status(), units[1].u.Status()
		switch {
		case a.State == "Active" && b.State == "Standby Ready":
			act, sby = units[0], units[1]
		case b.State == "Active" && a.State == "Standby Ready":
			act, sby = units[1], units[0]
		}
		return act != nil, fmt.Sprintf("fw-a %s, fw-b %s", a.State, b.State)
	})
	t.Logf("%s is Active, %s Standby Ready", act.name, sby.name)
	waitUntil(t, 10*time.Second, sby.name+"'s replication synced", func() (bool, string) {
		r := sby.u.Status().Replication
		return r.Connected && r.Synced, fmt.Sprintf("%+v", r)
	})
	if r := sby.u.Status().Replication; r.Sessions != 1 {
		t.Errorf("%s: %d replication sessions, want 1 (%+v)", sby.name, r.Sessions, r)
	}
	// The API serves the same answer over its socket.
	var clients []*api.Client // kept open: a poller's connections stay up as a TUI's do
	for _, p := range units {
		c := api.NewClient(p.cfg.Socket)
		clients = append(clients, c)
		st, err := c.Status(t.Context())
		if err != nil {
			t.Fatalf("%s API: %v", p.name, err)
		}
		if want := p.u.Status().State; st.State != want || st.Unit != p.name {
			t.Errorf("%s API: unit %s state %s, want %s %s", p.name, st.Unit, st.State, p.name, want)
		}
		// Each unit has read its peer's hellos, and says how late.
		if h := st.Hellos; h.DelaySamples == 0 || h.DelaySamples > int(h.Received) ||
			h.DelayP50 <= 0 || h.DelayP50 > h.DelayP99 || h.DelayP99 > h.DelayMax {
			t.Errorf("%s API: hello delay %d samples (%d hellos received), p50 %v p99 %v max %v", p.name,
				h.DelaySamples, h.Received, h.DelayP50, h.DelayP99, h.DelayMax)
		}
	}

	// 2. A UDP flow through the active reaches the standby's tables.
	client.send(arpFrame(header.ARPRequest, broadcastMAC, pairClientMAC, pairClientIP, nil, [4]byte{198, 18, 1, 1}))
	client.expect(t, "the active's ARP answer for 198.18.1.1", func(f []byte) bool {
		a, ok := arpOf(f)
		return ok && a.Op() == header.ARPReply && a.TargetProtocolAddress() == pairClientIP &&
			bytes.Equal(a.SenderHardwareAddress(), pairInsideMAC)
	})
	client.send(udpFrame(pairClientMAC, pairInsideMAC, pairClientIP, pairServerIP, 40000, 53, "query 1"))
	// The active resolves the server before forwarding: answer as it.
	server.expect(t, "the active's ARP request for the server", func(f []byte) bool {
		a, ok := arpOf(f)
		return ok && a.Op() == header.ARPRequest && a.TargetProtocolAddress() == pairServerIP
	})
	server.send(arpFrame(header.ARPReply, pairOutsideMAC, pairServerMAC, pairServerIP, pairOutsideMAC, [4]byte{198, 18, 2, 1}))
	server.expect(t, "the flow's datagram on the outside", isDatagram(pairServerMAC, 53, "query 1"))
	waitUntil(t, 5*time.Second, "the flow's connection on both units", func() (bool, string) {
		a, s := act.u.Firewall().ConnCount(), sby.u.Firewall().ConnCount()
		return a == 1 && s == 1, fmt.Sprintf("active %d conns, standby %d", a, s)
	})

	// A long poll on the active's API is in flight when it stops: Run
	// must not leave its handler behind.
	pollDone := make(chan error, 1)
	pollCtx, pollCancel := context.WithCancel(t.Context())
	defer pollCancel()
	poller := api.NewClient(act.cfg.Socket)
	clients = append(clients, poller)
	go func() {
		_, err := poller.Events(pollCtx, 1<<40, 25*time.Second)
		pollDone <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the request reach the handler (not a timing assertion)

	// 3. A clean shutdown of the active: the standby takes over.
	seq := lastSeq(sby.u)
	act.cancel()
	if err := act.wait(t, 10*time.Second); err != nil {
		t.Errorf("%s: Run: %v", act.name, err)
	}
	act.markReturned()
	waitUntil(t, 10*time.Second, sby.name+" Active", func() (bool, string) {
		st := sby.u.Status()
		return st.State == "Active" && st.Forwarding, st.State
	})
	if n := sby.u.Firewall().ConnCount(); n != 1 {
		t.Errorf("%s after the takeover: %d conns, want the replicated 1", sby.name, n)
	}
	// The flow goes on through the new active, with the replicated ARP
	// entry for the server (no new resolution).
	client.send(udpFrame(pairClientMAC, pairInsideMAC, pairClientIP, pairServerIP, 40000, 53, "query 2"))
	server.expect(t, "the flow's next datagram, through the new active", isDatagram(pairServerMAC, 53, "query 2"))

	// 4. The new active runs on alone, without replication errors, and
	// its timeline has the takeover.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		st := sby.u.Status()
		if st.State != "Active" {
			t.Fatalf("%s left Active: %s (%s)", sby.name, st.State, st.LastReason)
		}
		if r := st.Replication; r.SessionErrors+r.AuthFailures+r.SequenceErrors+r.DigestMismatches+r.Overflows+r.Refused != 0 {
			t.Fatalf("%s: replication errors: %+v", sby.name, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	evs, _ := sby.u.Events().Since(seq)
	took := false
	for _, e := range evs {
		if e.Kind == "transition" && strings.HasPrefix(e.Msg, "Standby Ready -> Just Active") {
			took = true
			t.Logf("%s took over: %s", sby.name, e.Msg)
		}
	}
	if !took {
		t.Errorf("%s's events since the shutdown have no Standby Ready -> Just Active transition:\n%s", sby.name, sby.timeline())
	}

	sby.cancel()
	if err := sby.wait(t, 10*time.Second); err != nil {
		t.Errorf("%s: Run: %v", sby.name, err)
	}
	sby.markReturned()

	// Nothing either unit started runs on after its Run returned: no
	// goroutine of the units (their API's handlers and connections
	// included) while the clients still hold theirs open, and once the
	// clients let go, the goroutine count of before the pair.
	checkNoUnitGoroutines(t)
	pollCancel()
	<-pollDone
	for _, c := range clients {
		c.Close()
	}
	checkGoroutineCount(t, baseline)
	for _, p := range units {
		if n := p.late(); n != 0 {
			t.Errorf("%s: %d port calls after Run returned", p.name, n)
		}
	}
}

// requireNamespace stops the test unless this process is in namespace ns:
// the units bind the failover link's addresses and must never do so in
// the machine's own namespace.
func requireNamespace(t *testing.T, ns string) {
	t.Helper()
	self, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.Stat(filepath.Join("/run/netns", ns))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(self, want) {
		t.Fatalf("not inside namespace %s", ns)
	}
}

// pairUnit is one unit of the pair with its ports and its Run.
type pairUnit struct {
	name   string
	cfg    *Config
	u      *Unit
	ports  []*hubPort
	cancel context.CancelFunc
	done   chan error
	ended  error
	over   bool
}

// newPairUnit builds a unit wired as Main wires it: a data port per
// interface, plus a control port (interface hellos) and an ARP port.
func newPairUnit(t *testing.T, cfg *Config, key replicate.Key, inside, outside *hub, log *slog.Logger) *pairUnit {
	t.Helper()
	p := &pairUnit{name: cfg.Name, cfg: cfg}
	hubs := map[string]*hub{"inside": inside, "outside": outside}
	data := map[string]firewall.Port{}
	for name, h := range hubs {
		dp := h.port(cfg.Name, nil)
		p.ports = append(p.ports, dp)
		data[name] = dp
	}
	u, err := New(cfg, key, data, log.With("unit", cfg.Name))
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range hubs {
		cp := h.port(cfg.Name, func(et uint16) bool { return et == probeEtherType })
		cp.mac = net.HardwareAddr{0x02, 0xbb, 0, 0, byte(len(p.ports)), cfg.Name[len(cfg.Name)-1]}
		u.AttachControl(name, cp)
		ap := h.port(cfg.Name, func(et uint16) bool { return et == etherTypeARP })
		if err := u.fw.AttachARP(name, ap); err != nil {
			t.Fatal(err)
		}
		p.ports = append(p.ports, cp, ap)
	}
	p.u = u
	return p
}

func (p *pairUnit) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan error, 1)
	go func() { p.done <- p.u.Run(ctx) }()
}

// wait waits for Run to return; on a timeout the test fails with every
// goroutine's stack.
func (p *pairUnit) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.ended, p.over = err, true
		return err
	case <-time.After(within):
		t.Fatalf("%s: Run has not returned %v after its context ended; goroutines:\n%s", p.name, within, allStacks())
		return nil
	}
}

// stop ends Run if it still runs, waiting a little (cleanup after a failure).
func (p *pairUnit) stop() {
	if p.cancel == nil || p.over {
		return
	}
	p.cancel()
	select {
	case p.ended = <-p.done:
		p.over = true
	case <-time.After(5 * time.Second):
	}
}

// markReturned makes every later call on the unit's ports count as late.
func (p *pairUnit) markReturned() {
	for _, hp := range p.ports {
		hp.stale.Store(true)
	}
}

func (p *pairUnit) late() int64 {
	var n int64
	for _, hp := range p.ports {
		n += hp.lateCalls.Load()
	}
	return n
}

func (p *pairUnit) timeline() string {
	evs, _ := p.u.Events().Since(0)
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s %-10s %s\n", e.Time.Format("15:04:05.000"), e.Kind, e.Msg)
	}
	return b.String()
}

func lastSeq(u *Unit) uint64 {
	evs, _ := u.Events().Since(0)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// waitUntil polls cond until it holds, failing the test with cond's last
// word after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v: %s", what, within, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkNoUnitGoroutines fails unless, after a short settling, no goroutine
// runs the project's code, the units' network libraries or an HTTP
// server's connection.
func checkNoUnitGoroutines(t *testing.T) {
	t.Helper()
	var left []string
	deadline := time.Now().Add(3 * time.Second)
	for {
		if left = unitGoroutines(); len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("after both Runs returned, %d goroutines of the units (or their libraries) still run:\n%s", len(left), strings.Join(left, "\n\n"))
}

// checkGoroutineCount fails unless, after a short settling, no more
// goroutines run than before the pair started.
func checkGoroutineCount(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			t.Errorf("after both Runs returned: %d goroutines, %d before the pair started:\n%s", runtime.NumGoroutine(), baseline, allStacks())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unitGoroutines returns the stacks of goroutines running the project's
// code, the network libraries the units use or an HTTP server's
// connection; not the test's own nor its API clients'.
func unitGoroutines() []string {
	var out []string
	for _, g := range strings.Split(allStacks(), "\n\n") {
		if strings.Contains(g, "TestUnitPairChild") || strings.Contains(g, "net/http.(*persistConn)") {
			continue
		}
		if strings.Contains(g, "falab/falab/") || strings.Contains(g, "vishvananda/netlink") || strings.Contains(g, "net/http.(*conn)") {
			out = append(out, g)
		}
	}
	return out
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// lockedBuffer is the units' log, written by many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// hub is one data network: every frame a port writes reaches every other
// owner's ports (those whose filter takes its EtherType), as on a switch
// flooding to everyone; a machine never reads back its own frames (as
// AF_PACKET with PACKET_IGNORE_OUTGOING). Ports are added before any runs.
type hub struct {
	members []*hubPort
}

func (h *hub) port(owner string, accept func(etherType uint16) bool) *hubPort {
	p := &hubPort{hub: h, owner: owner, accept: accept, rx: make(chan []byte, 4096), done: make(chan struct{})}
	h.members = append(h.members, p)
	return p
}

// hubPort is a firewall.Port on a hub. After stale is set (its unit's Run
// returned), every call on it is counted in lateCalls.
type hubPort struct {
	hub    *hub
	owner  string
	accept func(etherType uint16) bool // nil: every frame
	mac    net.HardwareAddr
	rx     chan []byte
	done   chan struct{}
	once   sync.Once
	closed atomic.Bool

	stale     atomic.Bool
	lateCalls atomic.Int64
}

var _ firewall.Port = (*hubPort)(nil)

func (p *hubPort) HardwareAddr() net.HardwareAddr { return p.mac }

func (p *hubPort) touch() {
	if p.stale.Load() {
		p.lateCalls.Add(1)
	}
}

func (p *hubPort) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	p.touch()
	if len(bufs) == 0 {
		return 0, nil
	}
	select {
	case <-p.done:
		return 0, net.ErrClosed
	case f := <-p.rx:
		sizes[0] = copy(bufs[0], f)
	}
	n := 1
	for ; n < len(bufs); n++ {
		select {
		case f := <-p.rx:
			sizes[n] = copy(bufs[n], f)
		default:
			return n, nil
		}
	}
	return n, nil
}

func (p *hubPort) WriteBatch(frames [][]byte) (int, error) {
	p.touch()
	if p.closed.Load() {
		return 0, net.ErrClosed
	}
	for _, f := range frames {
		p.send(f)
	}
	return len(frames), nil
}

// send delivers a copy of f to every other owner's ports that take it; a
// full queue drops it, as a busy NIC would.
func (p *hubPort) send(f []byte) {
	if len(f) < header.EthernetLen {
		return
	}
	et := binary.BigEndian.Uint16(f[12:14])
	for _, m := range p.hub.members {
		if m.owner == p.owner || m.closed.Load() || m.accept != nil && !m.accept(et) {
			continue
		}
		select {
		case m.rx <- bytes.Clone(f):
		default:
		}
	}
}

func (p *hubPort) Close() error {
	p.touch()
	p.once.Do(func() {
		p.closed.Store(true)
		close(p.done)
	})
	return nil
}

// expect reads the (test host's) port until a frame matches, skipping
// others (hellos, gratuitous ARP), and fails the test after 5 s.
func (p *hubPort) expect(t *testing.T, what string, match func([]byte) bool) []byte {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f := <-p.rx:
			if match(f) {
				return f
			}
		case <-timeout:
			t.Fatalf("%s: no %s", p.owner, what)
			return nil
		}
	}
}

func arpOf(f []byte) (header.ARP, bool) {
	e := header.Ethernet(f)
	if !e.IsValid() || e.EtherType() != header.EtherTypeARP {
		return nil, false
	}
	a := header.ARP(e.Payload())
	return a, a.IsValid()
}

// isDatagram matches a UDP datagram from the active's outside MAC to
// dstMAC and port, carrying payload.
func isDatagram(dstMAC net.HardwareAddr, port uint16, payload string) func([]byte) bool {
	return func(f []byte) bool {
		e := header.Ethernet(f)
		if !e.IsValid() || e.EtherType() != header.EtherTypeIPv4 || !bytes.Equal(e.Destination(), dstMAC) || !bytes.Equal(e.Source(), pairOutsideMAC) {
			return false
		}
		ip := header.IPv4(e.Payload())
		if !ip.IsValid() || ip.Protocol() != header.ProtocolUDP {
			return false
		}
		u := header.UDP(ip.Payload())
		return u.IsValid() && u.DestinationPort() == port && string(u[header.UDPMinimumSize:u.Length()]) == payload
	}
}

func arpFrame(op uint16, ethDst, sha net.HardwareAddr, spa [4]byte, tha net.HardwareAddr, tpa [4]byte) []byte {
	b := make([]byte, 60) // the minimum Ethernet frame, padded
	e := header.Ethernet(b)
	e.SetDestination(ethDst)
	e.SetSource(sha)
	e.SetEtherType(header.EtherTypeARP)
	a := header.ARP(e.Payload())
	a.SetIPv4OverEthernet()
	a.SetOp(op)
	a.SetSender(sha, spa)
	if tha == nil {
		tha = make(net.HardwareAddr, 6)
	}
	a.SetTarget(tha, tpa)
	return b
}

// udpFrame is a UDP datagram in IPv4 and Ethernet with valid checksums.
func udpFrame(ethSrc, ethDst net.HardwareAddr, src, dst [4]byte, sport, dport uint16, payload string) []byte {
	b := make([]byte, header.EthernetLen+header.IPv4MinimumSize+header.UDPMinimumSize+len(payload))
	e := header.Ethernet(b)
	e.SetDestination(ethDst)
	e.SetSource(ethSrc)
	e.SetEtherType(header.EtherTypeIPv4)
	ip := header.IPv4(e.Payload())
	ip.SetVersionAndHeaderLength(header.IPv4MinimumSize)
	ip.SetTotalLength(uint16(len(ip)))
	ip.SetFlagsFragmentOffset(0x4000)
	ip.SetTTL(64)
	ip.SetProtocol(header.ProtocolUDP)
	ip.SetSourceAddress(src)
	ip.SetDestinationAddress(dst)
	ip.SetChecksum(ip.CalculateChecksum())
	u := header.UDP(ip.Payload())
	u.SetSourcePort(sport)
	u.SetDestinationPort(dport)
	u.SetLength(uint16(len(u)))
	copy(u[header.UDPMinimumSize:], payload)
	u.SetChecksum(u.CalculateChecksum(src, dst))
	return b
}

// TestProbeRounds: a confirmation is half the unit hold in rounds of the
// interface hold, never fewer than 2 rounds nor more than 10.
func TestProbeRounds(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		hold, ifHold time.Duration
		want         int
	}{
		{100 * ms, 25 * ms, 2},
		{100 * ms, 10 * ms, 5},
		{100 * ms, 5 * ms, 10},
		{time.Second, ms, 10},   // capped
		{100 * ms, 100 * ms, 2}, // floored
		{100 * ms, 0, 0},        // no interface hold: the machine's default
	} {
		if got := probeRounds(c.hold, c.ifHold); got != c.want {
			t.Errorf("probeRounds(%v, %v) = %d, want %d", c.hold, c.ifHold, got, c.want)
		}
	}
}

// TestDescribeOutcome: an operator's command is answered with the
// machine's notice when it refused, else with the state change.
func TestDescribeOutcome(t *testing.T) {
	notice := []failover.Action{failover.Notice{Reason: "already active"}}
	for _, c := range []struct {
		before, after failover.State
		acts          []failover.Action
		want          string
	}{
		{failover.Active, failover.Active, notice, "already active"},
		{failover.Active, failover.Active, nil, "no change (Active)"},
		{failover.StandbyReady, failover.JustActive, notice, "Standby Ready -> Just Active"},
	} {
		if got := describeOutcome(c.before, c.after, c.acts); got != c.want {
			t.Errorf("describeOutcome(%v, %v, %v) = %q, want %q", c.before, c.after, c.acts, got, c.want)
		}
	}
}

// TestSpawnOwnership: spawn runs nothing before Run has set its context
// nor once Run is stopping, so that wg counts every goroutine that can
// touch the unit's sockets.
func TestSpawnOwnership(t *testing.T) {
	u := &Unit{}
	if u.spawn(func(context.Context) { t.Error("ran before Run") }) {
		t.Error("spawn before Run reported true")
	}
	ctx, cancel := context.WithCancel(context.Background())
	u.ctx = ctx
	ran := make(chan struct{})
	if !u.spawn(func(c context.Context) { <-c.Done(); close(ran) }) {
		t.Fatal("spawn while running reported false")
	}
	cancel()
	u.spawnMu.Lock()
	u.stopping = true
	u.spawnMu.Unlock()
	if u.spawn(func(context.Context) { t.Error("ran while stopping") }) {
		t.Error("spawn while stopping reported true")
	}
	u.wg.Wait()
	select {
	case <-ran:
	default:
		t.Error("wg.Wait returned before the spawned goroutine ended")
	}
}
