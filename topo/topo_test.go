package topo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// validPlan is a small correct plan: two hosts on a switch.
func validPlan() Plan {
	return Plan{
		Namespaces: []Namespace{{"falab-v-h1"}, {"falab-v-h2"}, {"falab-v-sw"}},
		Bridges:    []Bridge{{Namespace: "falab-v-sw", Name: "br0"}},
		Links: []Link{
			{
				A: Endpoint{Namespace: "falab-v-h1", Ifname: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24")}},
				B: Endpoint{Namespace: "falab-v-sw", Ifname: "p-h1", Master: "br0"},
			},
			{
				A: Endpoint{Namespace: "falab-v-h2", Ifname: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24")}},
				B: Endpoint{Namespace: "falab-v-sw", Ifname: "p-h2", Master: "br0"},
			},
		},
		Routes:  []Route{{Namespace: "falab-v-h1", Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("198.18.0.254")}},
		Sysctls: []Sysctl{{Namespace: "falab-v-h1", Key: "net/ipv4/ip_forward", Value: "1"}},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *Plan)
		want   []string // error lines; nil for a valid plan
	}{
		{name: "valid", mutate: func(p *Plan) {}},
		{
			name:   "namespace without prefix",
			mutate: func(p *Plan) { p.Namespaces = append(p.Namespaces, Namespace{"lab-x"}) },
			want:   []string{`namespace "lab-x": name does not start with "falab-"`},
		},
		{
			name:   "namespace with slash",
			mutate: func(p *Plan) { p.Namespaces = append(p.Namespaces, Namespace{"falab-a/b"}) },
			want:   []string{`namespace "falab-a/b": name has character '/'; use letters, digits, '-', '_', '.'`},
		},
		{
			name:   "duplicate namespace",
			mutate: func(p *Plan) { p.Namespaces = append(p.Namespaces, Namespace{"falab-v-h1"}) },
			want:   []string{`namespace "falab-v-h1": listed twice`},
		},
		{
			name:   "ifname too long",
			mutate: func(p *Plan) { p.Links[0].A.Ifname = "a-very-long-name0" },
			want:   []string{`link falab-v-h1:a-very-long-name0 <-> falab-v-sw:p-h1: endpoint A: interface name "a-very-long-name0" is 17 bytes, longer than 15`},
		},
		{
			name:   "ifname empty",
			mutate: func(p *Plan) { p.Links[0].B.Ifname = "" },
			want:   []string{`link falab-v-h1:eth0 <-> falab-v-sw:: endpoint B: interface name is empty`},
		},
		{
			name:   "ifname with space",
			mutate: func(p *Plan) { p.Bridges[0].Name = "br 0"; p.Links[0].B.Master = ""; p.Links[1].B.Master = "" },
			want:   []string{`bridge falab-v-sw:br 0: interface name "br 0" has character ' '`},
		},
		{
			name:   "duplicate ifname across links",
			mutate: func(p *Plan) { p.Links[1].B.Ifname = "p-h1" },
			want:   []string{`link falab-v-h2:eth0 <-> falab-v-sw:p-h1: interface falab-v-sw:p-h1 already used by link falab-v-h1:eth0 <-> falab-v-sw:p-h1`},
		},
		{
			name:   "port named like the bridge",
			mutate: func(p *Plan) { p.Links[0].B.Ifname = "br0" },
			want:   []string{`link falab-v-h1:eth0 <-> falab-v-sw:br0: interface falab-v-sw:br0 already used by bridge falab-v-sw:br0`},
		},
		{
			name:   "endpoint in missing namespace",
			mutate: func(p *Plan) { p.Links[0].A.Namespace = "falab-v-h9" },
			want:   []string{`link falab-v-h9:eth0 <-> falab-v-sw:p-h1: endpoint A: namespace "falab-v-h9" is not in the plan`},
		},
		{
			name:   "bridge in missing namespace",
			mutate: func(p *Plan) { p.Bridges[0].Namespace = "falab-v-gone" },
			want: []string{
				`bridge falab-v-gone:br0: namespace "falab-v-gone" is not in the plan`,
				`link falab-v-h1:eth0 <-> falab-v-sw:p-h1: endpoint B: master bridge "br0" is not in namespace "falab-v-sw"`,
				`link falab-v-h2:eth0 <-> falab-v-sw:p-h2: endpoint B: master bridge "br0" is not in namespace "falab-v-sw"`,
			},
		},
		{
			name:   "missing master",
			mutate: func(p *Plan) { p.Links[1].B.Master = "br1" },
			want:   []string{`link falab-v-h2:eth0 <-> falab-v-sw:p-h2: endpoint B: master bridge "br1" is not in namespace "falab-v-sw"`},
		},
		{
			name:   "bad MAC",
			mutate: func(p *Plan) { p.Links[0].A.MAC = net.HardwareAddr{1, 2, 3} },
			want:   []string{`link falab-v-h1:eth0 <-> falab-v-sw:p-h1: endpoint A: MAC 01:02:03 is 3 bytes, want 6`},
		},
		{
			name:   "multicast MAC",
			mutate: func(p *Plan) { p.Links[0].A.MAC = net.HardwareAddr{1, 0, 0x5e, 0, 0, 1} },
			want:   []string{`link falab-v-h1:eth0 <-> falab-v-sw:p-h1: endpoint A: MAC 01:00:5e:00:00:01 is a multicast address`},
		},
		{
			name:   "bad MTU",
			mutate: func(p *Plan) { p.Links[0].A.MTU = 10 },
			want:   []string{`link falab-v-h1:eth0 <-> falab-v-sw:p-h1: endpoint A: MTU 10 is outside 68..65535`},
		},
		{
			name: "IPv6 address with IPv6 disabled",
			mutate: func(p *Plan) {
				p.Links[0].A.DisableIPv6 = true
				p.Links[0].A.Addrs = append(p.Links[0].A.Addrs, netip.MustParsePrefix("2001:db8::1/64"))
			},
			want: []string{`link falab-v-h1:eth0 <-> falab-v-sw:p-h1: endpoint A: IPv6 address 2001:db8::1/64 on an interface with IPv6 disabled`},
		},
		{
			name:   "route with host bits",
			mutate: func(p *Plan) { p.Routes[0].Dst = netip.MustParsePrefix("198.19.0.1/16") },
			want:   []string{`route falab-v-h1: 198.19.0.1/16 via 198.18.0.254: destination has host bits set; did you mean 198.19.0.0/16?`},
		},
		{
			name:   "route family mismatch",
			mutate: func(p *Plan) { p.Routes[0].Via = netip.MustParseAddr("2001:db8::1") },
			want:   []string{`route falab-v-h1: 0.0.0.0/0 via 2001:db8::1: destination and next hop are different address families`},
		},
		{
			name:   "route without next hop",
			mutate: func(p *Plan) { p.Routes[0].Via = netip.Addr{} },
			want:   []string{`route falab-v-h1: 0.0.0.0/0 via invalid IP: next hop is not valid`},
		},
		{
			name:   "route in missing namespace",
			mutate: func(p *Plan) { p.Routes[0].Namespace = "falab-v-x" },
			want:   []string{`route falab-v-x: 0.0.0.0/0 via 198.18.0.254: namespace "falab-v-x" is not in the plan`},
		},
		{
			name:   "sysctl escaping net",
			mutate: func(p *Plan) { p.Sysctls[0].Key = "net/../kernel/panic" },
			want:   []string{`sysctl falab-v-h1:net/../kernel/panic: key "net/../kernel/panic" has an empty, '.' or '..' element`},
		},
		{
			name:   "sysctl outside net",
			mutate: func(p *Plan) { p.Sysctls[0].Key = "kernel/panic" },
			want:   []string{`sysctl falab-v-h1:kernel/panic: key "kernel/panic" is not under net/`},
		},
		{
			name:   "sysctl value with newline",
			mutate: func(p *Plan) { p.Sysctls[0].Value = "1\n0" },
			want:   []string{`sysctl falab-v-h1:net/ipv4/ip_forward: value "1\n0" has a newline or NUL`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPlan()
			tt.mutate(&p)
			var got []string
			if err := p.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate() errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateIfname(t *testing.T) {
	tests := []struct {
		name string
		want string // "" for valid
	}{
		{"eth0", ""},
		{"fifteen-chars15", ""},
		{"sixteen-chars-16", `interface name "sixteen-chars-16" is 16 bytes, longer than 15`},
		{"", "interface name is empty"},
		{".", `interface name "." is not allowed`},
		{"a/b", `interface name "a/b" has character '/'`},
		{"a:b", `interface name "a:b" has character ':'`},
		{"a\tb", `interface name "a\tb" has character '\t'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if err := ValidateIfname(tt.name); err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("ValidateIfname(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestLossScript(t *testing.T) {
	tests := []struct {
		name      string
		ifname    string
		threshold int
		want      string
	}{
		{
			name: "clear", ifname: "eth0", threshold: 0,
			want: "table netdev falab_loss_eth0\ndelete table netdev falab_loss_eth0\n",
		},
		{
			name: "set with escaped name", ifname: "p-c1", threshold: 250,
			want: "table netdev falab_loss_p_2dc1\ndelete table netdev falab_loss_p_2dc1\n" +
				"table netdev falab_loss_p_2dc1 {\n" +
				"\tchain ingress {\n" +
				"\t\ttype filter hook ingress device \"p-c1\" priority -500; policy accept;\n" +
				"\t\tnumgen random mod 10000 < 250 counter drop\n" +
				"\t}\n" +
				"\tchain egress {\n" +
				"\t\ttype filter hook egress device \"p-c1\" priority -500; policy accept;\n" +
				"\t\tnumgen random mod 10000 < 250 counter drop\n" +
				"\t}\n" +
				"}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, lossScript(tt.ifname, tt.threshold)); diff != "" {
				t.Errorf("lossScript (-want +got):\n%s", diff)
			}
		})
	}
	// Names that differ only in punctuation must not share a table.
	if a, b := lossTable("a-b"), lossTable("a_b"); a == b {
		t.Errorf("lossTable(a-b) == lossTable(a_b) == %q", a)
	}
}

func TestNeighState(t *testing.T) {
	got := []string{NeighState(0x02), NeighState(0x04), NeighState(0x20), NeighState(0x80), NeighState(0x300)}
	want := []string{"REACHABLE", "STALE", "FAILED", "PERMANENT", "0x300"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NeighState (-want +got):\n%s", diff)
	}
}

func TestRemoveGuards(t *testing.T) {
	if err := Remove([]string{"host-ns"}); err == nil || !strings.Contains(err.Error(), `refusing to remove: namespace "host-ns": name does not start with "falab-"`) {
		t.Errorf("Remove(host-ns) = %v, want a refusal", err)
	}
	if _, err := RemovePrefix("fa"); err == nil || err.Error() != `refusing to remove namespaces with prefix "fa": it does not start with "falab-"` {
		t.Errorf("RemovePrefix(fa) = %v, want a refusal", err)
	}
	if _, err := RemovePrefix(""); err == nil {
		t.Error("RemovePrefix(\"\") succeeded, want a refusal")
	}
}

func TestParallel(t *testing.T) {
	t.Run("runs every index once", func(t *testing.T) {
		var mu sync.Mutex
		seen := make(map[int]int)
		err := parallel(context.Background(), 20, func(i int) error {
			mu.Lock()
			seen[i]++
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := make(map[int]int)
		for i := range 20 {
			want[i] = 1
		}
		if diff := cmp.Diff(want, seen); diff != "" {
			t.Errorf("calls per index (-want +got):\n%s", diff)
		}
	})
	t.Run("errors joined in index order", func(t *testing.T) {
		// All four start before any fails (one per worker); then index 3
		// fails first and index 1 after it, the reverse of index order.
		var started sync.WaitGroup
		started.Add(4)
		failed3 := make(chan struct{})
		err := parallel(context.Background(), 4, func(i int) error {
			started.Done()
			started.Wait()
			switch i {
			case 1:
				<-failed3
				return errors.New("one")
			case 3:
				defer close(failed3)
				return errors.New("three")
			}
			return nil
		})
		if err == nil || err.Error() != "one\nthree" {
			t.Errorf("err = %q, want %q", err, "one\nthree")
		}
	})
	t.Run("stops starting work after a failure", func(t *testing.T) {
		var calls atomic.Int32
		err := parallel(context.Background(), 1000, func(i int) error {
			calls.Add(1)
			return fmt.Errorf("fail %d", i)
		})
		if err == nil {
			t.Fatal("no error")
		}
		if n := calls.Load(); n > deployWorkers {
			t.Errorf("%d calls after the first failure, want at most %d (one per worker)", n, deployWorkers)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := parallel(ctx, 5, func(i int) error {
			t.Errorf("fn(%d) ran under a cancelled context", i)
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})
}

// FuzzValidate feeds arbitrary names through the plan checks: they must
// never panic, and whatever they accept must be safe to hand to the kernel
// and to nft.
func FuzzValidate(f *testing.F) {
	f.Add("falab-x-h1", "eth0", "br0", "net/ipv4/ip_forward")
	f.Add("falab-", "sixteen-chars-16", "", "net/../x")
	f.Add("lab", "a/b", "a:b", "kernel/panic")
	f.Fuzz(func(t *testing.T, ns, ifname, bridge, key string) {
		p := Plan{
			Namespaces: []Namespace{{ns}},
			Bridges:    []Bridge{{Namespace: ns, Name: bridge}},
			Links:      []Link{{A: Endpoint{Namespace: ns, Ifname: ifname, Master: bridge}, B: Endpoint{Namespace: ns, Ifname: ifname + "p"}}},
			Sysctls:    []Sysctl{{Namespace: ns, Key: key, Value: "1"}},
		}
		_ = p.Validate()
		if ValidateNamespaceName(ns) == nil {
			if !strings.HasPrefix(ns, NamePrefix) || strings.ContainsAny(ns, "/\x00 ") {
				t.Errorf("accepted namespace name %q", ns)
			}
		}
		if ValidateIfname(ifname) == nil {
			if len(ifname) == 0 || len(ifname) > MaxIfnameLen || strings.ContainsAny(ifname, "/: \x00") {
				t.Errorf("accepted interface name %q", ifname)
			}
		}
		if validateSysctlKey(key) == nil && (!strings.HasPrefix(key, "net/") || slices.Contains(strings.Split(key, "/"), "..")) {
			t.Errorf("accepted sysctl key %q", key)
		}
		table := lossTable(ifname)
		for _, c := range []byte(table) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				t.Fatalf("lossTable(%q) = %q has byte %q, not valid in an nft identifier", ifname, table, c)
			}
		}
	})
}

func TestPerInterfaceSysctl(t *testing.T) {
	tests := map[string]bool{
		"net/ipv4/ip_forward":                        false,
		"net/ipv6/conf/all/disable_ipv6":             false,
		"net/ipv6/conf/default/disable_ipv6":         false,
		"net/ipv4/neigh/default/gc_stale_time":       false,
		"net/ipv6/conf/inside/disable_ipv6":          true,
		"net/ipv4/conf/p-c1/arp_ignore":              true,
		"net/ipv4/neigh/eth0/base_reachable_time_ms": true,
		"net/core/somaxconn":                         false,
	}
	for key, want := range tests {
		t.Run(key, func(t *testing.T) {
			if got := perInterfaceSysctl(key); got != want {
				t.Errorf("perInterfaceSysctl(%q) = %t, want %t", key, got, want)
			}
		})
	}
}

// TestNftRefusesForeignNamespaces: Nft runs only in falab's namespaces,
// checked before anything runs.
func TestNftRefusesForeignNamespaces(t *testing.T) {
	for _, ns := range []string{"", "netns0", "falab-x/../y"} {
		if out, err := Nft(ns, "", "list", "tables"); err == nil {
			t.Errorf("Nft(%q) ran: %q", ns, out)
		}
	}
}
