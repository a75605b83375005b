package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHostile attacks a running pair with real tools (scapy, hping3, nmap,
// ping) from real hosts, and checks each attack's effect on both units: a
// forged packet that the active unit accepted would change the replicated
// state, and so the standby's copy too (issue 11). Every subtest checks an
// effect that a wrong firewall changes (a connection gone from a unit's
// table, an ARP entry moved, a packet arriving at server1, a counter that
// did not move), not merely that a tool ran.
//
// The lab is testdata/hostile.yaml, the default lab under its own name, so
// the test's namespaces (falab-hostile-*) never meet another lab's.
func TestHostile(t *testing.T) {
	needRoot(t)
	h := &hostile{t: t, py: "/usr/bin/python3", script: "testdata/hostile.py"}
	h.needTools()

	// Registered first, so it runs last: after the lab's own teardown.
	t.Cleanup(func() {
		if ns := namespacesWithPrefix(t, "falab-hostile-"); len(ns) > 0 {
			t.Errorf("namespaces left behind: %v", ns)
		}
	})
	h.runDir = upLab(t, "testdata/hostile.yaml")
	waitActive(t, h.runDir, "fw-a")
	// 20 sequence-checked TCP streams client1 -> server1, slow enough that
	// a segment sniffed a moment ago is still near the window's edge.
	mustFalab(t, h.runDir, "traffic", "start", "--flows", "20", "--rate", "50000")
	h.streamsAlive(t)

	h.c1MAC, h.c2MAC, h.s2MAC = h.mac("client1"), h.mac("client2"), h.mac("server2")

	// The floods come after the scans (half-open connections stay 30 s),
	// and the takeover last.
	t.Run("1 forged RST from outside", h.forgedRSTOutside)
	t.Run("2 forged RST from another inside host", h.forgedRSTInside)
	t.Run("3 ARP spoofing", h.arpSpoofing)
	t.Run("4 martian sources", h.martians)
	t.Run("5 IP options", h.ipOptions)
	t.Run("6 fragmented ping", h.fragmentedPing)
	t.Run("8 nmap scans", h.nmapScans)
	t.Run("7 SYN floods", h.synFloods)
	t.Run("10 forged interface hellos while the failover link is cut", h.helloFlood)
	t.Run("9 forged RST on an idle connection after a takeover", h.rstAfterTakeover)

	us := h.failover(t)
	t.Logf("at the end: %s", h.rolesString(us))
	for _, u := range us {
		if u.Term > 1 {
			h.logTakeovers(t)
			break
		}
	}
}

// hostile is the running lab the subtests attack.
type hostile struct {
	t                   *testing.T
	runDir              string
	py, script          string
	c1MAC, c2MAC, s2MAC string
}

const (
	hClient1 = "198.18.1.11"
	hClient2 = "198.18.1.12"
	hGateway = "198.18.1.1"
	hServer1 = "198.18.2.11"
	hServer2 = "198.18.2.12"
	hPAT     = "198.18.2.1"
	hStatic2 = "198.18.2.112" // client2's static NAT
)

// needTools skips the test where the attack tools are missing, except in
// CI, whose .ci/run installs them: there a missing tool is a failure.
func (h *hostile) needTools() {
	t := h.t
	var missing []string
	for _, tool := range []string{"hping3", "nmap", "ping", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if err := exec.Command(h.py, "-c", "import scapy.all").Run(); err != nil {
		missing = append(missing, h.py+" with scapy")
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("missing %v (.ci/run installs hping3, nmap, python3-scapy)", missing)
	}
	t.Skipf("missing %v (apt-get install hping3 nmap python3-scapy)", missing)
}

func ns(node string) string { return "falab-hostile-" + node }

// mac is a host's eth0 MAC, read from its namespace by iproute2 (a plain
// `falab exec NODE -- cat /sys/class/net/...` reads the machine's sysfs).
func (h *hostile) mac(node string) string {
	h.t.Helper()
	out, err := exec.Command("ip", "-n", ns(node), "-j", "link", "show", "eth0").Output()
	if err != nil {
		h.t.Fatalf("%s eth0: %v", node, err)
	}
	var l []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &l); err != nil || len(l) != 1 {
		h.t.Fatalf("%s eth0: %v %s", node, err, out)
	}
	return l[0].Address
}

// forge runs testdata/hostile.py and decodes its answer into out.
func (h *hostile) forge(t *testing.T, cmd string, arg any, out any) {
	t.Helper()
	b, _ := json.Marshal(arg)
	c := exec.Command(h.py, h.script, cmd, string(b))
	var se strings.Builder
	c.Stderr = &se
	so, err := c.Output()
	if err != nil {
		t.Fatalf("hostile.py %s: %v\n%s", cmd, err, tail(se.String(), 1500))
	}
	if err := json.Unmarshal(so, out); err != nil {
		t.Fatalf("hostile.py %s: %v: %s", cmd, err, so)
	}
}

type hUnit struct {
	Unit         string `json:"unit"`
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	PID          int    `json:"pid"`
	HelloRejects struct {
		DataInterfaces struct {
			RateLimited uint64 `json:"rate_limited"`
		} `json:"data_interfaces"`
	} `json:"hello_rejects"`
}

func (h *hostile) failover(t *testing.T) []hUnit {
	t.Helper()
	var us []hUnit
	if err := json.Unmarshal([]byte(mustFalab(t, h.runDir, "show", "failover", "--json")), &us); err != nil {
		t.Fatal(err)
	}
	return us
}

func (h *hostile) rolesString(us []hUnit) string {
	var s []string
	for _, u := range us {
		s = append(s, fmt.Sprintf("%s %s (term %d)", u.Unit, u.State, u.Term))
	}
	return strings.Join(s, ", ")
}

// active is the unit now Active (fatal if none is).
func (h *hostile) active(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, u := range h.failover(t) {
			if u.State == "Active" {
				return u.Unit
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no active unit: %s", h.rolesString(h.failover(t)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// unitJSON runs `falab show WHAT --unit U --json` into out.
func (h *hostile) unitJSON(t *testing.T, out any, unit string, what ...string) {
	t.Helper()
	args := append(append([]string{"show"}, what...), "--unit", unit, "--json")
	if err := json.Unmarshal([]byte(mustFalab(t, h.runDir, args...)), out); err != nil {
		t.Fatal(err)
	}
}

func (h *hostile) drops(t *testing.T, unit string) map[string]uint64 {
	t.Helper()
	var d map[string]uint64
	h.unitJSON(t, &d, unit, "asp-drop")
	return d
}

type hConn struct {
	Protocol string `json:"protocol"`
	InIf     string `json:"in_interface"`
	OrigSrc  string `json:"orig_src"`
	OrigDst  string `json:"orig_dst"`
	ReplySrc string `json:"reply_src"`
	ReplyDst string `json:"reply_dst"`
	State    string `json:"state"`
}

// conns is a unit's connection table: the total and up to 10,000 entries.
func (h *hostile) conns(t *testing.T, unit string) (int, []hConn) {
	t.Helper()
	var p struct {
		Total   int     `json:"total"`
		Entries []hConn `json:"entries"`
	}
	h.unitJSON(t, &p, unit, "conn", "--limit", "10000")
	return p.Total, p.Entries
}

type hARP struct {
	Interface string `json:"interface"`
	IP        string `json:"ip"`
	MAC       string `json:"mac"`
}

func (h *hostile) arp(t *testing.T, unit string) []hARP {
	t.Helper()
	var a []hARP
	h.unitJSON(t, &a, unit, "arp")
	return a
}

// ifaceMAC is the MAC the active unit answers with on iface (the virtual
// MAC of the pair).
func (h *hostile) ifaceMAC(t *testing.T, unit, iface string) string {
	t.Helper()
	var is []struct {
		Name string `json:"name"`
		MAC  string `json:"mac"`
	}
	h.unitJSON(t, &is, unit, "interface")
	for _, i := range is {
		if i.Name == iface {
			return i.MAC
		}
	}
	t.Fatalf("%s has no interface %s", unit, iface)
	return ""
}

// rssKiB is a unit process's resident memory (VmRSS).
func (h *hostile) rssKiB(t *testing.T, unit string) int {
	t.Helper()
	var st []struct {
		Units []struct {
			Name string `json:"name"`
			PID  int    `json:"pid"`
		} `json:"units"`
	}
	if err := json.Unmarshal([]byte(mustFalab(t, h.runDir, "status", "hostile", "--json")), &st); err != nil || len(st) != 1 {
		t.Fatalf("status: %v", err)
	}
	for _, u := range st[0].Units {
		if u.Name != unit {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", u.PID))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no VmRSS for %s (pid %d)", unit, u.PID)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	t.Fatalf("status has no unit %s", unit)
	return 0
}

type hTraffic struct {
	Flows, Alive, Reset, Stalled, Corrupt, Failed int
	LongestGap                                    float64 `json:"longest_gap_ms"`
	Detail                                        []struct {
		State string `json:"state"`
		Local string `json:"local"`
	} `json:"detail"`
}

// traffic is the tcp-stream client's last report (false before its first).
func (h *hostile) traffic(t *testing.T) (hTraffic, bool) {
	t.Helper()
	var ts []struct {
		Client *hTraffic `json:"client"`
	}
	if err := json.Unmarshal([]byte(mustFalab(t, h.runDir, "traffic", "show", "--json")), &ts); err != nil || len(ts) != 1 {
		t.Fatalf("traffic show: %v %d", err, len(ts))
	}
	if ts[0].Client == nil {
		return hTraffic{}, false
	}
	return *ts[0].Client, true
}

// streamsAlive waits (up to 10 s: a flow stalled by a flood resumes) for
// all 20 streams to be alive, and fails on any reset, corruption or
// failure, which no wait undoes.
func (h *hostile) streamsAlive(t *testing.T) hTraffic {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr, ok := h.traffic(t)
		if ok && tr.Reset+tr.Corrupt+tr.Failed > 0 {
			t.Fatalf("streams broken: %d reset, %d corrupt, %d failed of %d", tr.Reset, tr.Corrupt, tr.Failed, tr.Flows)
		}
		if ok && tr.Flows == 20 && tr.Alive == 20 {
			return tr
		}
		if time.Now().After(deadline) {
			t.Fatalf("streams not all alive: %d of %d alive, %d stalled", tr.Alive, tr.Flows, tr.Stalled)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// counters is both units' drop counters and roles at one moment.
type counters struct {
	roles []hUnit
	drops map[string]map[string]uint64
}

func (h *hostile) counters(t *testing.T) counters {
	t.Helper()
	c := counters{roles: h.failover(t), drops: map[string]map[string]uint64{}}
	for _, u := range []string{"fw-a", "fw-b"} {
		c.drops[u] = h.drops(t, u)
	}
	return c
}

// activeThroughout is the unit that was active at before and still is,
// with the same term: "" if a takeover came between.
func activeThroughout(before, after counters) string {
	for _, b := range before.roles {
		for _, a := range after.roles {
			if b.Unit == a.Unit && b.State == "Active" && a.State == "Active" && b.Term == a.Term {
				return a.Unit
			}
		}
	}
	return ""
}

// expectDrops waits (up to 3 s) until the drops counted under each reason
// since before reach want (a key "a|b" sums reasons a and b): on the unit that was active throughout, or, if
// a takeover came between (the machine is loaded, and a flood loads it
// more), summed over both units. It logs the figures.
func (h *hostile) expectDrops(t *testing.T, before counters, want map[string]uint64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		after := h.counters(t)
		act := activeThroughout(before, after)
		got := map[string]uint64{}
		var desc []string
		for r := range want {
			var per []string
			for _, u := range []string{"fw-a", "fw-b"} {
				var d uint64
				for _, one := range strings.Split(r, "|") {
					d += after.drops[u][one] - before.drops[u][one]
				}
				per = append(per, fmt.Sprintf("%s +%d", u, d))
				if act == "" || act == u {
					got[r] += d
				}
			}
			desc = append(desc, fmt.Sprintf("%s: %s", r, strings.Join(per, ", ")))
		}
		ok := true
		for r, w := range want {
			if got[r] < w {
				ok = false
			}
		}
		if ok || time.Now().After(deadline) {
			where := "on the active " + act
			if act == "" {
				where = "summed over both units: a takeover came between (" + h.rolesString(before.roles) + " -> " + h.rolesString(after.roles) + ")"
			}
			t.Logf("drops %s: %s", where, strings.Join(desc, "; "))
			if !ok {
				t.Errorf("drops counted %v, want at least %v", got, want)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// liveFlow picks an established tcp-stream connection from the active's
// table: client1's port and its PAT port on the outside.
func (h *hostile) liveFlow(t *testing.T) (port, mapped int) {
	t.Helper()
	_, cs := h.conns(t, h.active(t))
	for _, c := range cs {
		if c.Protocol == "tcp" && c.OrigDst == hServer1+":5201" && c.State == "ESTABLISHED" && strings.HasPrefix(c.OrigSrc, hClient1+":") {
			p, _ := strconv.Atoi(strings.TrimPrefix(c.OrigSrc, hClient1+":"))
			m, _ := strconv.Atoi(strings.TrimPrefix(c.ReplyDst, hPAT+":"))
			return p, m
		}
	}
	t.Fatalf("no established tcp-stream connection in the table")
	return 0, 0
}

// connOnBoth checks that client1's flow from port is ESTABLISHED on both
// units, the active's table and the standby's copy, and that the stream
// on it is alive.
func (h *hostile) connOnBoth(t *testing.T, port int) {
	t.Helper()
	src := hClient1 + ":" + strconv.Itoa(port)
	for _, u := range []string{"fw-a", "fw-b"} {
		_, cs := h.conns(t, u)
		found := ""
		for _, c := range cs {
			if c.OrigSrc == src && c.OrigDst == hServer1+":5201" {
				found = c.State
			}
		}
		if found != "ESTABLISHED" {
			t.Errorf("%s: connection %s -> %s:5201 is %q, want ESTABLISHED", u, src, hServer1, found)
		}
	}
	tr := h.streamsAlive(t)
	for _, d := range tr.Detail {
		if d.Local == src && d.State != "alive" {
			t.Errorf("the attacked flow %s is %s", src, d.State)
		}
	}
}

// 1. RSTs forged from server2 as server1 on a live flow: two in the window
// but not exact (RFC 5961), two far outside it. None may end the
// connection on either unit.
func (h *hostile) forgedRSTOutside(t *testing.T) {
	port, mapped := h.liveFlow(t)
	act := h.active(t)
	before := h.counters(t)
	var res struct {
		Next uint32   `json:"next"`
		Sent []uint32 `json:"sent"`
	}
	h.forge(t, "rst", map[string]any{
		"sniff_ns": ns("server1"), "send_ns": ns("server2"),
		"smac": h.s2MAC, "dmac": h.ifaceMAC(t, act, "outside"),
		"src": hServer1, "sport": 5201, "dst": hPAT, "dport": mapped,
		"offsets": []int64{3, 1001, 1 << 31, 1<<31 + 7919},
	}, &res)
	t.Logf("flow %s:%d (PAT %d): server1's next sequence %d, forged RSTs at %v", hClient1, port, mapped, res.Next, res.Sent)
	// All four are dropped by the sequence checks. The two near ones
	// are in the window when the stream is slow, but a busy stream can
	// move its window past them between the sniff and the forgery (seen
	// on a loaded machine), and then they count as past the window too.
	h.expectDrops(t, before, map[string]uint64{"tcp-rst-not-exact|tcp-seq-past-win": 4, "tcp-seq-past-win": 2})
	time.Sleep(300 * time.Millisecond)
	h.connOnBoth(t, port)
}

// 2. RSTs forged from client2 as client1 (same interface, so only the
// sequence checks can catch them), and as server1 on the inside (the
// reverse-path check).
func (h *hostile) forgedRSTInside(t *testing.T) {
	port, mapped := h.liveFlow(t)
	act := h.active(t)
	gw := h.ifaceMAC(t, act, "inside")
	before := h.counters(t)
	var res struct {
		Next uint32   `json:"next"`
		Sent []uint32 `json:"sent"`
	}
	h.forge(t, "rst", map[string]any{
		"sniff_ns": ns("client1"), "send_ns": ns("client2"),
		"smac": h.c2MAC, "dmac": gw,
		"src": hClient1, "sport": port, "dst": hServer1, "dport": 5201,
		"offsets": []int64{3, 1 << 31},
	}, &res)
	t.Logf("flow %s:%d: client1's next sequence %d, forged RSTs at %v", hClient1, port, res.Next, res.Sent)
	var sent struct{ Sent int }
	h.forge(t, "send", map[string]any{
		"send_ns": ns("client2"),
		"frames": []map[string]any{
			{"kind": "tcp", "smac": h.c2MAC, "dmac": gw, "src": hServer1, "dst": hClient1, "sport": 5201, "dport": port, "flags": "R", "seq": 1, "count": 2},
			{"kind": "tcp", "smac": h.c2MAC, "dmac": gw, "src": hServer1, "dst": hPAT, "sport": 5201, "dport": mapped, "flags": "R", "seq": 1, "count": 2},
		},
	}, &sent)
	want := map[string]uint64{"tcp-rst-not-exact": 1, "tcp-seq-past-win": 1, "rpf-violated": 4}
	h.expectDrops(t, before, want)
	time.Sleep(300 * time.Millisecond)
	h.connOnBoth(t, port)
}

// arpOf is the MAC unit's table holds for ip ("" for none).
func (h *hostile) arpOf(t *testing.T, unit, ip string) string {
	for _, e := range h.arp(t, unit) {
		if e.IP == ip {
			return e.MAC
		}
	}
	return ""
}

// neigh is the MAC client1's kernel holds for ip.
func (h *hostile) neigh(t *testing.T, node, ip string) string {
	out, err := exec.Command("ip", "-n", ns(node), "-j", "neigh", "show", ip).Output()
	if err != nil {
		t.Fatal(err)
	}
	var n []struct {
		LLAddr string `json:"lladdr"`
	}
	json.Unmarshal(out, &n)
	if len(n) == 0 {
		return ""
	}
	return n[0].LLAddr
}

// 3. ARP spoofing from client2: claims on client1's address never move the
// (replicated) entry, unsolicited ARP creates none, and a claim on the
// gateway's address is answered so that client1 relearns the gateway.
func (h *hostile) arpSpoofing(t *testing.T) {
	act := h.active(t)
	gw := h.ifaceMAC(t, act, "inside")
	for _, u := range []string{"fw-a", "fw-b"} {
		if m := h.arpOf(t, u, hClient1); m != h.c1MAC {
			t.Fatalf("%s: ARP entry for client1 is %q before the attack, want %s", u, m, h.c1MAC)
		}
	}
	before := h.counters(t)
	bcast := "ff:ff:ff:ff:ff:ff"
	var sent struct{ Sent int }
	h.forge(t, "send", map[string]any{
		"send_ns": ns("client2"), "gap": 0.05,
		"frames": []map[string]any{
			// A gratuitous request and an unsolicited reply to the
			// gateway, both claiming client1's address for client2's MAC.
			{"kind": "arp", "smac": h.c2MAC, "dmac": bcast, "op": 1, "hwsrc": h.c2MAC, "psrc": hClient1, "pdst": hClient1},
			{"kind": "arp", "smac": h.c2MAC, "dmac": gw, "op": 2, "hwsrc": h.c2MAC, "psrc": hClient1, "hwdst": gw, "pdst": hGateway},
			// The same for an address nobody uses: must create nothing.
			{"kind": "arp", "smac": h.c2MAC, "dmac": bcast, "op": 1, "hwsrc": h.c2MAC, "psrc": "198.18.1.99", "pdst": "198.18.1.99"},
			{"kind": "arp", "smac": h.c2MAC, "dmac": gw, "op": 2, "hwsrc": h.c2MAC, "psrc": "198.18.1.99", "hwdst": gw, "pdst": hGateway},
		},
	}, &sent)
	h.expectDrops(t, before, map[string]uint64{"arp-conflict": 2})
	// The old MAC is probed (2 probes, a second apart) before an entry
	// could go: look after that, and at both units.
	time.Sleep(2500 * time.Millisecond)
	for _, u := range []string{"fw-a", "fw-b"} {
		if m := h.arpOf(t, u, hClient1); m != h.c1MAC {
			t.Errorf("%s: ARP entry for client1 is %q after the spoof, want client1's %s (client2 is %s)", u, m, h.c1MAC, h.c2MAC)
		}
		if m := h.arpOf(t, u, "198.18.1.99"); m != "" {
			t.Errorf("%s: unsolicited ARP created an entry 198.18.1.99 -> %s", u, m)
		}
	}

	// Claims on the gateway's address. First a reply sent to client1
	// alone, which the pair cannot see: it shows that client1 believes
	// such a reply (the attack is real). Then the same claim broadcast:
	// the active must count it and defend with a gratuitous ARP, after
	// which client1 holds the pair's MAC again.
	if m := h.neigh(t, "client1", hGateway); m != gw {
		t.Fatalf("client1's gateway entry is %q before the attack, want %s", m, gw)
	}
	h.forge(t, "send", map[string]any{
		"send_ns": ns("client2"),
		"frames": []map[string]any{
			{"kind": "arp", "smac": h.c2MAC, "dmac": h.c1MAC, "op": 2, "hwsrc": h.c2MAC, "psrc": hGateway, "hwdst": h.c1MAC, "pdst": hClient1},
		},
	}, &sent)
	poisoned := h.neigh(t, "client1", hGateway)
	t.Logf("client1's gateway entry after a forged unicast reply the pair cannot see: %s (client2 is %s)", poisoned, h.c2MAC)
	if poisoned != h.c2MAC {
		t.Logf("client1 did not take the forged reply: the defence below is then checked by its gratuitous ARP alone")
	}
	before = h.counters(t)
	var watch struct {
		Seen []struct {
			Op    int    `json:"op"`
			HWSrc string `json:"hwsrc"`
			PSrc  string `json:"psrc"`
			PDst  string `json:"pdst"`
		}
	}
	h.forge(t, "send", map[string]any{
		"sniff_ns": ns("client1"), "sniff_arp": true, "wait": 1.0,
		"send_ns": ns("client2"),
		"frames": []map[string]any{
			{"kind": "arp", "smac": h.c2MAC, "dmac": bcast, "op": 2, "hwsrc": h.c2MAC, "psrc": hGateway, "hwdst": bcast, "pdst": hGateway},
		},
	}, &watch)
	h.expectDrops(t, before, map[string]uint64{"arp-addr-conflict": 1})
	defended := 0
	for _, a := range watch.Seen {
		if a.HWSrc == gw && a.PSrc == hGateway && a.PDst == hGateway {
			defended++
		}
	}
	if defended == 0 {
		t.Errorf("client1 saw no gratuitous ARP from the pair for %s within 1 s of the forged claim: %+v", hGateway, watch.Seen)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := h.neigh(t, "client1", hGateway)
		if m == gw {
			t.Logf("client1 saw %d gratuitous ARP(s) from the pair; its gateway entry is the pair's %s again", defended, m)
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("client1's gateway entry is %s 5 s after the forged claim, want the pair's %s (client2 is %s)", m, gw, h.c2MAC)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	tr := h.streamsAlive(t)
	t.Logf("streams: %d alive, longest gap %.1f ms", tr.Alive, tr.LongestGap)
}

// 4. Martian, spoofed and land sources from client2 towards server1: none
// may reach it, each counted under its reason; a control packet from
// client2's own address does reach it (so the watch works).
func (h *hostile) martians(t *testing.T) {
	act := h.active(t)
	gw := h.ifaceMAC(t, act, "inside")
	cases := []struct{ src, reason string }{
		{"127.0.0.1", "martian-source"},
		{"0.0.0.0", "martian-source"},
		{"224.0.0.5", "martian-source"},
		{hServer2, "rpf-violated"}, // an outside address on the inside
		{hServer1, "land-attack"},  // source == destination
	}
	var frames []map[string]any
	want := map[string]uint64{}
	for _, c := range cases {
		frames = append(frames, map[string]any{"kind": "udp", "smac": h.c2MAC, "dmac": gw, "src": c.src, "dst": hServer1,
			"sport": 40000, "dport": 9999, "payload": "martian " + c.src, "count": 3})
		want[c.reason] += 3
	}
	frames = append(frames, map[string]any{"kind": "udp", "smac": h.c2MAC, "dmac": gw, "src": hClient2, "dst": hServer1,
		"sport": 40000, "dport": 9999, "payload": "control", "count": 2})
	before := h.counters(t)
	var res struct {
		Sent int
		Seen []struct{ Src, Payload string }
	}
	h.forge(t, "send", map[string]any{"sniff_ns": ns("server1"), "sniff_dport": 9999, "send_ns": ns("client2"), "wait": 1.0, "frames": frames}, &res)
	control := 0
	for _, s := range res.Seen {
		if s.Payload == "control" {
			control++
			continue
		}
		t.Errorf("server1 received %q from %s", s.Payload, s.Src)
	}
	if control == 0 {
		t.Errorf("server1 saw not even the control packet: the watch is blind (%v)", res.Seen)
	}
	h.expectDrops(t, before, want)
	for _, u := range []string{"fw-a", "fw-b"} {
		_, cs := h.conns(t, u)
		for _, c := range cs {
			for _, k := range cases {
				if strings.HasPrefix(c.OrigSrc, k.src+":") && c.OrigDst == hServer1+":9999" {
					t.Errorf("%s: a connection from a martian source: %+v", u, c)
				}
			}
		}
	}
	t.Logf("server1 received %d of 2 control packets and none of %d forged", control, 3*len(cases))
}

// 5. IP options: loose source route and record route are dropped, Router
// Alert passes (as on an ASA).
func (h *hostile) ipOptions(t *testing.T) {
	act := h.active(t)
	gw := h.ifaceMAC(t, act, "inside")
	var frames []map[string]any
	for _, o := range []string{"lsrr", "rr", "ra", "none"} {
		frames = append(frames, map[string]any{"kind": "udp", "smac": h.c2MAC, "dmac": gw, "src": hClient2, "dst": hServer1,
			"sport": 40001, "dport": 9998, "payload": o, "options": o, "count": 3})
	}
	before := h.counters(t)
	var res struct {
		Sent int
		Seen []struct {
			Src, Payload string
			Options      int
		}
	}
	h.forge(t, "send", map[string]any{"sniff_ns": ns("server1"), "sniff_dport": 9998, "send_ns": ns("client2"), "wait": 1.0, "frames": frames}, &res)
	seen := map[string]int{}
	for _, s := range res.Seen {
		seen[s.Payload]++
	}
	t.Logf("server1 received, per option: %v (3 sent of each)", seen)
	if seen["lsrr"]+seen["rr"] > 0 {
		t.Errorf("source-route or record-route packets reached server1: %v", seen)
	}
	if seen["ra"] == 0 || seen["none"] == 0 {
		t.Errorf("Router Alert or option-less packets did not reach server1: %v", seen)
	}
	h.expectDrops(t, before, map[string]uint64{"ip-options": 6})
}

// 6. A 3000-byte ping crosses as fragments, reassembled virtually and
// forwarded; with DF set the sender's own 1500 MTU refuses it.
func (h *hostile) fragmentedPing(t *testing.T) {
	r := inNode(t, h.runDir, "client1", "ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "3000", "-M", "dont", hServer1)
	if r.code != 0 || !strings.Contains(r.stdout, " 3 received") {
		t.Errorf("ping -s 3000 -M dont: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("ping -s 3000 -M dont: %s", lastLines(r.stdout, 2))
	r = inNode(t, h.runDir, "client1", "ping", "-c", "1", "-W", "1", "-s", "3000", "-M", "do", hServer1)
	t.Logf("ping -s 3000 -M do: exit %d: %s", r.code, strings.TrimSpace(lastLines(r.stdout+r.stderr, 2)))
	if r.code == 0 {
		t.Errorf("ping -s 3000 -M do got an answer through a 1500-byte path")
	}
	r = inNode(t, h.runDir, "client2", "ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "3000", "-M", "dont", hServer2)
	if r.code != 0 || !strings.Contains(r.stdout, " 3 received") {
		t.Errorf("client2 ping -s 3000 -M dont server2 (static NAT): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// 7. SYN floods from client2 for 5 s each: from random (so martian or
// unroutable) sources to port 80, then from its own address to a port
// whose answers never come back (server1 blackholes client2's static
// address), so that every SYN leaves a half-open connection. The streams
// live, memory stays bounded, and the half-open connections stop at the
// per-client limit on the active and on the standby's copy. The second
// flood is not on port 80: HTTP connections are not replicated
// (http_replication false, as an ASA's default), and the standby's copy
// must be part of the check.
func (h *hostile) synFloods(t *testing.T) {
	act := h.active(t)
	rssA, rssB := h.rssKiB(t, "fw-a"), h.rssKiB(t, "fw-b")
	t.Logf("before the floods: VmRSS fw-a %d KiB, fw-b %d KiB; active %s", rssA, rssB, act)

	before := h.counters(t)
	r := inNode(t, h.runDir, "client2", "timeout", "5", "hping3", "-q", "-S", "--flood", "-p", "80", "--rand-source", hServer1)
	t.Logf("hping3 --rand-source: exit %d %s", r.code, lastLines(r.stderr+r.stdout, 2))
	h.expectDrops(t, before, map[string]uint64{"rpf-violated": 1000, "martian-source": 100})
	h.logFlood(t, "random sources", rssA, rssB)
	h.streamsAlive(t)

	// server1 never answers client2's static address: every SYN stays
	// half-open in the firewall.
	if out, err := exec.Command("ip", "-n", ns("server1"), "route", "add", "blackhole", hStatic2+"/32").CombinedOutput(); err != nil {
		t.Fatalf("blackhole route: %v %s", err, out)
	}
	defer exec.Command("ip", "-n", ns("server1"), "route", "del", "blackhole", hStatic2+"/32").Run()
	before = h.counters(t)
	r = inNode(t, h.runDir, "client2", "timeout", "5", "hping3", "-q", "-S", "--flood", "-p", "8443", hServer1)
	t.Logf("hping3 from client2's address: exit %d %s", r.code, lastLines(r.stderr+r.stdout, 2))
	h.expectDrops(t, before, map[string]uint64{"embryonic-limit": 1})
	time.Sleep(time.Second) // the standby applies the last records
	half := map[string]int{}
	for _, u := range []string{"fw-a", "fw-b"} {
		total, cs := h.conns(t, u)
		for _, c := range cs {
			if strings.HasPrefix(c.OrigSrc, hClient2+":") && c.OrigDst == hServer1+":8443" {
				half[u]++
			}
		}
		t.Logf("%s after the flood: %d connections, %d of them half-open from client2", u, total, half[u])
		// 20 streams, at most 1024 half-open from client2, and a few
		// in passing.
		if total > 20+1024+16 {
			t.Errorf("%s holds %d connections after a flood from one client, want at most %d", u, total, 20+1024+16)
		}
	}
	// A connection is replicated from SYN_RCVD on: the flood's SYNs,
	// never answered (port 8443 is blackholed), fill the active's
	// embryonic limit and never reach the state link.
	if half["fw-a"] < 1000 || half["fw-b"] != 0 {
		t.Errorf("half-open connections from client2: fw-a %d, fw-b %d: want the active at its limit (1024) and none on the standby (unanswered SYNs are not replicated)", half["fw-a"], half["fw-b"])
	}
	h.logFlood(t, "client2's own address", rssA, rssB)
	h.streamsAlive(t)
}

// logFlood logs, and bounds, the units' memory after a flood.
func (h *hostile) logFlood(t *testing.T, what string, rssA, rssB int) {
	t.Helper()
	a, b := h.rssKiB(t, "fw-a"), h.rssKiB(t, "fw-b")
	t.Logf("after the flood from %s: VmRSS fw-a %d KiB (%+d), fw-b %d KiB (%+d); %s", what, a, a-rssA, b, b-rssB, h.rolesString(h.failover(t)))
	const bound = 64 << 10 // KiB
	if a-rssA > bound || b-rssB > bound {
		t.Errorf("a unit grew by more than %d MiB during the flood", bound>>10)
	}
}

// 8. nmap SYN, ACK, FIN and Xmas scans of server1's first 1024 ports from
// client1. The SYN scan crosses (server1's closed ports answer RST, and the
// RSTs close the connections); ACK, FIN and Xmas probes open nothing, so
// the firewall drops them all (nmap sees no answer) and keeps nothing.
// The streams live throughout.
func (h *hostile) nmapScans(t *testing.T) {
	act := h.active(t)
	total0, _ := h.conns(t, act)
	for _, sc := range []struct {
		scan, shown, reason string
	}{
		{"-sS", "Not shown: 1024 closed", ""},
		{"-sA", "Not shown: 1024 filtered", "no-connection"},
		{"-sF", "Not shown: 1024 open|filtered", "invalid-tcp-flags"},
		{"-sX", "Not shown: 1024 open|filtered", "invalid-tcp-flags"},
	} {
		before := h.counters(t)
		// Probes that get no answer slow nmap down to minutes: hold its
		// pace up.
		r := inNode(t, h.runDir, "client1", "nmap", sc.scan, "-p", "1-1024", "-n", "-Pn", "-T4",
			"--max-retries", "1", "--min-rate", "2000", "--max-rtt-timeout", "200ms", hServer1)
		if r.code != 0 {
			t.Errorf("nmap %s: exit %d %s", sc.scan, r.code, r.stderr)
		}
		summary := regexp.MustCompile(`(?m)^Not shown: .*$`).FindString(r.stdout)
		if !strings.HasPrefix(summary, sc.shown) {
			t.Errorf("nmap %s: %q, want %q\n%s", sc.scan, summary, sc.shown, tail(r.stdout, 1500))
		}
		if sc.reason != "" {
			h.expectDrops(t, before, map[string]uint64{sc.reason: 1024})
		}
		time.Sleep(time.Second)
		line := fmt.Sprintf("nmap %s: %q", sc.scan, summary)
		for _, u := range []string{"fw-a", "fw-b"} {
			total, cs := h.conns(t, u)
			scanned := 0
			for _, c := range cs {
				if p, _ := strconv.Atoi(strings.TrimPrefix(c.OrigDst, hServer1+":")); c.Protocol == "tcp" && p >= 1 && p <= 1024 {
					scanned++
				}
			}
			line += fmt.Sprintf("; %s %d conns (%d before the scans), %d to scanned ports", u, total, total0, scanned)
			if scanned > 0 {
				t.Errorf("%s: nmap %s left %d connections to scanned ports a second later", u, sc.scan, scanned)
			}
		}
		t.Log(line)
		h.streamsAlive(t)
	}
}

// logTakeovers logs the units' role changes from their logs: the lab
// runs on a loaded 2-core machine, where a unit starved past unit_hold
// (100 ms) is taken over; the report says so rather than hiding it.
func (h *hostile) logTakeovers(t *testing.T) {
	for _, u := range []string{"fw-a", "fw-b"} {
		b, err := os.ReadFile(fmt.Sprintf("%s/hostile/%s.log", h.runDir, u))
		if err != nil {
			t.Logf("%s log: %v", u, err)
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "declared failed") || strings.Contains(l, "Active -> ") || strings.Contains(l, "-> Just Active") {
				t.Logf("%s: %s", u, l)
			}
		}
	}
}

// TestHostileLabIsDefault keeps testdata/hostile.yaml what TestHostile
// says it is: labs/default.yaml under another name (comments aside).
func TestHostileLabIsDefault(t *testing.T) {
	strip := func(path, name string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "#") {
				continue
			}
			if l == "name: "+name {
				l = "name: NAME"
			}
			keep = append(keep, l)
		}
		return strings.Join(keep, "\n")
	}
	if strip("../labs/default.yaml", "default") != strip("testdata/hostile.yaml", "hostile") {
		t.Errorf("testdata/hostile.yaml differs from labs/default.yaml beyond its name and comments: copy it again")
	}
}

// 9. A blind RST (any sequence number) forged from server2 as server1 on
// an idle connection just after a takeover. The new active adopted the
// connection from its replicated record, whose windows lag, and accepts
// each direction's first segment for pickup; a forged RST must still not
// end the connection on both units, which is what issue 11 was about.
func (h *hostile) rstAfterTakeover(t *testing.T) {
	arg, _ := json.Marshal(map[string]any{"server_ns": ns("server1"), "client_ns": ns("client1"), "server_ip": hServer1, "port": 7777, "hold": 12})
	idle := exec.Command(h.py, h.script, "idle", string(arg))
	var se strings.Builder
	idle.Stderr = &se
	out, err := idle.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idle.Process.Kill(); idle.Wait() })
	dec := json.NewDecoder(out)
	var opened struct {
		LocalPort int `json:"local_port"`
	}
	if err := dec.Decode(&opened); err != nil {
		t.Fatalf("idle connection: %v %s", err, se.String())
	}
	src := fmt.Sprintf("%s:%d", hClient1, opened.LocalPort)
	mapped := 0
	deadline := time.Now().Add(3 * time.Second)
	for mapped == 0 {
		_, cs := h.conns(t, "fw-b")
		for _, c := range cs {
			if c.OrigSrc == src && c.OrigDst == hServer1+":7777" && c.State == "ESTABLISHED" {
				mapped, _ = strconv.Atoi(strings.TrimPrefix(c.ReplyDst, hPAT+":"))
			}
		}
		if mapped == 0 && time.Now().After(deadline) {
			t.Fatalf("the idle connection %s -> %s:7777 never reached the standby", src, hServer1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// blindRST forges server1's RST with a sequence number guessed
	// blind, sends it to unit's outside interface, and checks that it was
	// dropped and changed neither unit's table.
	blindRST := func(unit, when string) {
		before := h.counters(t)
		var sent struct{ Sent int }
		h.forge(t, "send", map[string]any{
			"send_ns": ns("server2"),
			"frames": []map[string]any{
				{"kind": "tcp", "smac": h.s2MAC, "dmac": h.ifaceMAC(t, unit, "outside"), "src": hServer1, "dst": hPAT,
					"sport": 7777, "dport": mapped, "flags": "R", "seq": 0x5eed1234},
			},
		}, &sent)
		h.expectDrops(t, before, map[string]uint64{"tcp-rst-not-exact|tcp-seq-past-win": 1})
		after := h.counters(t)
		var moved []string
		for _, u := range []string{"fw-a", "fw-b"} {
			for k, v := range after.drops[u] {
				if d := v - before.drops[u][k]; d > 0 {
					moved = append(moved, fmt.Sprintf("%s %s +%d", u, k, d))
				}
			}
		}
		t.Logf("%s: drops while the blind RST went in: %v", when, moved)
		for _, u := range []string{"fw-a", "fw-b"} {
			if found := h.connState(t, u, src, hServer1+":7777"); found != "ESTABLISHED" {
				t.Errorf("%s: %s: idle connection %s -> %s:7777 is %q after a forged blind RST, want ESTABLISHED", when, u, src, hServer1, found)
			}
		}
	}

	from := h.active(t)
	blindRST(from, "before the takeover")
	to := map[string]string{"fw-a": "fw-b", "fw-b": "fw-a"}[from]
	mustFalab(t, h.runDir, "failover", "--to", to)
	waitActive(t, h.runDir, to)
	t.Logf("switched over %s -> %s; idle connection %s (PAT %d)", from, to, src, mapped)
	// The takeover itself must have kept the connection: what follows is
	// about the RST alone.
	for _, u := range []string{"fw-a", "fw-b"} {
		if st := h.connState(t, u, src, hServer1+":7777"); st != "ESTABLISHED" {
			t.Fatalf("%s: idle connection %s is %q after the takeover, before any forgery", u, src, st)
		}
	}
	blindRST(to, "after the takeover")
	var res struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("idle connection's end: %v %s", err, se.String())
	}
	t.Logf("idle connection after the forged RST: %+v", res)
	if !res.OK {
		t.Errorf("the idle connection no longer carries data: %s", res.Error)
	}
	h.streamsAlive(t)
}

// connState is the state of the connection origSrc -> origDst in unit's
// table ("" if there is none).
func (h *hostile) connState(t *testing.T, unit, origSrc, origDst string) string {
	t.Helper()
	_, cs := h.conns(t, unit)
	for _, c := range cs {
		if c.OrigSrc == origSrc && c.OrigDst == origDst {
			return c.State
		}
	}
	return ""
}

// helloFlood: with the failover link cut, each unit confirms the other on
// the data interfaces alone, every unit hold. Hosts on both data networks
// flood forged interface hellos in both units' names (a Go raw socket, about
// 50k frames a second per host here), far above the rate limit, while the
// link stays cut: two faults at once. No unit may take over. The per-source
// buckets keep the peer's own hellos out of the strangers' bucket
// (unit.TestProbeRateLimit proves that part exactly); this test is the
// whole pair's answer: the unit must not be starved by the flood itself.
// History: with a unit on two Ps, announced sendmmsg calls and the hellos
// read by both the data and the control socket, a CI run starved fw-a for
// 208 ms (1 run of 4; the flood was about 50k frames/s per host) and it
// stood down. With one P, a raw sendmmsg, a yield per full batch and the
// data socket filtering hellos out, the flood runs at 100-135k frames/s
// per host and 10 of 10 runs passed (59-63 of 60-77 rounds answered).
func (h *hostile) helloFlood(t *testing.T) {
	before := h.failover(t)
	mustFalab(t, h.runDir, "fault", "cut-failover")
	healed := false
	heal := func() {
		if !healed {
			healed = true
			mustFalab(t, h.runDir, "fault", "heal-failover")
		}
	}
	t.Cleanup(heal)
	macs := make([]net.HardwareAddr, 2)
	for i, m := range []string{h.c1MAC, h.s2MAC} {
		var err error
		if macs[i], err = net.ParseMAC(m); err != nil {
			t.Fatal(err)
		}
	}
	sent, err := floodHellos([]string{ns("client1"), ns("server2")}, macs, []string{"fw-a", "fw-b"}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	during := h.failover(t)
	heal()
	t.Logf("forged interface hellos sent per host in 3 s: %v; %s", sent, h.rolesString(during))
	limited := map[string]uint64{}
	for _, u := range before {
		limited[u.Unit] = u.HelloRejects.DataInterfaces.RateLimited
	}
	for i, u := range during {
		if u.Term != before[i].Term || u.State != before[i].State {
			h.logTakeovers(t)
			t.Fatalf("%s went from %s (term %d) to %s (term %d) under the flood", u.Unit, before[i].State, before[i].Term, u.State, u.Term)
		}
		got := u.HelloRejects.DataInterfaces.RateLimited - limited[u.Unit]
		t.Logf("%s: %d forged hellos rate-limited; in its log %d confirmations, %d answered rounds", u.Unit, got,
			h.logCount(t, u.Unit, "confirming on the data interfaces"), h.logCount(t, u.Unit, "peer answered round"))
		if got == 0 {
			t.Errorf("%s rate-limited no forged hello: the flood never reached the limit", u.Unit)
		}
	}
}

// logCount counts the lines of a unit's log that contain substr.
func (h *hostile) logCount(t *testing.T, unit, substr string) int {
	b, err := os.ReadFile(fmt.Sprintf("%s/hostile/%s.log", h.runDir, unit))
	if err != nil {
		t.Logf("%s log: %v", unit, err)
		return -1
	}
	return strings.Count(string(b), substr)
}
