package tui

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/google/go-cmp/cmp"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/render"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// harness drives a Model the way the Bubble Tea loop would, but in the
// test's goroutine and on a manual clock: commands run at once and their
// messages go straight back into Update. Ticks come only from tickAt.
type harness struct {
	t     testing.TB
	m     *Model
	src   *fakeSource
	clock time.Time
}

func newHarness(t testing.TB, src *fakeSource, w, h int) *harness {
	t.Helper()
	hs := &harness{t: t, src: src, clock: t0}
	hs.m = New(context.Background(), src, t0, Options{Location: time.UTC})
	hs.m.tick = func(time.Duration) tea.Cmd { return nil } // the test is the clock
	hs.send(tea.WindowSizeMsg{Width: w, Height: h})
	return hs
}

func (hs *harness) send(msg tea.Msg) {
	_, cmd := hs.m.Update(msg)
	hs.run(cmd)
}

func (hs *harness) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case nil, tea.QuitMsg:
	case tea.BatchMsg:
		for _, c := range msg {
			hs.run(c)
		}
	default:
		hs.send(msg)
	}
}

// tick advances the manual clock by d and delivers a tick.
func (hs *harness) tick(d time.Duration) {
	hs.clock = hs.clock.Add(d)
	hs.src.setNow(hs.clock)
	hs.send(tickMsg{at: hs.clock})
}

// press sends keys: single characters, or names like "pgdown" and "esc".
func (hs *harness) press(keys ...string) {
	for _, k := range keys {
		hs.send(keyMsg(k))
	}
}

func keyMsg(k string) tea.KeyPressMsg {
	named := map[string]rune{"pgdown": tea.KeyPgDown, "pgup": tea.KeyPgUp, "esc": tea.KeyEscape,
		"enter": tea.KeyEnter, "tab": tea.KeyTab, "down": tea.KeyDown, "up": tea.KeyUp,
		"backspace": tea.KeyBackspace, "end": tea.KeyEnd, "home": tea.KeyHome}
	if c, ok := named[k]; ok {
		return tea.KeyPressMsg{Code: c}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

// screen is the rendered view without colours.
func (hs *harness) screen() string { return ansi.Strip(hs.m.Render()) }

// golden compares the screen with testdata/NAME.golden.
func (hs *harness) golden(name string) {
	hs.t.Helper()
	got := hs.screen()
	checkSize(hs.t, got, hs.m.width, hs.m.height)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			hs.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		hs.t.Fatalf("%v (run go test ./tui -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		hs.t.Errorf("screen %s differs from its golden file (-want +got):\n%s\ngot:\n%s", name, diff, got)
	}
}

// checkSize fails unless the screen is exactly h lines of w cells.
func checkSize(t testing.TB, screen string, w, h int) {
	t.Helper()
	lines := strings.Split(screen, "\n")
	if len(lines) != h {
		t.Errorf("screen has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if got := ansi.StringWidth(l); got != w {
			t.Errorf("line %d is %d cells wide, want %d: %q", i+1, got, w, l)
		}
	}
}

func TestGoldenTabs(t *testing.T) {
	sizes := []struct {
		name string
		w, h int
	}{{"80x24", 80, 24}, {"120x40", 120, 40}}
	// In tab order: key 1 is the first, 0 the tenth, tab the next.
	tabs := []string{"conns", "xlate", "arp", "bridge", "routes", "interfaces", "drops", "gtp", "vpn", "voice", "hosts", "timeline", "traffic"}
	for _, sz := range sizes {
		hs := newHarness(t, newFakeSource(12, 2), sz.w, sz.h)
		hs.tick(100 * time.Millisecond)
		for i, tab := range tabs {
			t.Run(sz.name+"/"+tab, func(t *testing.T) {
				hs.t = t
				if i < 10 {
					hs.press(fmt.Sprint((i + 1) % 10))
				} else {
					hs.press("tab")
				}
				hs.tick(100 * time.Millisecond)
				hs.golden(tab + "-" + sz.name)
			})
		}
	}
}

func TestGoldenHelpAndLinks(t *testing.T) {
	hs := newHarness(t, newFakeSource(3, 0), 80, 24)
	hs.tick(100 * time.Millisecond)
	hs.press("?")
	hs.golden("help-80x24")
	hs.press("x") // any key closes
	hs.press("l", "down")
	hs.golden("links-80x24")
	hs.press("enter", "y")
	hs.tick(100 * time.Millisecond)
	want := []lab.Fault{{Kind: lab.FaultLinkDown, Target: "fw-a:outside"}}
	if diff := cmp.Diff(want, hs.src.injected); diff != "" {
		t.Errorf("faults injected (-want +got):\n%s", diff)
	}
}

// badges is the first line of the screen, where the units' states are.
func (hs *harness) badges() string { return strings.SplitN(hs.screen(), "\n", 2)[0] }

func TestKeyFailoverSwapsBadges(t *testing.T) {
	hs := newHarness(t, newFakeSource(5, 0), 80, 24)
	hs.tick(100 * time.Millisecond)
	before := hs.badges()
	for _, want := range []string{"fw-a primary  Active ", "fw-b secondary  Standby Ready "} {
		if !strings.Contains(before, want) {
			t.Fatalf("before failover the header lacks %q:\n%s", want, before)
		}
	}
	hs.press("f", "y")
	hs.tick(100 * time.Millisecond)
	after := hs.badges()
	for _, want := range []string{"fw-a primary  Standby Ready ", "fw-b secondary  Active "} {
		if !strings.Contains(after, want) {
			t.Errorf("after f the header lacks %q:\n%s", want, after)
		}
	}
	if diff := cmp.Diff([]lab.Fault{{Kind: lab.FaultManual, Target: "fw-b"}}, hs.src.injected); diff != "" {
		t.Errorf("faults injected (-want +got):\n%s", diff)
	}
	hs.golden("after-failover-80x24")
	// The lab records the command at the fault, fw-b is Active 11ms later.
	if !strings.Contains(hs.screen(), "fw-b took over in 11ms: operator command") {
		t.Errorf("no takeover banner after a manual failover:\n%s", hs.screen())
	}
}

func TestKillShowsTakeoverBanner(t *testing.T) {
	hs := newHarness(t, newFakeSource(5, 0), 80, 24)
	hs.tick(100 * time.Millisecond)
	hs.press("K", "y")
	hs.tick(100 * time.Millisecond)
	hs.tick(100 * time.Millisecond)
	// The fault is recorded at the kill, the first sign on fw-b 1ms later
	// and Active 10ms after that: 11ms from the fault.
	want := "fw-b took over in 11ms: peer process closed the failover connection"
	if !strings.Contains(hs.screen(), want) {
		t.Fatalf("screen lacks the banner %q:\n%s", want, hs.screen())
	}
	if b := hs.badges(); !strings.Contains(b, "fw-a primary  no answer ") || !strings.Contains(b, "fw-b secondary  Active ") {
		t.Errorf("badges after the kill: %s", b)
	}
	hs.golden("after-kill-80x24")

	// esc dismisses the banner, and it stays dismissed.
	hs.press("esc")
	hs.tick(100 * time.Millisecond)
	if strings.Contains(hs.screen(), "took over") {
		t.Errorf("banner still shown after esc:\n%s", hs.screen())
	}

	// r restarts the dead unit; it comes back as standby.
	hs.press("r")
	hs.tick(100 * time.Millisecond)
	if b := hs.badges(); !strings.Contains(b, "fw-a primary  Standby Ready ") {
		t.Errorf("after r: %s", b)
	}
	got := hs.src.injected
	want2 := []lab.Fault{{Kind: lab.FaultKill, Target: "fw-a"}, {Kind: lab.FaultRestart, Target: "fw-a"}}
	if diff := cmp.Diff(want2, got); diff != "" {
		t.Errorf("faults injected (-want +got):\n%s", diff)
	}
}

func TestMerge(t *testing.T) {
	c := func(i int) api.Conn { return fakeConn(i) }
	type result struct {
		Keys  []string
		Marks string
	}
	tests := []struct {
		name            string
		active, standby []api.Conn
		standbyOK       bool
		window          bool
		want            result
	}{
		{"in step", []api.Conn{c(0), c(1)}, []api.Conn{c(1), c(0)}, true, false,
			result{[]string{"1024", "1025"}, "✓✓"}},
		{"missing and extra", []api.Conn{c(0), c(1)}, []api.Conn{c(1), c(2)}, true, false,
			result{[]string{"1024", "1025", "1026"}, "✗✓+"}},
		{"standby down", []api.Conn{c(0)}, nil, false, false,
			result{[]string{"1024"}, "?"}},
		{"window: not found is unknown, extras hidden", []api.Conn{c(0), c(1)}, []api.Conn{c(1), c(2)}, true, true,
			result{[]string{"1024", "1025"}, "?✓"}},
		{"empty", nil, nil, true, false, result{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := merge(tt.active, tt.standby, tt.standbyOK, tt.window, render.Conns.Key, render.Conns.PairCells)
			var got result
			for _, r := range rows {
				_, port, _ := strings.Cut(r.cells[2], ":")
				got.Keys = append(got.Keys, port)
				got.Marks += r.mark.String()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("merge (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHugeTableIsPaged(t *testing.T) {
	const n = 100_000
	hs := newHarness(t, newFakeSource(n, 0), 80, 24)
	hs.tick(100 * time.Millisecond) // statuses: the counts say the table is huge
	hs.tick(time.Second)
	tab := hs.m.tables[0]
	if !tab.data.paged {
		t.Fatalf("a table of %d entries is not paged", n)
	}
	rows := tab.pageRows()
	if got := hs.src.maxLimit["fw-a"]; got != rows {
		t.Errorf("largest page read of the active: %d entries, want one screen (%d)", got, rows)
	}
	if got := hs.src.maxLimit["fw-b"]; got > 2*4000+rows {
		t.Errorf("largest page read of the standby: %d entries, want at most its window", got)
	}
	hs.press("pgdown", "pgdown")
	if got, want := tab.data.offset, 2*rows; got != want {
		t.Errorf("after two pgdown the page starts at %d, want %d", got, want)
	}
	hs.press("end")
	if got, want := tab.data.offset, n-rows; got != want {
		t.Errorf("after end the page starts at %d, want %d", got, want)
	}
	sum := strings.Split(hs.screen(), "\n")[hs.m.height-3]
	if want := fmt.Sprintf("rows %d-100000 of 100000", n-rows+1); !strings.Contains(sum, want) {
		t.Errorf("summary line: %q", sum)
	}
}

func TestFilterAndSort(t *testing.T) {
	hs := newHarness(t, newFakeSource(12, 0), 80, 24)
	hs.tick(100 * time.Millisecond)
	hs.press("/", ":", "1", "0", "3", "enter") // ports 1030..1035 of 1024+i
	tab := hs.m.tables[0]
	var got []string
	for _, i := range tab.shown {
		got = append(got, tab.data.rows[i].cells[2])
	}
	want := []string{"198.18.1.11:1030", "198.18.1.11:1031", "198.18.1.11:1032", "198.18.1.11:1033", "198.18.1.11:1034", "198.18.1.11:1035"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("filter :103 (-want +got):\n%s", diff)
	}
	// s cycles: Proto ↑, Proto ↓, In ↑, In ↓, Source ↑, Source ↓.
	for range 6 {
		hs.press("s")
	}
	if tab.sortCol != 2 || tab.sortAsc {
		t.Fatalf("after six s: sort column %d ascending %v, want 2 descending", tab.sortCol, tab.sortAsc)
	}
	first := tab.data.rows[tab.shown[0]].cells[2]
	if first != "198.18.1.11:1035" {
		t.Errorf("first row sorted by source descending: %s", first)
	}
	hs.press("/", "esc")
	if len(tab.shown) != 13 {
		t.Errorf("after esc the filter still hides rows: %d shown, want 13", len(tab.shown))
	}
}

func TestHostMACChangeFlashes(t *testing.T) {
	hs := newHarness(t, newFakeSource(0, 0), 80, 24)
	hs.press("0", "tab") // Hosts, the eleventh tab
	hs.tick(100 * time.Millisecond)
	gw := netip.MustParseAddr("198.18.1.1")
	hs.src.setHostMAC("client1", gw, "02:00:00:00:0b:01")
	hs.tick(100 * time.Millisecond)
	want := "MAC 00:00:0c:9f:f0:01 -> 02:00:00:00:0b:01"
	if !strings.Contains(hs.screen(), want) {
		t.Fatalf("hosts tab lacks %q:\n%s", want, hs.screen())
	}
	hs.golden("hosts-flash-80x24")
	hs.tick(flashFor + time.Second)
	if strings.Contains(hs.screen(), want) {
		t.Errorf("the flash is still shown after %v", flashFor)
	}
}

func TestTimelineMergesByTime(t *testing.T) {
	hs := newHarness(t, newFakeSource(0, 0), 80, 24)
	hs.tick(100 * time.Millisecond)
	hs.press("K", "y")
	hs.tick(100 * time.Millisecond)
	var got []string
	for _, e := range hs.m.timeline.events {
		got = append(got, e.time.Format("05.000")+" "+e.unit+" "+e.kind)
	}
	want := []string{
		"24.000 fw-a start", "24.000 fw-a transition", "24.000 fw-b start", "24.000 fw-b transition",
		"24.001 fw-a transition", "24.001 fw-b transition", "24.002 fw-b transition",
		"24.100 lab fault", "24.101 fw-b sync", "24.111 fw-b transition", "24.111 fw-b transition",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
}

func TestTooSmall(t *testing.T) {
	hs := newHarness(t, newFakeSource(0, 0), 40, 10)
	got := hs.screen()
	checkSize(t, got, 40, 10)
	if !strings.HasPrefix(got, "falab: the terminal is 40x10") {
		t.Errorf("too-small screen: %q", got)
	}
}

func TestQuitLeavesLab(t *testing.T) {
	hs := newHarness(t, newFakeSource(0, 0), 80, 24)
	_, cmd := hs.m.Update(keyMsg("q"))
	if cmd == nil {
		t.Fatal("q returned no command")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Errorf("q does not quit")
	}
	if !hs.m.Quitting() || len(hs.src.injected) != 0 {
		t.Errorf("quitting %v, faults %v: q must quit and touch nothing", hs.m.Quitting(), hs.src.injected)
	}
}

func TestFirstSign(t *testing.T) {
	at := t0.Add(time.Minute)
	ms := func(d int) time.Time { return at.Add(time.Duration(d) * time.Millisecond) }
	ev := func(when time.Time, u, kind string) api.Event { return api.Event{Time: when, Unit: u, Kind: kind} }
	tests := []struct {
		name   string
		events []api.Event
		prev   time.Time
		want   time.Time
	}{
		{"lab fault wins", []api.Event{ev(ms(-3000), "fw-b", "link"), ev(ms(-8), "lab", "fault"), ev(ms(-7), "fw-b", "sync")}, t0, ms(-8)},
		{"latest fault of several", []api.Event{ev(ms(-4000), "lab", "fault"), ev(ms(-20), "lab", "fault")}, t0, ms(-20)},
		{"run of own warnings, old event left out", []api.Event{
			ev(ms(-2300), "fw-b", "link"), ev(ms(-120), "fw-b", "hello"), ev(ms(-20), "fw-b", "probe"), ev(ms(-5), "fw-b", "peer-failed")}, t0, ms(-120)},
		{"quiet kinds and the other unit do not count", []api.Event{
			ev(ms(-50), "fw-b", "garp"), ev(ms(-40), "fw-a", "sync"), ev(ms(-30), "lab", "traffic")}, t0, time.Time{}},
		{"nothing before the previous transition", []api.Event{ev(ms(-50), "lab", "fault")}, ms(-10), time.Time{}},
		{"nothing older than the window", []api.Event{ev(at.Add(-signWindow-time.Millisecond), "lab", "fault")}, t0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(context.Background(), newFakeSource(0, 0), t0, Options{Location: time.UTC})
			m.timeline.add(tt.events)
			got := m.firstSign("fw-b", tt.prev, at)
			if !got.Equal(tt.want) {
				t.Errorf("first sign at %v, want %v", got.Sub(at), tt.want.Sub(at))
			}
		})
	}
}

func TestFreezeAndThaw(t *testing.T) {
	hs := newHarness(t, newFakeSource(1, 0), 80, 24)
	hs.tick(100 * time.Millisecond)
	hs.press("t")
	if len(hs.src.injected) != 0 {
		t.Fatalf("t with nothing frozen injected %v", hs.src.injected)
	}
	hs.press("z", "y")
	hs.tick(100 * time.Millisecond)
	if b := hs.badges(); !strings.Contains(b, "fw-a primary  frozen (SIGSTOP) ") {
		t.Errorf("after z the frozen active still answers: %s", b)
	}
	hs.press("t")
	hs.tick(100 * time.Millisecond)
	if b := hs.badges(); !strings.Contains(b, "fw-a primary  Active ") {
		t.Errorf("after t: %s", b)
	}
	want := []lab.Fault{{Kind: lab.FaultFreeze, Target: "fw-a"}, {Kind: lab.FaultThaw, Target: "fw-a"}}
	if diff := cmp.Diff(want, hs.src.injected); diff != "" {
		t.Errorf("faults injected (-want +got):\n%s", diff)
	}
}
