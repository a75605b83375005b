package tui

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/falab/falab/arpcheck"
	"github.com/falab/falab/lab"
)

// wireRaw is the header's wire line with its styles (the third line).
func (hs *harness) wireRaw() string { return strings.Split(hs.m.Render(), "\n")[2] }

// wireText is the header's wire line without styles.
func (hs *harness) wireText() string { return strings.TrimRight(ansi.Strip(hs.wireRaw()), " ") }

func answer(host, gw string, replies, doubled int, macs ...arpcheck.MACCount) lab.WireAnswer {
	return lab.WireAnswer{Host: host, Interface: "eth0", Result: arpcheck.Result{
		Target: netip.MustParseAddr(gw), Requests: 3, Replies: replies, MACs: macs, DoubledRounds: doubled}}
}

var (
	macA = arpcheck.MACCount{MAC: "02:00:00:00:0a:01", Count: 3}
	macB = arpcheck.MACCount{MAC: "02:00:00:00:0b:01", Count: 3}
)

func TestWireLine(t *testing.T) {
	okServer := answer("server1", "198.18.2.1", 3, 0, arpcheck.MACCount{MAC: "00:00:0c:9f:f0:02", Count: 3})
	tests := []struct {
		name    string
		answers []lab.WireAnswer
		err     error
		want    string // the stripped line
		alarm   string // a part rendered in the alarm style (red)
		warn    string // a part rendered in the warning style (yellow)
	}{
		{name: "one unit answers each gateway", answers: []lab.WireAnswer{answer("client1", "198.18.1.1", 3, 0, macA), okServer},
			want: "wire: client1 ✓ 02:00:00:00:0a:01 · server1 ✓ 00:00:0c:9f:f0:02"},
		{name: "two units answer: first and red", answers: []lab.WireAnswer{okServer, answer("client1", "198.18.1.1", 6, 3, macA, macB)},
			want:  "wire: client1 ✗ 2 MACs answer: two units answer · server1 ✓ 00:00:0c:9f:f0:02",
			alarm: "client1 ✗ 2 MACs answer: two units answer"},
		{name: "two units with the virtual MAC", answers: []lab.WireAnswer{answer("client1", "198.18.1.1", 6, 3, arpcheck.MACCount{MAC: macA.MAC, Count: 6}), okServer},
			want:  "wire: client1 ✗ every request answered twice: two units answer with the virtual MAC · server1 ✓ 00:00:0c:9f:f0:02",
			alarm: "client1 ✗ every request answered twice: two units answer with the virtual MAC"},
		{name: "no unit answers", answers: []lab.WireAnswer{answer("client1", "198.18.1.1", 0, 0), okServer},
			want:  "wire: client1 ✗ no reply: no unit answers · server1 ✓ 00:00:0c:9f:f0:02",
			alarm: "client1 ✗ no reply: no unit answers"},
		{name: "the check fails", err: errors.New("client1: ARP for its gateway 198.18.1.1: operation not permitted"),
			want: "wire: check failed: client1: ARP for its gateway 198.18.1.1: operation not permitted",
			warn: "check failed: client1: ARP for its gateway 198.18.1.1: operation not permitted"},
		{name: "the check fails after one host", answers: []lab.WireAnswer{answer("client1", "198.18.1.1", 3, 0, macA)}, err: errors.New("server1: no such namespace"),
			want: "wire: check failed: server1: no such namespace · client1 ✓ 02:00:00:00:0a:01",
			warn: "check failed: server1: no such namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(0, 0)
			src.setWire(tt.answers, tt.err)
			hs := newHarness(t, src, 120, 24)
			if got := hs.wireText(); got != "wire: asking each host's gateway by ARP…" {
				t.Errorf("before the first check: %q", got)
			}
			hs.tick(100 * time.Millisecond)
			if got := hs.wireText(); got != tt.want {
				t.Errorf("wire line:\n got %q\nwant %q", got, tt.want)
			}
			raw := hs.wireRaw()
			if tt.alarm != "" && !strings.Contains(raw, styleErr.Render(tt.alarm)) {
				t.Errorf("%q is not in the alarm style: %q", tt.alarm, raw)
			}
			if tt.warn != "" && !strings.Contains(raw, styleWarn.Render(tt.warn)) {
				t.Errorf("%q is not in the warning style: %q", tt.warn, raw)
			}
			if tt.alarm == "" && strings.Contains(raw, "✗") {
				t.Errorf("a healthy or failed check shows ✗: %q", raw)
			}
			checkSize(t, hs.screen(), 120, 24)
		})
	}
}

// TestWireLineNarrow: on a narrow terminal the healthy hosts lose their
// MACs first, and a host in trouble stays on screen even when it is last.
func TestWireLineNarrow(t *testing.T) {
	src := newFakeSource(0, 0)
	var as []lab.WireAnswer
	for _, h := range []string{"client1", "client2", "server1"} {
		as = append(as, answer(h, "198.18.1.1", 3, 0, macA))
	}
	src.setWire(append(as, answer("server2", "198.18.2.1", 6, 3, macA, macB)), nil)
	hs := newHarness(t, src, 80, 24)
	hs.tick(100 * time.Millisecond)
	want := "wire: server2 ✗ 2 MACs answer: two units answer · ✓ client1 client2 server1"
	if got := hs.wireText(); got != want {
		t.Errorf("wire line at 80 columns:\n got %q\nwant %q", got, want)
	}
	checkSize(t, hs.screen(), 80, 24)
}

// TestWireModelsTheUnits drives the fake's wire from its units: a second
// active answers every request twice with the virtual MAC, and with the
// active frozen nobody answers.
func TestWireModelsTheUnits(t *testing.T) {
	hs := newHarness(t, newFakeSource(0, 0), 120, 24)
	hs.tick(100 * time.Millisecond)
	if got := hs.wireText(); got != "wire: client1 ✓ 00:00:0c:9f:f0:01 · server1 ✓ 00:00:0c:9f:f0:02" {
		t.Fatalf("healthy pair: %q", got)
	}
	hs.src.mu.Lock()
	hs.src.units["fw-b"].status.Active, hs.src.units["fw-b"].status.State = true, "Active"
	hs.src.mu.Unlock()
	hs.tick(wireMinGap) // the TUI sees the role change: a check starts
	if got := hs.wireText(); !strings.HasPrefix(got, "wire: client1 ✗ every request answered twice: two units answer") {
		t.Errorf("two actives: %q", got)
	}
	hs.src.mu.Lock()
	hs.src.units["fw-b"].status.Active, hs.src.units["fw-b"].status.State = false, "Standby Ready"
	hs.src.mu.Unlock()
	hs.tick(time.Second) // fw-a is the only active again
	hs.press("z", "y")
	hs.tick(wireMinGap)
	if got := hs.wireText(); !strings.HasPrefix(got, "wire: client1 ✗ no reply: no unit answers · server1 ✗ no reply") {
		t.Errorf("active frozen: %q", got)
	}
}

// runHolding runs cmd like harness.run, but keeps the wire checks' results
// back instead of delivering them: the checks it started are still running.
func (hs *harness) runHolding(cmd tea.Cmd, held *[]wireMsg) {
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case nil, tea.QuitMsg:
	case tea.BatchMsg:
		for _, c := range msg {
			hs.runHolding(c, held)
		}
	case wireMsg:
		*held = append(*held, msg)
	default:
		hs.sendHolding(msg, held)
	}
}

func (hs *harness) sendHolding(msg tea.Msg, held *[]wireMsg) {
	_, cmd := hs.m.Update(msg)
	hs.runHolding(cmd, held)
}

func (hs *harness) tickHolding(d time.Duration, held *[]wireMsg) {
	hs.clock = hs.clock.Add(d)
	hs.src.setNow(hs.clock)
	hs.sendHolding(tickMsg{at: hs.clock}, held)
}

func (hs *harness) wireCalls() int {
	hs.src.mu.Lock()
	defer hs.src.mu.Unlock()
	return hs.src.wireCalls
}

// TestWireOneAtATime: while a check runs, no tick, fault or role change
// starts another; a fault seen meanwhile starts the next one as soon as
// the running one answers (before wireEvery), and then the pace is
// wireEvery again.
func TestWireOneAtATime(t *testing.T) {
	hs := newHarness(t, newFakeSource(1, 0), 80, 24)
	var held []wireMsg
	hs.tickHolding(100*time.Millisecond, &held)
	if n := hs.wireCalls(); n != 1 || len(held) != 1 {
		t.Fatalf("first tick: %d checks started, %d running; want 1", n, len(held))
	}
	for range 30 { // 3s: past wireEvery
		hs.tickHolding(100*time.Millisecond, &held)
	}
	if n := hs.wireCalls(); n != 1 {
		t.Fatalf("%d checks started while the first ran for 3s, want 1", n)
	}
	var next []wireMsg
	hs.sendHolding(held[0], &next)
	hs.tickHolding(100*time.Millisecond, &next)
	if n := hs.wireCalls(); n != 2 || len(next) != 1 {
		t.Fatalf("after the late check answered: %d checks started, want 2", n)
	}

	// A fault and a role change while the second check runs.
	hs.sendHolding(keyMsg("K"), &next)
	hs.sendHolding(keyMsg("y"), &next)
	for range 10 {
		hs.tickHolding(100*time.Millisecond, &next)
	}
	if b := hs.badges(); !strings.Contains(b, "fw-b secondary  Active") {
		t.Fatalf("the kill did not take effect: %s", b)
	}
	if n := hs.wireCalls(); n != 2 || len(next) != 1 {
		t.Fatalf("a fault and a role change with a check running: %d checks started, want 2", n)
	}
	// It answers 1s after it started: the next starts at once.
	var third []wireMsg
	hs.sendHolding(next[0], &third)
	if n := hs.wireCalls(); n != 3 || len(third) != 1 {
		t.Fatalf("after the check running at the fault answered: %d checks started, want 3", n)
	}
	var none []wireMsg
	hs.sendHolding(third[0], &none)
	hs.tickHolding(wireEvery-100*time.Millisecond, &none)
	if n := hs.wireCalls(); n != 3 {
		t.Errorf("%d checks started before wireEvery with nothing happening, want 3", n)
	}
	hs.tickHolding(100*time.Millisecond, &none)
	if n := hs.wireCalls(); n != 4 {
		t.Errorf("%d checks started after wireEvery, want 4", n)
	}
	if got := hs.wireText(); !strings.HasPrefix(got, "wire: client1 ✓") {
		t.Errorf("after the takeover: %q", got)
	}
}

// TestWireAtRoleChange: a role change the TUI sees (here made behind its
// back, with no key pressed) starts a check at once, before wireEvery.
func TestWireAtRoleChange(t *testing.T) {
	hs := newHarness(t, newFakeSource(0, 0), 80, 24)
	hs.tick(100 * time.Millisecond)
	hs.tick(500 * time.Millisecond)
	if n := hs.wireCalls(); n != 1 {
		t.Fatalf("%d checks in 600ms with nothing happening, want 1", n)
	}
	if _, err := hs.src.Inject(context.Background(), lab.Fault{Kind: lab.FaultManual, Target: "fw-b"}); err != nil {
		t.Fatal(err)
	}
	hs.tick(100 * time.Millisecond)
	if n := hs.wireCalls(); n != 2 {
		t.Errorf("%d checks after a role change, want 2", n)
	}
}

// TestWireNoGateway: a lab whose hosts have no gateway has no wire line
// and never checks.
func TestWireNoGateway(t *testing.T) {
	src := newFakeSource(0, 0)
	for i := range src.info.Hosts {
		src.info.Hosts[i].Gateway = netip.Addr{}
	}
	hs := newHarness(t, src, 80, 24)
	hs.tick(100 * time.Millisecond)
	hs.press("K", "y")
	hs.tick(100 * time.Millisecond)
	if n := hs.wireCalls(); n != 0 {
		t.Errorf("%d wire checks in a lab without gateways", n)
	}
	if strings.Contains(hs.screen(), "wire") {
		t.Errorf("a lab without gateways shows the wire:\n%s", hs.screen())
	}
	checkSize(t, hs.screen(), 80, 24)
}

// TestGoldenHostsWire is the Hosts tab with the wire's full verdicts: one
// gateway answered by two units (the long verdict wraps), the other by
// one.
func TestGoldenHostsWire(t *testing.T) {
	src := newFakeSource(0, 0)
	src.setWire([]lab.WireAnswer{
		answer("client1", "198.18.1.1", 6, 3, macA, macB),
		answer("server1", "198.18.2.1", 3, 0, arpcheck.MACCount{MAC: "00:00:0c:9f:f0:02", Count: 3}),
	}, nil)
	hs := newHarness(t, src, 80, 24)
	hs.press("0", "tab") // Hosts, the eleventh tab
	hs.tick(100 * time.Millisecond)
	hs.tick(300 * time.Millisecond)
	for _, want := range []string{
		"wire ✗ 198.18.1.1: 2 MACs answer (02:00:00:00:0a:01 x3, 02:00:00:00:0b:01",
		"x3): two units answer",
		"wire ✓ 198.18.2.1: one MAC answers (00:00:0c:9f:f0:02 x3)",
		"last check 300ms ago",
	} {
		if !strings.Contains(hs.screen(), want) {
			t.Errorf("hosts tab lacks %q", want)
		}
	}
	hs.golden("hosts-wire-80x24")

	src.setWire(nil, errors.New("client1: ARP for its gateway 198.18.1.1: operation not permitted"))
	hs.tick(2 * time.Second)
	if !strings.Contains(hs.screen(), "wire check failed 0ms ago: client1: ARP for its gateway") {
		t.Errorf("hosts tab does not say the check failed:\n%s", hs.screen())
	}
}
