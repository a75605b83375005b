package topo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// requireRoot skips tests that build real namespaces when they cannot
// (not root) or should not (-short: `make test-short` creates none).
func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: needs root to create network namespaces (run the tests as root)")
	}
	if testing.Short() {
		tb.Skip("skipping in -short mode: creates network namespaces")
	}
}

// testPrefix returns a fresh "falab-t-<random>-" prefix and removes
// everything under it when the test ends, pass or fail.
func testPrefix(tb testing.TB) (prefix, tag string) {
	tb.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	tag = hex.EncodeToString(b)
	prefix = "falab-t-" + tag + "-"
	tb.Cleanup(func() {
		if _, err := RemovePrefix(prefix); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
	})
	return prefix, tag
}

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter sends log lines to the test log, shown only on failure or -v.
type tWriter struct{ tb testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// netnsExec runs a command inside namespace ns with `ip netns exec`.
func netnsExec(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// switchPlan is two hosts on a bridge in a switch namespace. Interface
// names carry the tag, so a watcher of the host namespace can tell ours
// from anyone else's.
func switchPlan(prefix, tag string) Plan {
	h1, h2, sw := prefix+"h1", prefix+"h2", prefix+"sw"
	return Plan{
		Namespaces: []Namespace{{h1}, {h2}, {sw}},
		Bridges:    []Bridge{{Namespace: sw, Name: "br" + tag}},
		Links: []Link{
			{
				A: Endpoint{
					Namespace: h1, Ifname: "e1" + tag,
					MAC:         net.HardwareAddr{0x02, 0xfa, 0, 0, 0, 1},
					Addrs:       []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24")},
					DisableIPv6: true, OffloadsOff: true, MTU: 1400,
				},
				B: Endpoint{Namespace: sw, Ifname: "p1" + tag, Master: "br" + tag},
			},
			{
				A: Endpoint{
					Namespace: h2, Ifname: "e2" + tag,
					MAC:   net.HardwareAddr{0x02, 0xfa, 0, 0, 0, 2},
					Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24")},
				},
				B: Endpoint{Namespace: sw, Ifname: "p2" + tag, Master: "br" + tag},
			},
		},
		Routes: []Route{{Namespace: h1, Dst: netip.MustParsePrefix("198.19.0.0/16"), Via: netip.MustParseAddr("198.18.0.2")}},
		Sysctls: []Sysctl{
			{Namespace: h2, Key: "net/ipv4/ip_forward", Value: "1"},
			{Namespace: h2, Key: "net/ipv4/conf/e2" + tag + "/arp_ignore", Value: "1"},
			{Namespace: sw, Key: "net/ipv6/conf/default/disable_ipv6", Value: "1"},
		},
	}
}

// watchHost records the names of interfaces created in the test process's
// own namespace (the host's) until the returned stop is called.
func watchHost(t *testing.T) (stop func() []string) {
	t.Helper()
	updates := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		t.Fatalf("subscribe to host link events: %v", err)
	}
	var (
		mu    sync.Mutex
		names []string
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for u := range updates {
			if u.Header.Type == unix.RTM_NEWLINK {
				mu.Lock()
				names = append(names, u.Attrs().Name)
				mu.Unlock()
			}
		}
	})
	return func() []string {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return names
	}
}

func TestDeploySwitch(t *testing.T) {
	requireRoot(t)
	prefix, tag := testPrefix(t)
	p := switchPlan(prefix, tag)
	h1, h2, sw := prefix+"h1", prefix+"h2", prefix+"sw"
	e1, e2 := "e1"+tag, "e2"+tag

	stopWatch := watchHost(t)
	err := Deploy(context.Background(), p, testLogger(t))
	hostNames := stopWatch()
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	for _, name := range hostNames {
		if strings.Contains(name, tag) {
			t.Errorf("interface %s appeared in the host namespace during Deploy", name)
		}
	}

	got, err := List(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{h1, h2, sw}, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	t.Run("ping across the bridge", func(t *testing.T) {
		if out, err := netnsExec(h1, "ping", "-c1", "-W2", "198.18.0.2"); err != nil {
			t.Fatalf("ping h1 -> h2: %v\n%s", err, out)
		}
	})

	t.Run("offloads off only where asked", func(t *testing.T) {
		off, err := GetOffloads(h1, e1)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Offloads{}, off); diff != "" {
			t.Errorf("h1 offloads (-want +got):\n%s", diff)
		}
		on, err := GetOffloads(h2, e2)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Offloads{SG: true, TSO: true, GSO: true, TXCsum: true}, on, cmpOffloadsIgnoringGRO); diff != "" {
			t.Errorf("h2 offloads, untouched (-want +got):\n%s", diff)
		}
	})

	t.Run("offloads set on and off again", func(t *testing.T) {
		if err := SetOffloads(h1, e1, true); err != nil {
			t.Fatal(err)
		}
		on, err := GetOffloads(h1, e1)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Offloads{SG: true, TSO: true, GSO: true, GRO: true, TXCsum: true}, on); diff != "" {
			t.Errorf("h1 offloads after SetOffloads on (-want +got):\n%s", diff)
		}
		if err := SetOffloads(h1, e1, false); err != nil {
			t.Fatal(err)
		}
		if off, err := GetOffloads(h1, e1); err != nil || off != (Offloads{}) {
			t.Errorf("h1 offloads after SetOffloads off: %+v, %v; want all off", off, err)
		}
	})

	t.Run("sysctls", func(t *testing.T) {
		for _, c := range []struct{ ns, key, want string }{
			{h1, "net/ipv6/conf/" + e1 + "/disable_ipv6", "1"},
			{h2, "net/ipv6/conf/" + e2 + "/disable_ipv6", "0"},
			{h2, "net/ipv4/ip_forward", "1"},
			{h1, "net/ipv4/ip_forward", "0"},
			{h2, "net/ipv4/conf/" + e2 + "/arp_ignore", "1"},
			// conf/default was written before the ports were created.
			{sw, "net/ipv6/conf/p1" + tag + "/disable_ipv6", "1"},
			{sw, "net/ipv6/conf/br" + tag + "/disable_ipv6", "1"},
		} {
			got, err := ReadSysctl(c.ns, c.key)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("%s %s = %q, want %q", c.ns, c.key, got, c.want)
			}
		}
	})

	t.Run("neighbors after ping", func(t *testing.T) {
		got, err := Neighbors(h1)
		if err != nil {
			t.Fatal(err)
		}
		want := []Neighbor{{IP: netip.MustParseAddr("198.18.0.2"), MAC: p.Links[1].A.MAC, State: "REACHABLE", Ifname: e1}}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("Neighbors(h1) (-want +got):\n%s", diff)
		}
	})

	t.Run("interfaces", func(t *testing.T) {
		ifs, err := Interfaces(h1)
		if err != nil {
			t.Fatal(err)
		}
		type brief struct {
			Name, Kind, MAC string
			MTU             int
			Status          LinkStatus
			Addrs           []string
			Sent            bool
		}
		var got []brief
		for _, i := range ifs {
			b := brief{Name: i.Name, Kind: i.Kind, MAC: i.MAC.String(), MTU: i.MTU, Status: i.LinkStatus, Sent: i.Counters.TxPackets > 0}
			for _, a := range i.Addrs {
				b.Addrs = append(b.Addrs, a.String())
			}
			got = append(got, b)
		}
		want := []brief{
			{Name: "lo", Kind: "device", MTU: 65536, Status: LinkStatus{true, true}, Addrs: []string{"127.0.0.1/8", "::1/128"}},
			{Name: e1, Kind: "veth", MAC: "02:fa:00:00:00:01", MTU: 1400, Status: LinkStatus{true, true}, Addrs: []string{"198.18.0.1/24"}, Sent: true},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Interfaces(h1) (-want +got):\n%s", diff)
		}
	})

	t.Run("bridge is a plain wire", func(t *testing.T) {
		// Read back by iproute2, independently of the netlink request.
		out, err := exec.Command("ip", "-n", sw, "-j", "-d", "link", "show", "br"+tag).Output()
		if err != nil {
			t.Fatal(err)
		}
		var links []struct {
			Linkinfo struct {
				InfoData map[string]any `json:"info_data"`
			} `json:"linkinfo"`
		}
		if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
			t.Fatalf("parse ip -j output %q: %v", out, err)
		}
		d := links[0].Linkinfo.InfoData
		for _, key := range []string{"forward_delay", "stp_state", "nf_call_iptables", "nf_call_ip6tables",
			"nf_call_arptables", "mcast_snooping", "vlan_filtering"} {
			if v, ok := d[key].(float64); !ok || v != 0 {
				t.Errorf("bridge %s = %v, want 0", key, d[key])
			}
		}
		for _, key := range bridgeNetfilterKeys {
			got, err := ReadSysctl(sw, key)
			if errors.Is(err, fs.ErrNotExist) {
				continue // no br_netfilter in this kernel
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != "0" {
				t.Errorf("%s %s = %q, want 0", sw, key, got)
			}
		}
	})

	t.Run("redeploy is idempotent", func(t *testing.T) {
		if err := Deploy(context.Background(), p, testLogger(t)); err != nil {
			t.Fatalf("second Deploy: %v", err)
		}
		if out, err := netnsExec(h1, "ping", "-c1", "-W2", "198.18.0.2"); err != nil {
			t.Fatalf("ping after redeploy: %v\n%s", err, out)
		}
	})

	t.Run("cut and restore a cable", func(t *testing.T) {
		if err := SetLinkUp(sw, "p1"+tag, false); err != nil {
			t.Fatal(err)
		}
		st, err := LinkState(h1, e1)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(LinkStatus{AdminUp: true, Carrier: false}, st); diff != "" {
			t.Errorf("h1 link with switch port down (-want +got):\n%s", diff)
		}
		if err := SetLinkUp(sw, "p1"+tag, true); err != nil {
			t.Fatal(err)
		}
		st, err = LinkState(h1, e1)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(LinkStatus{AdminUp: true, Carrier: true}, st); diff != "" {
			t.Errorf("h1 link with switch port up again (-want +got):\n%s", diff)
		}
	})

	t.Run("loss", func(t *testing.T) {
		if _, err := exec.LookPath("nft"); err != nil {
			t.Skip("skipping: nft is not installed")
		}
		if err := SetLoss(h1, e1, 100); err != nil {
			t.Fatal(err)
		}
		if out, err := netnsExec(h1, "ping", "-c1", "-W1", "198.18.0.2"); err == nil {
			t.Errorf("ping with 100%% loss succeeded:\n%s", out)
		}
		if err := ClearLoss(h1, e1); err != nil {
			t.Fatal(err)
		}
		if err := ClearLoss(h1, e1); err != nil {
			t.Fatalf("second ClearLoss: %v", err)
		}
		if out, err := netnsExec(h1, "ping", "-c1", "-W2", "198.18.0.2"); err != nil {
			t.Errorf("ping after ClearLoss: %v\n%s", err, out)
		}
		if err := SetLoss(h1, e1, 12.5); err != nil {
			t.Fatal(err)
		}
		out, err := Nft(h1, "", "list", "table", "netdev", lossTable(e1))
		if err != nil {
			t.Fatalf("nft list: %v\n%s", err, out)
		}
		if got := strings.Count(out, "numgen random mod 10000 < 1250"); got != 2 {
			t.Errorf("12.5%% loss: want 2 rules (ingress, egress) with threshold 1250, got %d in:\n%s", got, out)
		}
		if err := ClearLoss(h1, e1); err != nil {
			t.Fatal(err)
		}
		if out, _ := Nft(h1, "", "list", "tables"); strings.Contains(out, lossTable(e1)) {
			t.Errorf("loss table still there after ClearLoss:\n%s", out)
		}
		if err := SetLoss(h1, e1, 101); err == nil {
			t.Error("SetLoss(101%) succeeded")
		}
	})

	t.Run("delay", func(t *testing.T) {
		err := SetDelay(h1, e1, 10*time.Millisecond)
		switch {
		case errors.Is(err, ErrNoNetem):
			t.Logf("this kernel has no netem: %v", err)
		case err != nil:
			t.Fatalf("SetDelay: %v, want nil or ErrNoNetem", err)
		default:
			if err := SetDelay(h1, e1, 0); err != nil {
				t.Errorf("clear delay: %v", err)
			}
		}
	})

	t.Run("PIDsIn", func(t *testing.T) {
		// ip netns exec becomes sh once inside the namespace, and sh
		// becomes sleep: one PID throughout. "ready" means it is inside.
		cmd := exec.Command("ip", "netns", "exec", h2, "sh", "-c", "echo ready; exec sleep 60")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		line := make([]byte, 6)
		if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "ready\n" {
			t.Fatalf("child did not report ready: %q, %v", line, err)
		}
		pids, err := PIDsIn(h2)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(pids, cmd.Process.Pid) {
			t.Errorf("PIDsIn(h2) = %v, want it to contain %d", pids, cmd.Process.Pid)
		}
		if self, err := PIDsIn(h1); err != nil || slices.Contains(self, os.Getpid()) {
			t.Errorf("PIDsIn(h1) = %v, %v; must not contain the test process", self, err)
		}
	})

	removed, err := RemovePrefix(prefix)
	if err != nil {
		t.Fatalf("RemovePrefix: %v", err)
	}
	if diff := cmp.Diff([]string{h1, h2, sw}, removed); diff != "" {
		t.Errorf("RemovePrefix removed (-want +got):\n%s", diff)
	}
	if left, _ := List(prefix); len(left) != 0 {
		t.Errorf("after RemovePrefix, namespaces left: %v", left)
	}
	if err := Remove([]string{h1}); err != nil {
		t.Errorf("Remove of an already removed namespace: %v", err)
	}
}

// cmpOffloadsIgnoringGRO: veth's GRO default depends on the kernel version
// and XDP, so the untouched side's GRO is not asserted.
var cmpOffloadsIgnoringGRO = cmp.FilterPath(func(p cmp.Path) bool {
	return p.Last().String() == ".GRO"
}, cmp.Ignore())

func TestDeployFailureLeavesNothing(t *testing.T) {
	requireRoot(t)
	prefix, tag := testPrefix(t)

	// A namespace that exists before the failing Deploy must survive it.
	keep := Plan{Namespaces: []Namespace{{prefix + "h1"}}}
	if err := Deploy(context.Background(), keep, testLogger(t)); err != nil {
		t.Fatal(err)
	}

	// A plan that fails validation builds nothing at all.
	bad := switchPlan(prefix, tag)
	bad.Links[1].A.Namespace = prefix + "h1"
	bad.Links[1].A.Ifname = "e1" + tag
	err := Deploy(context.Background(), bad, testLogger(t))
	want := fmt.Sprintf("invalid plan: link %sh1:e1%s <-> %ssw:p2%s: interface %sh1:e1%s already used by link %sh1:e1%s <-> %ssw:p1%s",
		prefix, tag, prefix, tag, prefix, tag, prefix, tag, prefix, tag)
	if err == nil || err.Error() != want {
		t.Fatalf("Deploy error = %v\nwant %s", err, want)
	}

	p := switchPlan(prefix, tag)
	// The kernel has no such sysctl: Deploy fails at its last step, after
	// every namespace, bridge and veth has been built.
	p.Sysctls = append(p.Sysctls, Sysctl{Namespace: prefix + "h2", Key: "net/ipv4/no_such_knob", Value: "1"})
	err = Deploy(context.Background(), p, testLogger(t))
	want = "sysctl " + prefix + "h2:net/ipv4/no_such_knob: open /proc/sys/net/ipv4/no_such_knob: no such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("Deploy error = %v\nwant %s", err, want)
	}
	got, err := List(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{prefix + "h1"}, got); diff != "" {
		t.Errorf("namespaces after failed Deploy (-want +got):\n%s", diff)
	}

	// A cancelled context stops Deploy before it builds anything new.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	other := switchPlan(prefix+"c-", tag)
	if err := Deploy(ctx, other, testLogger(t)); !errors.Is(err, context.Canceled) {
		t.Errorf("Deploy with a cancelled context = %v, want context.Canceled", err)
	}
	if got, _ := List(prefix + "c-"); len(got) != 0 {
		t.Errorf("namespaces after a cancelled Deploy: %v", got)
	}
	// The kept namespace got a veth end from the failed Deploy; the undo
	// deletes it at once rather than waiting for the kernel to free the
	// peer's namespace.
	ifs, err := Interfaces(prefix + "h1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	if diff := cmp.Diff([]string{"lo"}, names); diff != "" {
		t.Errorf("interfaces left in the kept namespace (-want +got):\n%s", diff)
	}
	// And so the plan, fixed, deploys at once.
	p.Sysctls = p.Sysctls[:len(p.Sysctls)-1]
	if err := Deploy(context.Background(), p, testLogger(t)); err != nil {
		t.Errorf("Deploy of the fixed plan after a failure: %v", err)
	}
}

func TestDeployConflicts(t *testing.T) {
	requireRoot(t)
	prefix, tag := testPrefix(t)
	p := switchPlan(prefix, tag)
	if err := Deploy(context.Background(), p, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	h1, h2, sw := prefix+"h1", prefix+"h2", prefix+"sw"
	e1, p1, p2 := "e1"+tag, "p1"+tag, "p2"+tag

	tests := []struct {
		name   string
		mutate func(p *Plan)
		want   string
	}{
		{
			name:   "ends swapped between links",
			mutate: func(p *Plan) { p.Links[0].B.Ifname, p.Links[1].B.Ifname = p2, p1 },
			want: fmt.Sprintf("link %s:%s <-> %s:%s: interfaces exist but are not peers of each other (%s's peer is ifindex ",
				h1, e1, sw, p2, e1),
		},
		{
			name:   "bridge name taken by loopback",
			mutate: func(p *Plan) { p.Bridges = append(p.Bridges, Bridge{Namespace: h2, Name: "lo"}) },
			want:   fmt.Sprintf("bridge %s:lo: exists as a device, not a bridge", h2),
		},
		{
			name:   "one end missing",
			mutate: func(p *Plan) { p.Links[0].A.Ifname = "x1" + tag },
			want:   fmt.Sprintf("link %s:x1%s <-> %s:%s: %s:%s exists but %s:x1%s does not", h1, tag, sw, p1, sw, p1, h1, tag),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := switchPlan(prefix, tag)
			tt.mutate(&q)
			err := Deploy(context.Background(), q, testLogger(t))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Deploy error = %v\nwant prefix %s", err, tt.want)
			}
		})
	}
	// Conflicts must not have removed namespaces this Deploy did not create.
	if got, _ := List(prefix); len(got) != 3 {
		t.Errorf("namespaces after conflicting deploys: %v, want the 3 of the first deploy", got)
	}
}

func TestDoRestoresThread(t *testing.T) {
	requireRoot(t)
	prefix, _ := testPrefix(t)
	ns := prefix + "do"
	if err := Deploy(context.Background(), Plan{Namespaces: []Namespace{{ns}}}, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	var host, inside, after unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &host); err != nil {
		t.Fatal(err)
	}
	err := Do(ns, func() error { return unix.Stat("/proc/thread-self/ns/net", &inside) })
	if err != nil {
		t.Fatal(err)
	}
	if inside.Ino == host.Ino {
		t.Error("fn ran in the host namespace, want the lab namespace")
	}
	if err := unix.Stat("/proc/thread-self/ns/net", &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino != host.Ino {
		t.Error("the goroutine's thread is still in the lab namespace after Do")
	}
	wantErr := errors.New("from fn")
	if err := Do(ns, func() error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	if err := Do(prefix+"missing", func() error { return nil }); err == nil {
		t.Error("Do in a missing namespace succeeded")
	}
}

// BenchmarkDeployRemove50 deploys and removes 50 hosts on one bridge.
func BenchmarkDeployRemove50(b *testing.B) {
	requireRoot(b)
	const hosts = 50
	var (
		deploy, remove time.Duration
		n              int
	)
	for b.Loop() {
		n++
		prefix, tag := testPrefix(b)
		sw := prefix + "sw"
		p := Plan{Namespaces: []Namespace{{sw}}, Bridges: []Bridge{{Namespace: sw, Name: "br" + tag}}}
		for h := range hosts {
			ns := fmt.Sprintf("%sh%d", prefix, h)
			p.Namespaces = append(p.Namespaces, Namespace{ns})
			p.Links = append(p.Links, Link{
				A: Endpoint{Namespace: ns, Ifname: "eth0", Addrs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(h + 1)}), 24)}},
				B: Endpoint{Namespace: sw, Ifname: fmt.Sprintf("p%d", h), Master: "br" + tag},
			})
		}
		start := time.Now()
		if err := Deploy(context.Background(), p, nil); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if _, err := RemovePrefix(prefix); err != nil {
			b.Fatal(err)
		}
		deploy += mid.Sub(start)
		remove += time.Since(mid)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	b.ReportMetric(ms(deploy), "ms/deploy")
	b.ReportMetric(ms(remove), "ms/remove")
}

// TestBridgeForwardsMalformedIPv4: a lab switch hands on malformed IPv4
// as a cable would. With bridge netfilter on (the kernel's default in a new
// namespace when br_netfilter is there) the bridge validates IPv4 headers
// and drops these frames, so a hostile test never reaches the units.
func TestBridgeForwardsMalformedIPv4(t *testing.T) {
	requireRoot(t)
	prefix, tag := testPrefix(t)
	p := switchPlan(prefix, tag)
	if err := Deploy(context.Background(), p, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	h1, h2 := prefix+"h1", prefix+"h2"
	e1, e2 := "e1"+tag, "e2"+tag
	dst, src := p.Links[1].A.MAC, p.Links[0].A.MAC

	// ipv4 builds a frame h1 -> h2 carrying a 20-byte IPv4 header and 8
	// bytes of payload; mutate breaks one thing in the header, after which
	// the header checksum is made right again unless badSum.
	ipv4 := func(id uint16, badSum bool, mutate func(ip []byte)) []byte {
		f := make([]byte, 14+20+8)
		copy(f[0:6], dst)
		copy(f[6:12], src)
		f[12], f[13] = 0x08, 0x00
		ip := f[14:]
		ip[0] = 0x45
		ip[3] = 28 // total length
		ip[4], ip[5] = byte(id>>8), byte(id)
		ip[8] = 64
		ip[9] = 253 // experimental protocol: nothing in h2 answers it
		copy(ip[12:16], []byte{198, 18, 0, 1})
		copy(ip[16:20], []byte{198, 18, 0, 2})
		copy(ip[20:], "falab-nf")
		mutate(ip)
		var sum uint32
		for i := 0; i < 20; i += 2 {
			sum += uint32(ip[i])<<8 | uint32(ip[i+1])
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		ip[10], ip[11] = byte(^sum>>8), byte(^sum)
		if badSum {
			ip[11] ^= 0x5a
		}
		return f
	}
	frames := map[string][]byte{
		"bad header checksum":        ipv4(0xfa01, true, func([]byte) {}),
		"total length past the end":  ipv4(0xfa02, false, func(ip []byte) { ip[2], ip[3] = 0x05, 0xdc }),
		"total length below the IHL": ipv4(0xfa03, false, func(ip []byte) { ip[3] = 10 }),
		"header length 4 words":      ipv4(0xfa04, false, func(ip []byte) { ip[0] = 0x44 }),
	}

	// A packet socket on h2's end sees what arrives before the IP stack
	// drops it.
	var rfd int
	err := Do(h2, func() error {
		ifi, err := net.InterfaceByName(e2)
		if err != nil {
			return err
		}
		rfd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		return unix.Bind(rfd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(rfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}

	var sfd int
	sa := &unix.SockaddrLinklayer{Halen: 6}
	copy(sa.Addr[:], dst)
	err = Do(h1, func() error {
		ifi, err := net.InterfaceByName(e1)
		if err != nil {
			return err
		}
		sa.Ifindex = ifi.Index
		sfd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sfd)

	// Until linkwatch marks the new veths operational their qdisc drops
	// what is sent, so the frames are sent again each round until each
	// has arrived once; the deadline only ends a test gone wrong.
	seen := make(map[string]bool)
	buf := make([]byte, 2048)
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < len(frames) && time.Now().Before(deadline) {
		for name, f := range frames {
			if !seen[name] {
				if err := unix.Sendto(sfd, f, 0, sa); err != nil {
					t.Fatalf("send %s: %v", name, err)
				}
			}
		}
		for {
			n, from, err := unix.Recvfrom(rfd, buf, 0)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			got := buf[:n]
			if n < 14+20 || !bytes.Equal(got[6:12], src) || got[12] != 0x08 || got[13] != 0x00 {
				continue // not ours
			}
			for name, f := range frames {
				if bytes.Equal(got[18:20], f[18:20]) { // the IP ID names the frame
					if !bytes.Equal(got, f) {
						t.Errorf("%s arrived changed:\n got %x\nwant %x", name, got, f)
					}
					seen[name] = true
				}
			}
		}
	}
	for name := range frames {
		if !seen[name] {
			t.Errorf("frame with %s sent from %s:%s never arrived at %s:%s across bridge br%s", name, h1, e1, h2, e2, tag)
		}
	}
}

// htons converts a 16-bit value to network byte order, as the packet
// socket calls want their protocol.
func htons(v uint16) uint16 { return v<<8 | v>>8 }
