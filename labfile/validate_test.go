package labfile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/falab/falab/labs"
)

// TestValidationErrors edits the default lab one mistake at a time and
// checks the exact text a user sees: file, line, field, what was expected.
func TestValidationErrors(t *testing.T) {
	base, ok := labs.Get("default")
	if !ok {
		t.Fatal("no default lab")
	}
	for _, tt := range validationCases {
		t.Run(tt.name, func(t *testing.T) {
			src := string(base)
			if !strings.Contains(src, tt.old) {
				t.Fatalf("default lab no longer contains %q", tt.old)
			}
			src = strings.Replace(src, tt.old, tt.new, 1)
			_, err := Load("x.yaml", []byte(src))
			var got []string
			if err != nil {
				probs, ok := err.(Problems)
				if !ok {
					t.Fatalf("error is %T, want Problems: %v", err, err)
				}
				for _, p := range probs {
					got = append(got, p.String())
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRejectsNonsense(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"empty", "", "x.yaml: empty file; expected a lab (name, nodes, links, ...)"},
		{"not yaml", "name: [", "x.yaml:1: not valid YAML: did not find expected node content"},
		{"list at top", "- a\n- b\n", "x.yaml:1: expected a mapping of fields, found a list"},
		{"two documents", "name: a\n---\nname: b\n", "x.yaml:2: more than one YAML document; a lab file holds exactly one"},
		{"duplicate node", "name: a\nnodes:\n  h: {kind: host}\n  h: {kind: host}\n", "x.yaml:4: nodes.h: duplicate key \"h\" (first on line 3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("x.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			first := strings.Split(err.Error(), "\n")[0]
			if first != tt.want {
				t.Errorf("got  %s\nwant %s", first, tt.want)
			}
		})
	}
}

func FuzzLoad(f *testing.F) {
	for _, name := range labs.Names() {
		b, _ := labs.Get(name)
		f.Add(b)
	}
	f.Add([]byte("name: a\nnodes: {x: {kind: host, interfaces: {eth0: {address: 198.18.1.1/24}}}}\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Load("fuzz.yaml", data)
		if err == nil && l == nil {
			t.Fatal("nil lab without error")
		}
		if err != nil {
			if _, ok := err.(Problems); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
		}
	})
}

// validationCases are the mistakes TestValidationErrors makes in the default
// lab, each with the exact problems a user sees.
var validationCases = []struct {
	name     string
	old, new string // replace old by new in the default lab
	want     []string
}{
	{
		name: "unknown node in a link",
		old:  "[client2:eth0, sw-inside]", new: "[client3:eth0, sw-inside]",
		want: []string{
			`x.yaml:35: links[1].endpoints[0]: unknown node "client3" (expected one of: fw-a, fw-b, sw-inside, sw-outside, client1, client2, server1, server2)`,
			`x.yaml:22: nodes.client2.interfaces.eth0: interface client2:eth0 is not cabled (expected a link in links)`,
		},
	},
	{
		name: "duplicate address",
		old:  "198.18.1.12/24", new: "198.18.1.11/24",
		want: []string{`x.yaml:22: nodes.client2.interfaces.eth0.address: duplicate address 198.18.1.11: already used by client1:eth0 (nodes.client1.interfaces.eth0.address, line 18)`},
	},
	{
		name: "duplicate MAC",
		old:  "{eth0: {address: 198.18.1.12/24}}", new: "{eth0: {address: 198.18.1.12/24, mac: \"02:00:00:00:00:01\"}}",
		want: nil, // unique: sanity check that an explicit MAC passes
	},
	{
		name: "address outside its subnet",
		old:  "198.18.2.12/24", new: "198.18.3.12/24",
		want: []string{
			`x.yaml:31: nodes.server2.gateway: 198.18.2.1 is outside the subnets of server2's interfaces (expected an address on one of them)`,
			`x.yaml:30: nodes.server2.interfaces.eth0.address: 198.18.3.12/24 is outside its subnet: server2 is cabled to sw-outside, whose subnet is 198.18.2.0/24 (expected an address in it)`,
		},
	},
	{
		name: "overlapping subnets",
		old:  "primary_address: 198.19.255.1/30\n    secondary_address: 198.19.255.2/30", new: "primary_address: 198.18.2.201/24\n    secondary_address: 198.18.2.202/24",
		want: []string{`x.yaml:70: failover.link.primary_address: subnet 198.18.2.0/24 overlaps 198.18.2.0/24 (firewall.interfaces[1].address, line 52); expected separate subnets`},
	},
	{
		name: "unit without failover link",
		old:  "  - endpoints: [fw-a:failover, fw-b:failover]\n", new: "",
		want: []string{
			`x.yaml:12: nodes.fw-a: unit fw-a has no failover link (expected a link [fw-a:failover, fw-b:failover])`,
			`x.yaml:13: nodes.fw-b: unit fw-b has no failover link (expected a link [fw-a:failover, fw-b:failover])`,
		},
	},
	{
		name: "bad duration",
		old:  "unit_poll: 20ms", new: "unit_poll: 20 parsecs",
		want: []string{`x.yaml:72: failover.unit_poll: expected a duration like 100ms, 2s or 5m, found "20 parsecs"`},
	},
	{
		name: "unknown key",
		old:  "security_level: 100", new: "secrity_level: 100",
		want: []string{`x.yaml:47: firewall.interfaces[0].secrity_level: unknown field "secrity_level" (did you mean "security_level"?)`},
	},
	{
		name: "hold below three polls",
		old:  "unit_hold: 100ms", new: "unit_hold: 50ms",
		want: []string{`x.yaml:73: failover.unit_hold: 50ms is less than 3 x unit_poll (20ms); expected at least 60ms, as an ASA requires`},
	},
	{
		name: "address outside the lab range",
		old:  "198.18.1.11/24", new: "10.0.0.11/24",
		want: []string{`x.yaml:18: nodes.client1.interfaces.eth0.address: 10.0.0.11 is outside 198.18.0.0/15 (lab addresses come from the benchmarking range so they never collide with the machine's networks)`},
	},
	{
		name: "standby address outside subnet",
		old:  "standby_address: 198.18.1.2", new: "standby_address: 198.18.9.2",
		want: []string{`x.yaml:49: firewall.interfaces[0].standby_address: 198.18.9.2 is outside the interface's subnet 198.18.1.0/24 (expected an address in it)`},
	},
	{
		name: "wrong type",
		old:  "security_level: 0", new: "security_level: low",
		want: []string{`x.yaml:51: firewall.interfaces[1].security_level: expected a whole number, found "low"`},
	},
	{
		name: "unknown acl",
		old:  "{access_list: outside_in,", new: "{access_list: outside_inn,",
		want: []string{`x.yaml:65: firewall.access_groups[0].access_list: unknown access list "outside_inn" (expected one of the access lists: outside_in)`},
	},
	{
		name: "raw key of the wrong length",
		old:  "http_replication: false\n", new: "http_replication: false\n  key: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\n",
		want: []string{`x.yaml:76: failover.key: 62 hex digits: a raw key is exactly 64 hex digits (32 bytes, e.g. from openssl rand -hex 32); a passphrase must not be all hex digits`},
	},
	{
		name: "raw key",
		old:  "http_replication: false\n", new: "http_replication: false\n  key: 0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef\n",
		want: nil,
	},
	{
		name: "short passphrase",
		old:  "http_replication: false\n", new: "http_replication: false\n  key: secret\n",
		want: []string{`x.yaml:76: failover.key: too short (expected a passphrase of at least 8 characters, a raw key of 64 hex digits, or leave it out for a random per-lab key)`},
	},
	{
		name: "passphrase",
		old:  "http_replication: false\n", new: "http_replication: false\n  key: correct horse battery staple\n",
		want: nil,
	},
	{
		// The data plane's validator (fwconfig) speaks at the lab's
		// field and line.
		name: "static NAT of a network",
		old:  "real: 198.18.1.12, mapped_interface", new: "real: 198.18.1.0/24, mapped_interface",
		want: []string{`x.yaml:56: firewall.nat[0].real: 198.18.1.0/24 is a network; a static rule maps one address (expected like 198.18.1.12)`},
	},
	{
		name: "NAT into its own side",
		old:  "real: 198.18.1.12, mapped_interface: outside", new: "real: 198.18.1.12, mapped_interface: inside",
		want: []string{
			`x.yaml:56: firewall.nat[0].mapped_interface: is the same as real_interface (expected the other side)`,
			`x.yaml:56: firewall.nat[0].mapped: 198.18.2.112 is outside inside's subnet 198.18.1.0/24 (the unit answers ARP for mapped addresses there)`,
		},
	},
	{
		name: "two primaries",
		old:  "role: secondary", new: "role: primary",
		want: []string{`x.yaml:13: nodes.fw-b.role: both units are primary (expected one primary and one secondary)`},
	},
	{
		name: "negative cpus",
		old:  "{kind: unit, role: secondary}", new: "{kind: unit, role: secondary, cpus: -2}",
		want: []string{`x.yaml:13: nodes.fw-b.cpus: -2 is out of range (expected 1 to 256)`},
	},
	{
		name: "cpus on a switch",
		old:  "sw-inside:  {kind: switch}", new: "sw-inside:  {kind: switch, cpus: 2}",
		want: []string{`x.yaml:14: nodes.sw-inside.cpus: only units have cpus`},
	},
}

// TestUnitCPUs: a unit runs on one CPU unless its node says otherwise.
func TestUnitCPUs(t *testing.T) {
	base, _ := labs.Get("default")
	src := strings.Replace(string(base), "{kind: unit, role: secondary}", "{kind: unit, role: secondary, cpus: 2}", 1)
	l, err := Load("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, u := range l.Units {
		got[u.Name] = u.CPUs
	}
	if want := map[string]int{"fw-a": DefaultUnitCPUs, "fw-b": 2}; !cmp.Equal(got, want) {
		t.Errorf("cpus %v, want %v", got, want)
	}
}
