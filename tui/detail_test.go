package tui

import (
	"strings"
	"testing"
	"time"
)

// TestGoldenDetailConn: enter opens the connection under the cursor: its
// real and mapped tuples, its NAT mapping with the xlate that holds it on
// each unit, both units' copies side by side and what is known of when it
// was replicated; esc closes it.
func TestGoldenDetailConn(t *testing.T) {
	for _, sz := range []struct {
		name string
		w, h int
	}{{"80x24", 80, 24}, {"120x40", 120, 40}} {
		t.Run(sz.name, func(t *testing.T) {
			hs := newHarness(t, newFakeSource(12, 2), sz.w, sz.h)
			hs.tick(100 * time.Millisecond)
			hs.press("enter")
			hs.tick(100 * time.Millisecond)
			hs.golden("detail-conn-" + sz.name)
			hs.press("esc")
			if hs.m.mode != modeNormal || strings.Contains(hs.screen(), "Connections detail") {
				t.Errorf("esc did not close the detail")
			}
			hs.press("j", "enter")
			if s := hs.screen(); !strings.Contains(s, "198.18.1.11:1025") || strings.Contains(s, "198.18.1.11:1024 ") {
				t.Errorf("the detail is not of the cursor's row (the second):\n%s", s)
			}
		})
	}
}

// TestDetailWhereTheRowIs: the detail says in words what the row's mark
// says: not on the standby, local only by policy with the reason.
func TestDetailWhereTheRowIs(t *testing.T) {
	src := newFakeSource(12, 3)
	src.conns["fw-a"][11].NotReplicated = true
	hs := newHarness(t, src, 120, 40)
	hs.tick(100 * time.Millisecond)
	hs.press("end", "k", "enter") // the last of the active's: local only
	s := hs.screen()
	for _, want := range []string{"where: local only (http_replication off)", "repl    no: local only (http_replication off)"} {
		if !strings.Contains(s, want) {
			t.Errorf("local-only conn: detail lacks %q:\n%s", want, s)
		}
	}
	hs.press("enter", "k", "enter") // the one before: missing
	if s := hs.screen(); !strings.Contains(s, "where: not on the standby") {
		t.Errorf("missing conn: detail lacks where:\n%s", s)
	}
	hs.press("K") // a destructive key does nothing in the detail view
	if len(hs.src.injected) != 0 || hs.m.mode != modeDetail {
		t.Errorf("K in the detail view: injected %v, mode %d", hs.src.injected, hs.m.mode)
	}
}

// TestGoldenDetailInterface: on the other tabs the detail is every field
// of the row on both units.
func TestGoldenDetailInterface(t *testing.T) {
	hs := newHarness(t, newFakeSource(3, 0), 120, 40)
	hs.tick(100 * time.Millisecond)
	hs.press("6")
	hs.tick(100 * time.Millisecond)
	hs.press("enter")
	hs.golden("detail-interface-120x40")
}

// TestDetailFollowsTheRow: the open detail shows each new read of its
// row, and says so when the row leaves the table.
func TestDetailFollowsTheRow(t *testing.T) {
	src := newFakeSource(3, 0)
	hs := newHarness(t, src, 120, 40)
	hs.tick(100 * time.Millisecond)
	hs.press("enter")
	src.mu.Lock()
	src.conns["fw-a"][0].State = "FIN_WAIT"
	src.mu.Unlock()
	hs.tick(100 * time.Millisecond)
	if s := hs.screen(); !strings.Contains(s, "FIN_WAIT") {
		t.Errorf("the detail did not follow the row:\n%s", s)
	}
	src.mu.Lock()
	src.conns["fw-a"], src.conns["fw-b"] = src.conns["fw-a"][1:], src.conns["fw-b"][1:]
	src.mu.Unlock()
	hs.tick(100 * time.Millisecond)
	if s := hs.screen(); !strings.Contains(s, "no longer in the table") || !strings.Contains(s, "198.18.1.11:1024") {
		t.Errorf("a row gone from the table:\n%s", s)
	}
}

// TestGoldenReasons: i shows the banner's and both units' reasons whole,
// which the header cuts to fit; any key closes it.
func TestGoldenReasons(t *testing.T) {
	hs := newHarness(t, newFakeSource(5, 0), 80, 24)
	hs.tick(100 * time.Millisecond)
	hs.press("K", "y")
	hs.tick(100 * time.Millisecond)
	if !strings.Contains(hs.screen(), "closed the failo…") {
		t.Fatalf("the header does not cut the reason (the test needs a long one):\n%s", hs.screen())
	}
	hs.press("i")
	hs.golden("reasons-80x24")
	if s := hs.screen(); !strings.Contains(s, "fw-b took over at 10:15:24.111: peer process closed the failover connection") {
		t.Errorf("the reason is not whole:\n%s", s)
	}
	hs.press("x")
	if hs.m.mode != modeNormal || len(hs.src.injected) != 1 {
		t.Errorf("a key did not just close the view: mode %d, injected %v", hs.m.mode, hs.src.injected)
	}
}
