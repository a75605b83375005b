package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/falab/falab/lab"
)

// TestDestructiveKeysAsk checks that every key that takes a unit or a link
// away asks y/n in the status line, does nothing until y, and that any
// other key cancels it.
func TestDestructiveKeysAsk(t *testing.T) {
	for _, tt := range []struct {
		name   string
		keys   []string // the keys that lead to the question
		prompt string
		want   lab.Fault
	}{
		{"failover", []string{"f"}, "fail over: make fw-b active?", lab.Fault{Kind: lab.FaultManual, Target: "fw-b"}},
		{"kill", []string{"K"}, "kill fw-a (SIGKILL)?", lab.Fault{Kind: lab.FaultKill, Target: "fw-a"}},
		{"freeze", []string{"z"}, "freeze fw-a (SIGSTOP)?", lab.Fault{Kind: lab.FaultFreeze, Target: "fw-a"}},
		{"power-off", []string{"P"}, "power off fw-a (kill, all its links down)?", lab.Fault{Kind: lab.FaultPowerOff, Target: "fw-a"}},
		{"cut", []string{"c"}, "cut the failover link?", lab.Fault{Kind: lab.FaultCutFailover}},
		{"link down", []string{"l", "enter"}, "set link fw-a:inside down?", lab.Fault{Kind: lab.FaultLinkDown, Target: "fw-a:inside"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, cancel := range []string{"n", "j", "esc", "k"} {
				hs := newHarness(t, newFakeSource(3, 0), 80, 24)
				hs.tick(100 * time.Millisecond)
				hs.press(tt.keys...)
				if got := hs.statusLine(); !strings.HasPrefix(got, tt.prompt+" y yes · any other key: no") {
					t.Fatalf("status line after %v: %q, want the prompt %q", tt.keys, got, tt.prompt)
				}
				hs.tick(100 * time.Millisecond)
				if len(hs.src.injected) != 0 {
					t.Fatalf("%v injected %v before y", tt.keys, hs.src.injected)
				}
				hs.press(cancel)
				hs.tick(100 * time.Millisecond)
				if len(hs.src.injected) != 0 {
					t.Fatalf("%v then %q injected %v", tt.keys, cancel, hs.src.injected)
				}
				if got, want := hs.statusLine(), "cancelled: "+strings.TrimSuffix(tt.prompt, "?"); !strings.HasPrefix(got, want) && cancel != "esc" {
					t.Errorf("after %q the status line is %q, want %q", cancel, got, want)
				}
			}
			hs := newHarness(t, newFakeSource(3, 0), 80, 24)
			hs.tick(100 * time.Millisecond)
			hs.press(append(tt.keys, "y")...)
			hs.tick(100 * time.Millisecond)
			if diff := cmp.Diff([]lab.Fault{tt.want}, hs.src.injected); diff != "" {
				t.Errorf("after y, faults injected (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMovingKeysNeverAct: j, k and the arrows move; none reaches the lab.
func TestMovingKeysNeverAct(t *testing.T) {
	hs := newHarness(t, newFakeSource(60, 0), 80, 24)
	hs.tick(100 * time.Millisecond)
	hs.press("j", "j", "j", "k", "down", "up", "j")
	hs.tick(100 * time.Millisecond)
	if len(hs.src.injected) != 0 || hs.m.mode != modeNormal {
		t.Fatalf("moving keys injected %v (mode %d)", hs.src.injected, hs.m.mode)
	}
	if tab := hs.m.tables[0]; tab.cursor != 3 || tab.scroll != 0 {
		t.Errorf("after j j j k ↓ ↑ j the conns cursor is on row %d, scrolled %d; want row 3, not scrolled", tab.cursor, tab.scroll)
	}
}

func TestGoldenConfirm(t *testing.T) {
	hs := newHarness(t, newFakeSource(5, 0), 80, 24)
	hs.tick(100 * time.Millisecond)
	hs.press("K")
	hs.golden("confirm-kill-80x24")
}

// TestGoldenStale: a unit that stops answering while its table is being
// read (a frozen unit's read hangs) leaves its last rows on screen; they
// are marked stale, never shown as live or in step.
func TestGoldenStale(t *testing.T) {
	t.Run("active frozen", func(t *testing.T) {
		hs := newHarness(t, newFakeSource(5, 0), 80, 24)
		hs.tick(100 * time.Millisecond)
		if !strings.Contains(hs.screen(), "✓ tcp") {
			t.Fatalf("before the freeze the table is not in step:\n%s", hs.screen())
		}
		hs.press("z", "y")
		hs.m.inflight["tab:"+tabConns] = true // the read of the frozen unit hangs
		hs.tick(100 * time.Millisecond)
		hs.tick(100 * time.Millisecond)
		hs.golden("stale-active-80x24")
		hs.noMarks()
	})
	t.Run("standby stops answering", func(t *testing.T) {
		hs := newHarness(t, newFakeSource(5, 1), 80, 24)
		hs.tick(100 * time.Millisecond)
		hs.src.mu.Lock()
		hs.src.units["fw-b"].dead = true
		hs.src.mu.Unlock()
		hs.m.inflight["tab:"+tabConns] = true
		hs.tick(100 * time.Millisecond)
		hs.golden("stale-standby-80x24")
		hs.noMarks()
	})
	t.Run("answers again", func(t *testing.T) {
		hs := newHarness(t, newFakeSource(5, 0), 80, 24)
		hs.tick(100 * time.Millisecond)
		hs.press("z", "y")
		hs.tick(100 * time.Millisecond)
		hs.press("t")
		hs.tick(100 * time.Millisecond)
		hs.tick(100 * time.Millisecond)
		if s := hs.screen(); strings.Contains(s, "stale") || !strings.Contains(s, "✓ tcp") {
			t.Errorf("after the thaw the table is still stale:\n%s", s)
		}
	})
}

// noMarks fails if a table row or the summary still gives a verdict
// (✓ ✗ +, "in step") while one side is stale.
func (hs *harness) noMarks() {
	hs.t.Helper()
	for _, l := range strings.Split(hs.screen(), "\n")[5:] {
		if strings.HasPrefix(l, "✓ ") || strings.HasPrefix(l, "✗ ") || strings.HasPrefix(l, "+ ") || strings.Contains(l, "in step") {
			hs.t.Errorf("a stale table still gives a verdict: %q\n%s", l, hs.screen())
		}
	}
}

// statusLine is the footer's first line: messages and prompts.
func (hs *harness) statusLine() string {
	lines := strings.Split(hs.screen(), "\n")
	return strings.TrimRight(lines[len(lines)-2], " ")
}
