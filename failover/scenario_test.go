package failover_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/failover"
	"github.com/falab/falab/failover/failovertest"
	"github.com/google/go-cmp/cmp"
)

const (
	fwA = 0 // primary
	fwB = 1 // secondary
)

func testConfig(role failover.Role) failover.Config {
	c := failover.DefaultConfig(role)
	c.Monitored = []string{"inside", "outside"}
	return c
}

func newPair(t *testing.T) *failovertest.Pair {
	t.Helper()
	p, err := failovertest.NewPair(testConfig(failover.Primary), testConfig(failover.Secondary))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// settled starts both units together and runs until fw-a is Active and fw-b
// Standby Ready.
func settled(t *testing.T) *failovertest.Pair {
	t.Helper()
	p := newPair(t)
	p.StartUnit(fwA)
	p.StartUnit(fwB)
	waitStates(t, p, 2*time.Second, failover.Active, failover.StandbyReady)
	return p
}

// waitStates runs p until the units are in states a and b, failing the test
// if that does not happen within d.
func waitStates(t *testing.T, p *failovertest.Pair, d time.Duration, a, b failover.State) {
	t.Helper()
	want := [2]failover.State{a, b}
	if !p.RunUntil(p.Now.Add(d), func() bool { return p.States() == want }) {
		t.Fatalf("after %v: states %v, want %v\n%s", d, p.States(), want, p.Timeline(0))
	}
}

// noViolations fails the test if the simulator saw a broken invariant.
func noViolations(t *testing.T, p *failovertest.Pair) {
	t.Helper()
	if len(p.Violations) > 0 {
		t.Errorf("invariants broken:\n%s\ntimeline:\n%s", strings.Join(p.Violations, "\n"), p.Timeline(0))
	}
}

// lastTransition returns unit's last transition to state to logged since from.
func lastTransition(p *failovertest.Pair, from, unit int, to failover.State) (failover.Transition, time.Time, bool) {
	rs := p.Transitions(from)
	for i := len(rs) - 1; i >= 0; i-- {
		tr := rs[i].Action.(failover.Transition)
		if rs[i].Unit == p.Units[unit].Name && tr.To == to {
			return tr, rs[i].At, true
		}
	}
	return failover.Transition{}, time.Time{}, false
}

func TestStartup(t *testing.T) {
	tests := []struct {
		name string
		// bDelay is when fw-b starts relative to fw-a (negative: earlier).
		bDelay     time.Duration
		wantActive int
		wantReason string // in the active's transition to Just Active
	}{
		{"together", 0, fwA, "both units negotiating: primary becomes active"},
		{"secondary 1ms later", time.Millisecond, fwA, "both units negotiating"},
		{"secondary 1ms earlier", -time.Millisecond, fwA, "both units negotiating"},
		{"secondary 200ms earlier, inside the window", -200 * time.Millisecond, fwA, "both units negotiating"},
		{"secondary 400ms earlier, alone for the window", -400 * time.Millisecond, fwB, "no active peer heard within the negotiation window (300ms)"},
		{"primary 400ms earlier", 400 * time.Millisecond, fwA, "no active peer heard within the negotiation window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t)
			first, second, gap := fwA, fwB, tt.bDelay
			if gap < 0 {
				first, second, gap = fwB, fwA, -gap
			}
			p.StartUnit(first)
			p.RunFor(gap)
			p.StartUnit(second)
			want := [2]failover.State{failover.StandbyReady, failover.StandbyReady}
			want[tt.wantActive] = failover.Active
			waitStates(t, p, 2*time.Second, want[0], want[1])
			tr, _, ok := lastTransition(p, 0, tt.wantActive, failover.JustActive)
			if !ok || !strings.Contains(tr.Reason, tt.wantReason) {
				t.Errorf("takeover reason %q, want it to contain %q", tr.Reason, tt.wantReason)
			}
			standby := 1 - tt.wantActive
			if tr, _, _ := lastTransition(p, 0, standby, failover.BulkSync); !strings.Contains(tr.Reason, "no preemption") {
				t.Errorf("standby's reason %q, want it to mention no preemption", tr.Reason)
			}
			p.RunFor(2 * time.Second)
			if got := p.States(); got != want {
				t.Errorf("2s later states %v, want %v (stable)", got, want)
			}
			if p.DoubleActive != 0 {
				t.Errorf("two actives for %v during startup", p.DoubleActive)
			}
			noViolations(t, p)
		})
	}
}

func TestStartAlone(t *testing.T) {
	for _, unit := range []int{fwA, fwB} {
		t.Run(failover.Role(unit+1).String(), func(t *testing.T) {
			p := newPair(t)
			p.StartUnit(unit)
			p.RunFor(299 * time.Millisecond)
			if got := p.Units[unit].M.State(); got != failover.Negotiation {
				t.Fatalf("before the window ends: %v, want Negotiation", got)
			}
			// Alone, it still asks on the data interfaces first (two
			// rounds of 25ms): a peer behind a cut failover link would
			// answer there.
			p.RunFor(49 * time.Millisecond)
			if got := p.Units[unit].M.State(); got != failover.Negotiation {
				t.Fatalf("while asking on the data interfaces: %v, want Negotiation", got)
			}
			p.RunFor(2 * time.Millisecond)
			if got := p.Units[unit].M.State(); got != failover.Active {
				t.Fatalf("after the confirmation: %v, want Active", got)
			}
			tr, _, _ := lastTransition(p, 0, unit, failover.JustActive)
			if want := "no active peer heard within the negotiation window (300ms), and no peer answers on data interfaces (no answer in 2 rounds of 25ms)"; tr.Reason != want {
				t.Errorf("reason %q, want %q", tr.Reason, want)
			}
			noViolations(t, p)
		})
	}
}

// TestDetection covers the standby's ways of finding the active gone, and the
// failover link failing while the active lives.
func TestDetection(t *testing.T) {
	tests := []struct {
		name         string
		fault        func(p *failovertest.Pair)
		wantTakeover bool
		wantReason   string        // in fw-b's takeover, or its link-failed report
		within       time.Duration // takeover (or report) no later than this after the fault
	}{
		{
			name:         "hold expiry (active frozen)",
			fault:        func(p *failovertest.Pair) { p.Freeze(fwA) },
			wantTakeover: true,
			wantReason:   "peer hello timeout (hold 100ms), peer confirmed dead on data interfaces (no answer in 2 rounds of 25ms)",
			within:       100*time.Millisecond + 30*time.Millisecond,
		},
		{
			name:         "peer connection closed (active crashed)",
			fault:        func(p *failovertest.Pair) { p.Kill(fwA) },
			wantTakeover: true,
			wantReason:   "peer process closed the failover connection, peer confirmed dead on data interfaces",
			within:       time.Millisecond + 50*time.Millisecond, // no waiting for the hold
		},
		{
			name: "peer connection closed, dead peer reported early",
			fault: func(p *failovertest.Pair) {
				p.ReportDeadProbes = true
				p.Kill(fwA)
			},
			wantTakeover: true,
			wantReason:   "peer process closed the failover connection, peer confirmed dead on data interfaces",
			within:       time.Millisecond + 5*time.Millisecond,
		},
		{
			name: "link cut, peer dead",
			fault: func(p *failovertest.Pair) {
				p.Freeze(fwA)
				p.CutLink()
			},
			wantTakeover: true,
			wantReason:   "failover link lost carrier, peer confirmed dead on data interfaces",
			within:       60 * time.Millisecond,
		},
		{
			name:         "link cut, peer alive on data interfaces",
			fault:        func(p *failovertest.Pair) { p.CutLink() },
			wantTakeover: false,
			wantReason:   "failover link lost carrier, but peer answers on data interfaces: failover link failed, no takeover",
			within:       5 * time.Millisecond,
		},
		{
			name: "link silent without carrier loss, peer alive",
			fault: func(p *failovertest.Pair) {
				p.LinkUp = false
			},
			wantTakeover: false,
			wantReason:   "peer hello timeout (hold 100ms), but peer answers on data interfaces",
			within:       100*time.Millisecond + 30*time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := settled(t)
			mark, start := len(p.Log), p.Now
			tt.fault(p)
			p.RunFor(2 * time.Second)
			tr, at, took := lastTransition(p, mark, fwB, failover.JustActive)
			if took != tt.wantTakeover {
				t.Fatalf("fw-b took over: %v, want %v\n%s", took, tt.wantTakeover, p.Timeline(mark))
			}
			if took {
				if !strings.Contains(tr.Reason, tt.wantReason) {
					t.Errorf("takeover reason %q, want it to contain %q", tr.Reason, tt.wantReason)
				}
				if d := at.Sub(start); d > tt.within {
					t.Errorf("took over %v after the fault, want within %v", d, tt.within)
				}
				if got := p.Units[fwB].M.State(); got != failover.Active {
					t.Errorf("fw-b is %v, want Active", got)
				}
			} else {
				var link []failover.FailoverLinkStatus
				for _, r := range p.Log[mark:] {
					if a, ok := r.Action.(failover.FailoverLinkStatus); ok && r.Unit == "fw-b" {
						link = append(link, a)
						if d := r.At.Sub(start); d > tt.within {
							t.Errorf("link failure reported %v after the fault, want within %v", d, tt.within)
						}
					}
				}
				if len(link) != 1 || link[0].Up || !strings.Contains(link[0].Reason, tt.wantReason) {
					t.Errorf("fw-b link reports %+v, want one down report containing %q", link, tt.wantReason)
				}
				if got, want := p.States(), [2]failover.State{failover.Active, failover.StandbyReady}; got != want {
					t.Errorf("states %v, want %v", got, want)
				}
			}
			if p.DoubleActive != 0 {
				t.Errorf("two actives for %v", p.DoubleActive)
			}
			noViolations(t, p)
		})
	}
}

// TestLinkCutThenActiveDies: with the failover link down and the peer alive,
// the standby keeps probing, so a later death of the active is still caught.
func TestLinkCutThenActiveDies(t *testing.T) {
	p := settled(t)
	p.CutLink()
	p.RunFor(time.Second)
	if got := p.Active(); got != fwA {
		t.Fatalf("active %d after the link cut, want fw-a", got)
	}
	mark := len(p.Log)
	p.Freeze(fwA)
	p.RunFor(time.Second)
	tr, _, ok := lastTransition(p, mark, fwB, failover.JustActive)
	if !ok || !strings.Contains(tr.Reason, "peer hello timeout") || !strings.Contains(tr.Reason, "confirmed dead") {
		t.Errorf("fw-b takeover %v %q, want one after hold expiry and a failed probe\n%s", ok, tr.Reason, p.Timeline(mark))
	}
	p.HealLink()
	p.Thaw(fwA)
	waitStates(t, p, time.Second, failover.StandbyReady, failover.Active)
	noViolations(t, p)
}

// TestTwoActives covers every way two actives meet; the rule: the higher term
// stays active, equal terms leave the primary active.
func TestTwoActives(t *testing.T) {
	tests := []struct {
		name       string
		run        func(t *testing.T, p *failovertest.Pair)
		wantActive int
		wantReason string // the loser's transition to Bulk Sync
	}{
		{
			name: "frozen active thaws after 1s",
			run: func(t *testing.T, p *failovertest.Pair) {
				p.Freeze(fwA)
				waitStates(t, p, time.Second, failover.Active, failover.Active)
				p.RunFor(time.Second)
				p.Thaw(fwA)
			},
			wantActive: fwB,
			wantReason: "two actives met: peer became active later (term 2 > 1)",
		},
		{
			name: "frozen active thaws after 60s",
			run: func(t *testing.T, p *failovertest.Pair) {
				p.Freeze(fwA)
				p.RunFor(60 * time.Second)
				p.Thaw(fwA)
			},
			wantActive: fwB,
			wantReason: "two actives met: peer became active later (term 2 > 1)",
		},
		{
			name: "partition heals",
			run: func(t *testing.T, p *failovertest.Pair) {
				p.DataUp = false
				p.CutLink()
				waitStates(t, p, time.Second, failover.Active, failover.Active)
				p.RunFor(time.Second)
				p.DataUp = true
				p.HealLink()
			},
			wantActive: fwB,
			wantReason: "two actives met: peer became active later (term 2 > 1)",
		},
		{
			name: "partition heals after the secondary failed back",
			run: func(t *testing.T, p *failovertest.Pair) {
				// fw-b takes over (term 2), fw-a restarts alone in the
				// partition and takes over too (term 1): fw-b's later
				// term wins.
				p.DataUp = false
				p.CutLink()
				p.RunFor(time.Second)
				p.Kill(fwA)
				if err := p.Restart(fwA); err != nil {
					t.Fatal(err)
				}
				p.RunFor(time.Second)
				p.DataUp = true
				p.HealLink()
			},
			wantActive: fwB,
			wantReason: "two actives met: peer became active later (term 2 > 1)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := settled(t)
			mark := len(p.Log)
			announced := p.Units[tt.wantActive].Announcements
			tt.run(t, p)
			want := [2]failover.State{failover.StandbyReady, failover.StandbyReady}
			want[tt.wantActive] = failover.Active
			waitStates(t, p, time.Second, want[0], want[1])
			// The winner announced at its takeover and again when the
			// other unit came back (it may have pulled the switches' MAC
			// entries to its ports in the meantime), whichever unit heard
			// the other first.
			if got := p.Units[tt.wantActive].Announcements - announced; got < 2 {
				t.Errorf("the winner announced %d times, want its takeover and again when the other came back\n%s", got, p.Timeline(mark))
			}
			loser := 1 - tt.wantActive
			tr, _, ok := lastTransition(p, mark, loser, failover.BulkSync)
			if !ok || tr.Reason != tt.wantReason {
				t.Errorf("loser's reason %q, want %q\n%s", tr.Reason, tt.wantReason, p.Timeline(mark))
			}
			p.RunFor(2 * time.Second)
			if got := p.States(); got != want {
				t.Errorf("2s later %v, want %v (stable)", got, want)
			}
			noViolations(t, p)
		})
	}
}

// TestTwoActivesEqualTerm: both units start alone in a partition (term 1
// each); when it heals the primary stays active.
func TestTwoActivesEqualTerm(t *testing.T) {
	p := newPair(t)
	p.LinkUp, p.DataUp = false, false
	p.StartUnit(fwA)
	p.StartUnit(fwB)
	waitStates(t, p, time.Second, failover.Active, failover.Active)
	p.LinkUp, p.DataUp = true, true
	waitStates(t, p, time.Second, failover.Active, failover.StandbyReady)
	tr, _, _ := lastTransition(p, 0, fwB, failover.BulkSync)
	if want := "two actives met with equal term 1: primary stays active"; tr.Reason != want {
		t.Errorf("reason %q, want %q", tr.Reason, want)
	}
	// The unit that stays active announces again: the other may have
	// pulled the switches' entries to its ports while both were active.
	if got := p.Units[fwA].Announcements; got < 2 {
		t.Errorf("fw-a announced %d times, want its takeover and again when the actives met", got)
	}
	noViolations(t, p)
}

func TestInterfaceMonitoring(t *testing.T) {
	tests := []struct {
		name string
		// standbyDown lists interfaces down on fw-b before fw-a's fail.
		standbyDown []string
		activeDown  []string
		wantFail    bool
		wantReason  string // fw-a's Failed transition, or its notice
	}{
		{"inside down on the active", nil, []string{"inside"}, true,
			"monitored interface inside down (peer has 2/2 monitored interfaces up, this unit 1/2)"},
		{"both down on the active: fails at the first", nil, []string{"inside", "outside"}, true,
			"monitored interface inside down (peer has 2/2 monitored interfaces up, this unit 1/2)"},
		{"inside down on both", []string{"inside"}, []string{"inside"}, false,
			"monitored interface inside down; no failover: peer has 1/2 monitored interfaces up, this unit 1/2"},
		{"different interfaces down: no ping-pong", []string{"outside"}, []string{"inside"}, false,
			"monitored interface inside down; no failover: peer has 1/2 monitored interfaces up, this unit 1/2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := settled(t)
			for _, name := range tt.standbyDown {
				p.Step(fwB, failover.InterfaceStatus{Name: name, Up: false})
			}
			p.RunFor(10 * time.Millisecond)
			mark := len(p.Log)
			for _, name := range tt.activeDown {
				p.Step(fwA, failover.InterfaceStatus{Name: name, Up: false})
			}
			p.RunFor(time.Second)
			if !tt.wantFail {
				if got, want := p.States(), [2]failover.State{failover.Active, failover.StandbyReady}; got != want {
					t.Fatalf("states %v, want %v\n%s", got, want, p.Timeline(mark))
				}
				var notices []string
				for _, r := range p.Log[mark:] {
					if n, ok := r.Action.(failover.Notice); ok && r.Unit == "fw-a" {
						notices = append(notices, n.Reason)
					}
				}
				if len(notices) == 0 || notices[len(notices)-1] != tt.wantReason {
					t.Errorf("fw-a notices %q, want last %q", notices, tt.wantReason)
				}
				// Once the standby's interfaces recover it is the
				// healthier unit: its hello makes the active fail.
				for _, name := range tt.standbyDown {
					p.Step(fwB, failover.InterfaceStatus{Name: name, Up: true})
				}
				waitStates(t, p, time.Second, failover.Failed, failover.Active)
				noViolations(t, p)
				return
			}
			if got, want := p.States(), [2]failover.State{failover.Failed, failover.Active}; got != want {
				t.Fatalf("states %v, want %v\n%s", got, want, p.Timeline(mark))
			}
			tr, _, _ := lastTransition(p, mark, fwA, failover.Failed)
			if tr.Reason != tt.wantReason {
				t.Errorf("fw-a Failed reason %q, want %q", tr.Reason, tt.wantReason)
			}
			tb, _, _ := lastTransition(p, mark, fwB, failover.JustActive)
			if want := "peer is Failed (peer's monitored interface " + tt.activeDown[0] + " down)"; tb.Reason != want {
				t.Errorf("fw-b takeover reason %q, want %q", tb.Reason, want)
			}
			// Recovery: the Failed unit returns as standby once all its
			// monitored interfaces are up, and does not take the role back.
			for i, name := range tt.activeDown {
				p.Step(fwA, failover.InterfaceStatus{Name: name, Up: true})
				if i < len(tt.activeDown)-1 && p.Units[fwA].M.State() != failover.Failed {
					t.Errorf("fw-a left Failed with %s still down", tt.activeDown[i+1])
				}
			}
			waitStates(t, p, time.Second, failover.StandbyReady, failover.Active)
			tr, _, _ = lastTransition(p, mark, fwA, failover.BulkSync)
			if want := "monitored interfaces recovered: peer is active, becoming standby"; tr.Reason != want {
				t.Errorf("recovery reason %q, want %q", tr.Reason, want)
			}
			noViolations(t, p)
		})
	}
}

// TestFailedUnitOutlivesPeer: a Failed unit does not take over when its peer
// dies, but once its interfaces recover it negotiates and becomes active.
func TestFailedUnitOutlivesPeer(t *testing.T) {
	p := settled(t)
	p.Step(fwA, failover.InterfaceStatus{Name: "inside", Up: false})
	waitStates(t, p, time.Second, failover.Failed, failover.Active)
	p.Kill(fwB)
	p.RunFor(time.Second)
	if got := p.Units[fwA].M.State(); got != failover.Failed {
		t.Fatalf("fw-a %v after its peer died, want Failed", got)
	}
	mark := len(p.Log)
	p.Step(fwA, failover.InterfaceStatus{Name: "inside", Up: true})
	p.RunFor(time.Second)
	var got []string
	for _, r := range p.Transitions(mark) {
		got = append(got, r.Action.(failover.Transition).Reason)
	}
	want := []string{
		"monitored interfaces recovered: no active peer, negotiating",
		"no active peer heard within the negotiation window (300ms), and no peer answers on data interfaces (no answer in 2 rounds of 25ms)",
		"takeover complete: no active peer heard within the negotiation window (300ms), and no peer answers on data interfaces (no answer in 2 rounds of 25ms)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fw-a transitions (-want +got):\n%s", diff)
	}
	noViolations(t, p)
}

func TestFailedReset(t *testing.T) {
	p := settled(t)
	p.Step(fwA, failover.InterfaceStatus{Name: "inside", Up: false})
	waitStates(t, p, time.Second, failover.Failed, failover.Active)
	p.RunFor(10 * time.Millisecond) // fw-a hears fw-b is active
	mark := len(p.Log)
	p.Step(fwB, failover.Reset{}) // not failed: a notice, nothing else
	p.Step(fwA, failover.Reset{})
	waitStates(t, p, time.Second, failover.StandbyReady, failover.Active)
	var got []string
	for _, r := range p.Log[mark:] {
		switch a := r.Action.(type) {
		case failover.Notice:
			got = append(got, r.Unit+" notice: "+a.Reason)
		case failover.Transition:
			got = append(got, r.Unit+" "+a.From.String()+" -> "+a.To.String()+": "+a.Reason)
		}
	}
	want := []string{
		"fw-b notice: failover reset: unit is not Failed (Active), nothing to clear",
		"fw-a Failed -> Bulk Sync: failover reset: peer is active, becoming standby",
		"fw-a Bulk Sync -> Standby Ready: bulk sync complete, digests match",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	noViolations(t, p)
}

// TestManualFailover switches the active role back and forth 20 times, with
// `failover active` on the standby and `no failover active` on the active in
// turn.
func TestManualFailover(t *testing.T) {
	p := settled(t)
	active := fwA
	for i := range 20 {
		mark := len(p.Log)
		standby := 1 - active
		var cmd int
		var wantReason string
		if i%2 == 0 {
			cmd = standby
			p.Step(standby, failover.ManualFailover{MakeActive: true})
			wantReason = "manual failover (failover active): the peer stood down (now Bulk Sync)"
		} else {
			cmd = active
			p.Step(active, failover.ManualFailover{MakeActive: false})
			wantReason = "manual failover (no failover active)"
		}
		want := [2]failover.State{failover.StandbyReady, failover.StandbyReady}
		want[standby] = failover.Active
		waitStates(t, p, time.Second, want[0], want[1])
		tr, _, _ := lastTransition(p, mark, cmd, map[bool]failover.State{true: failover.JustActive, false: failover.BulkSync}[cmd == standby])
		if tr.Reason != wantReason {
			t.Errorf("switch %d: %s reason %q, want %q", i, p.Units[cmd].Name, tr.Reason, wantReason)
		}
		if got, want := p.Units[standby].M.Term(), uint64(i+2); got != want {
			t.Errorf("switch %d: new active's term %d, want %d", i, got, want)
		}
		active = standby
	}
	// A switch never leaves two actives: the active stands down first,
	// in both directions; none is active for about a round trip.
	if max := 20 * 2 * p.Latency; p.DoubleActive != 0 || p.NoActive > max {
		t.Errorf("double active %v, no active %v over 20 switches; want none and at most %v", p.DoubleActive, p.NoActive, max)
	}
	noViolations(t, p)
}

func TestManualRefused(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(p *failovertest.Pair)
		unit       int
		makeActive bool
		want       string
	}{
		{"failover active on the active", nil, fwA, true, "failover active: unit is already active"},
		{"no failover active on the standby", nil, fwB, false, "no failover active: unit is not active (Standby Ready)"},
		{"no failover active without a peer", func(p *failovertest.Pair) {
			p.Kill(fwB)
			p.RunFor(time.Second)
		}, fwA, false, "no failover active refused: no standby peer to take over"},
		{"failover active on a Failed unit", func(p *failovertest.Pair) {
			p.Step(fwA, failover.InterfaceStatus{Name: "inside", Up: false})
			p.RunFor(time.Second)
		}, fwA, true, "failover active refused: unit is Failed (use failover reset)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := settled(t)
			if tt.setup != nil {
				tt.setup(p)
			}
			before := p.Units[tt.unit].M.State()
			mark := len(p.Log)
			p.Step(tt.unit, failover.ManualFailover{MakeActive: tt.makeActive})
			var got []string
			for _, r := range p.Log[mark:] {
				if n, ok := r.Action.(failover.Notice); ok {
					got = append(got, n.Reason)
				}
			}
			if diff := cmp.Diff([]string{tt.want}, got); diff != "" {
				t.Errorf("notices (-want +got):\n%s", diff)
			}
			if after := p.Units[tt.unit].M.State(); after != before {
				t.Errorf("state changed %v -> %v on a refused command", before, after)
			}
		})
	}
}

func TestRecoveredUnitComesBackStandby(t *testing.T) {
	for _, victim := range []int{fwA, fwB} {
		t.Run(failover.Role(victim+1).String(), func(t *testing.T) {
			p := settled(t)
			if victim == fwB {
				p.Step(fwA, failover.ManualFailover{MakeActive: false}) // fw-b active first
				waitStates(t, p, time.Second, failover.StandbyReady, failover.Active)
			}
			other := 1 - victim
			// Make the victim active, then crash it.
			p.Step(victim, failover.ManualFailover{MakeActive: true})
			p.RunFor(100 * time.Millisecond)
			p.Kill(victim)
			p.RunFor(time.Second)
			if p.Active() != other {
				t.Fatalf("after the crash active is %d, want %d\n%s", p.Active(), other, p.Timeline(0))
			}
			mark := len(p.Log)
			if err := p.Restart(victim); err != nil {
				t.Fatal(err)
			}
			want := [2]failover.State{failover.Active, failover.Active}
			want[victim] = failover.StandbyReady
			waitStates(t, p, time.Second, want[0], want[1])
			tr, _, _ := lastTransition(p, mark, victim, failover.BulkSync)
			if !strings.Contains(tr.Reason, "no preemption") {
				t.Errorf("reason %q, want no preemption", tr.Reason)
			}
			if _, _, took := lastTransition(p, mark, victim, failover.JustActive); took {
				t.Errorf("the recovered unit took the active role\n%s", p.Timeline(mark))
			}
			noViolations(t, p)
		})
	}
}

func TestResync(t *testing.T) {
	p := newPair(t)
	p.Units[fwB].Mismatches = 2
	p.StartUnit(fwA)
	p.StartUnit(fwB)
	waitStates(t, p, time.Second, failover.Active, failover.StandbyReady)
	mark := len(p.Log)
	p.Units[fwB].Mismatches = 1
	p.Step(fwB, failover.BulkSyncDone{DigestsMatch: false}) // a periodic digest check fails
	waitStates(t, p, time.Second, failover.Active, failover.StandbyReady)
	p.Step(fwB, failover.SyncLost{Reason: "gap in update sequence (got 12, want 10)"})
	waitStates(t, p, time.Second, failover.Active, failover.StandbyReady)
	var got []string
	for _, r := range p.Log[mark:] {
		switch a := r.Action.(type) {
		case failover.Notice:
			got = append(got, "notice: "+a.Reason)
		case failover.Transition:
			got = append(got, a.From.String()+" -> "+a.To.String()+": "+a.Reason)
		case failover.RequestBulkSync:
			got = append(got, "request bulk sync: "+a.Reason)
		}
	}
	want := []string{
		"Standby Ready -> Bulk Sync: digests differ from the active's",
		"request bulk sync: digests differ from the active's",
		"notice: bulk sync: digests differ, requesting bulk sync again",
		"request bulk sync: digests differ after bulk sync",
		"Bulk Sync -> Standby Ready: bulk sync complete, digests match",
		"Standby Ready -> Bulk Sync: sync lost: gap in update sequence (got 12, want 10)",
		"request bulk sync: sync lost: gap in update sequence (got 12, want 10)",
		"Bulk Sync -> Standby Ready: bulk sync complete, digests match",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fw-b log (-want +got):\n%s", diff)
	}
	noViolations(t, p)
}

func TestTakeoverBeforeStandbyReady(t *testing.T) {
	p := newPair(t)
	p.BulkSyncTime = 10 * time.Second
	p.StartUnit(fwA)
	p.StartUnit(fwB)
	waitStates(t, p, time.Second, failover.Active, failover.BulkSync)
	mark := len(p.Log)
	p.Kill(fwA)
	p.RunFor(time.Second)
	tr, _, ok := lastTransition(p, mark, fwB, failover.JustActive)
	if want := "standby was not Standby Ready (bulk sync unfinished): sessions may be lost"; !ok || !strings.Contains(tr.Reason, want) {
		t.Errorf("takeover reason %q, want it to contain %q", tr.Reason, want)
	}
	var become []failover.BecomeActive
	for _, r := range p.Log[mark:] {
		if a, ok := r.Action.(failover.BecomeActive); ok {
			become = append(become, a)
		}
	}
	if len(become) != 1 || become[0].StateComplete {
		t.Errorf("BecomeActive %+v, want one with StateComplete false", become)
	}
	noViolations(t, p)
}

// TestEveryTransitionHasReason runs a long mixed scenario and checks each
// logged transition directly (the simulator also checks as it goes).
func TestEveryTransitionHasReason(t *testing.T) {
	p := settled(t)
	p.Step(fwA, failover.InterfaceStatus{Name: "outside", Up: false})
	p.RunFor(200 * time.Millisecond)
	p.Step(fwA, failover.Reset{})
	p.RunFor(200 * time.Millisecond)
	p.Step(fwB, failover.ManualFailover{MakeActive: false})
	p.RunFor(200 * time.Millisecond)
	p.Freeze(fwA)
	p.RunFor(time.Second)
	p.Thaw(fwA)
	p.RunFor(time.Second)
	p.CutLink()
	p.RunFor(time.Second)
	p.HealLink()
	p.Kill(fwB)
	p.RunFor(time.Second)
	if err := p.Restart(fwB); err != nil {
		t.Fatal(err)
	}
	p.RunFor(time.Second)
	rs := p.Transitions(0)
	if len(rs) < 15 {
		t.Fatalf("only %d transitions; the scenario did not run\n%s", len(rs), p.Timeline(0))
	}
	for _, r := range rs {
		tr := r.Action.(failover.Transition)
		if strings.TrimSpace(tr.Reason) == "" || tr.At.IsZero() {
			t.Errorf("%s %v -> %v: reason %q at %v", r.Unit, tr.From, tr.To, tr.Reason, tr.At)
		}
	}
	if p.Active() < 0 {
		t.Errorf("no single active at the end: %v", p.States())
	}
	noViolations(t, p)
}

// FuzzPair throws arbitrary faults at a simulated pair, then heals everything
// and checks the pair settles to exactly one Active and one Standby Ready,
// with no invariant broken on the way.
func FuzzPair(f *testing.F) {
	f.Add([]byte{0, 0, 9, 200, 1, 0, 9, 100})                   // freeze fw-a, thaw
	f.Add([]byte{2, 0, 9, 50, 3, 0, 9, 250})                    // kill fw-a, restart
	f.Add([]byte{4, 0, 9, 250, 5, 1, 9, 10, 6, 0, 9, 10})       // partition, heal
	f.Add([]byte{7, 1, 9, 30, 7, 0, 9, 30, 8, 0, 9, 5, 8, 1})   // manual both ways
	f.Add([]byte{10, 0, 9, 30, 11, 1, 9, 30, 12, 0, 9, 30, 13}) // interfaces, reset
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		p := newPair(t)
		p.StartUnit(fwA)
		p.StartUnit(fwB)
		ifs := []string{"inside", "outside"}
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%14, ops[i+1]
			u := int(arg % 2)
			switch op {
			case 0:
				if p.Units[u].Running {
					p.Freeze(u)
				}
			case 1:
				if p.Units[u].Frozen {
					p.Thaw(u)
				}
			case 2:
				if p.Units[u].Running {
					p.Kill(u)
				}
			case 3:
				if !p.Units[u].Running {
					if err := p.Restart(u); err != nil {
						t.Fatal(err)
					}
				}
			case 4:
				p.CutLink()
			case 5:
				p.HealLink()
			case 6:
				p.DataUp = !p.DataUp
			case 7, 8:
				p.Step(u, failover.ManualFailover{MakeActive: op == 7})
			case 10, 11:
				p.Step(u, failover.InterfaceStatus{Name: ifs[arg/2%2], Up: op == 11})
			case 12:
				p.Step(u, failover.Reset{})
			case 13:
				p.Step(u, failover.SyncLost{Reason: "fuzz"})
			default:
				p.RunFor(time.Duration(arg) * 2 * time.Millisecond)
			}
		}
		// Heal everything.
		p.DataUp = true
		if !p.LinkUp {
			p.HealLink()
		}
		for u := range p.Units {
			if p.Units[u].Frozen {
				p.Thaw(u)
			}
			if !p.Units[u].Running {
				if err := p.Restart(u); err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range ifs {
				p.Step(u, failover.InterfaceStatus{Name: name, Up: true})
			}
		}
		p.RunFor(3 * time.Second)
		for u := range p.Units {
			if p.Units[u].M.State() == failover.Failed {
				p.Step(u, failover.Reset{})
			}
		}
		p.RunFor(3 * time.Second)
		a := p.Active()
		if a < 0 || p.Units[1-a].M.State() != failover.StandbyReady {
			t.Fatalf("after healing: states %v, want one Active and one Standby Ready\n%s", p.States(), p.Timeline(0))
		}
		noViolations(t, p)
	})
}

// BenchmarkTakeover reports, in simulated time with the default timers, how
// long the pair has no active unit after each kind of fault, and how much
// wall time simulating one takeover costs.
func BenchmarkTakeover(b *testing.B) {
	faults := []struct {
		name  string
		fault func(p *failovertest.Pair)
	}{
		{"crash", func(p *failovertest.Pair) { p.Kill(fwA) }},
		{"crash-dead-reported", func(p *failovertest.Pair) { p.ReportDeadProbes = true; p.Kill(fwA) }},
		{"freeze", func(p *failovertest.Pair) { p.Freeze(fwA) }},
		{"freeze-and-carrier-loss", func(p *failovertest.Pair) { p.Freeze(fwA); p.CutLink() }},
		{"interface-down", func(p *failovertest.Pair) { p.Step(fwA, failover.InterfaceStatus{Name: "inside", Up: false}) }},
		{"manual", func(p *failovertest.Pair) { p.Step(fwB, failover.ManualFailover{MakeActive: true}) }},
	}
	for _, f := range faults {
		b.Run(f.name, func(b *testing.B) {
			var gap time.Duration
			for b.Loop() {
				p, err := failovertest.NewPair(testConfig(failover.Primary), testConfig(failover.Secondary))
				if err != nil {
					b.Fatal(err)
				}
				p.StartUnit(fwA)
				p.StartUnit(fwB)
				p.RunUntil(p.Now.Add(time.Second), func() bool { return p.Units[fwB].M.State() == failover.StandbyReady })
				before := p.NoActive
				f.fault(p)
				if !p.RunUntil(p.Now.Add(time.Second), func() bool { return p.Units[fwB].M.State() == failover.Active }) {
					b.Fatalf("no takeover\n%s", p.Timeline(0))
				}
				gap = p.NoActive - before
			}
			b.ReportMetric(float64(gap)/float64(time.Millisecond), "sim-ms-no-active")
		})
	}
}

// TestRestartDuringCutLink: a unit restarted while the failover link is cut
// hears no hello in its negotiation window. It must not take the active role
// alone: it asks on the data interfaces, the live active answers, and it
// waits. When the link heals it becomes the standby. (On the old main it
// became active when the window ended: two actives.)
func TestRestartDuringCutLink(t *testing.T) {
	for _, restarted := range []int{fwA, fwB} {
		t.Run(fmt.Sprintf("restart %s", [2]string{"fw-a", "fw-b"}[restarted]), func(t *testing.T) {
			p := settled(t)
			if restarted == fwA {
				// Make fw-b the active: fw-a is the one restarted.
				p.Step(fwA, failover.ManualFailover{MakeActive: false})
				waitStates(t, p, time.Second, failover.StandbyReady, failover.Active)
			}
			active := 1 - restarted
			p.CutLink()
			p.RunFor(500 * time.Millisecond)
			p.Kill(restarted)
			p.RunFor(10 * time.Millisecond)
			if err := p.Restart(restarted); err != nil {
				t.Fatal(err)
			}
			p.RunFor(3 * time.Second)
			if p.DoubleActive != 0 {
				t.Fatalf("two actives for %v\n%s", p.DoubleActive, p.Timeline(0))
			}
			if got := p.Units[active].M.State(); got != failover.Active {
				t.Fatalf("the active is %v, want Active\n%s", got, p.Timeline(0))
			}
			if got := p.Units[restarted].M.State(); got != failover.Negotiation {
				t.Fatalf("the restarted unit is %v, want Negotiation (waiting)\n%s", got, p.Timeline(0))
			}
			p.HealLink()
			want := [2]failover.State{}
			want[active], want[restarted] = failover.Active, failover.StandbyReady
			waitStates(t, p, 2*time.Second, want[0], want[1])
			if p.DoubleActive != 0 {
				t.Errorf("two actives for %v after the heal", p.DoubleActive)
			}
			noViolations(t, p)
		})
	}
}

// TestCutLinkSlowProbeAnswers: under load the data path delays the peer's
// answers past one probe round. A cut failover link must still never make
// two actives, and the healthy active must not yield when the link heals.
func TestCutLinkSlowProbeAnswers(t *testing.T) {
	p := settled(t)
	p.ProbeAnswer = 40 * time.Millisecond // past round 1 (25ms), inside round 2
	for i := range 20 {
		p.CutLink()
		p.RunFor(time.Duration(300+17*i) * time.Millisecond)
		p.HealLink()
		p.RunFor(500 * time.Millisecond)
		if got := p.States(); got != [2]failover.State{failover.Active, failover.StandbyReady} {
			t.Fatalf("cut %d: states %v, want fw-a Active, fw-b Standby Ready\n%s", i+1, got, p.Timeline(0))
		}
	}
	if p.DoubleActive != 0 || p.Units[fwA].M.Status().Stats.Takeovers != 1 || p.Units[fwB].M.Status().Stats.Takeovers != 0 {
		t.Errorf("two actives for %v; takeovers fw-a %d fw-b %d, want only fw-a's first", p.DoubleActive,
			p.Units[fwA].M.Status().Stats.Takeovers, p.Units[fwB].M.Status().Stats.Takeovers)
	}
	noViolations(t, p)
}

// TestManualHandoverNamed: `failover active` on the standby is a handover,
// and the old active says so; it is not "two actives met".
func TestManualHandoverNamed(t *testing.T) {
	p := settled(t)
	mark := len(p.Log)
	p.Step(fwB, failover.ManualFailover{MakeActive: true})
	waitStates(t, p, time.Second, failover.StandbyReady, failover.Active)
	tr, _, ok := lastTransition(p, mark, fwA, failover.BulkSync)
	if want := "peer asked for the active role (`failover active` on it): standing down"; !ok || tr.Reason != want {
		t.Errorf("old active's reason %q, want %q", tr.Reason, want)
	}
	if p.DoubleForwarding != 0 || p.DoubleActive != 0 {
		t.Errorf("two actives for %v (both forwarding %v) during a manual failover", p.DoubleActive, p.DoubleForwarding)
	}
	noViolations(t, p)
}

// TestThawedActiveNeverForwardsBesideTheNewOne: an active frozen past the
// hold is replaced; when it thaws it reads a backlog of old hellos (its
// peer still standby in them) before the news. It must not forward on the
// strength of the backlog: suspended from the moment it resumes, it steps
// down on the first fresh hello, or, with the failover link cut as well,
// on the probe answer that says the peer is active.
func TestThawedActiveNeverForwardsBesideTheNewOne(t *testing.T) {
	for _, cut := range []bool{false, true} {
		t.Run(fmt.Sprintf("failover link cut %v", cut), func(t *testing.T) {
			p := settled(t)
			p.Freeze(fwA)
			waitStates(t, p, time.Second, failover.Active, failover.Active)
			if cut {
				p.CutLink()
			}
			p.RunFor(time.Second)
			p.Thaw(fwA)
			if p.Units[fwA].M.Forwarding() {
				t.Fatalf("fw-a forwards at once after the thaw (state %v)\n%s", p.Units[fwA].M.State(), p.Timeline(0))
			}
			p.RunFor(time.Second)
			if p.DoubleForwarding != 0 {
				t.Errorf("both units forwarded for %v\n%s", p.DoubleForwarding, p.Timeline(0))
			}
			if got := p.Units[fwB].M.State(); got != failover.Active || !p.Units[fwB].M.Forwarding() {
				t.Errorf("fw-b %v (forwarding %v), want the active", got, p.Units[fwB].M.Forwarding())
			}
			if p.Units[fwA].M.IsActive() {
				t.Errorf("fw-a still %v", p.Units[fwA].M.State())
			}
			noViolations(t, p)
		})
	}
}

// TestResumedAloneForwardsOn: an active frozen while its peer was already
// known failed has no one to ask; it forwards on at once.
func TestResumedAloneForwardsOn(t *testing.T) {
	p := settled(t)
	p.Kill(fwB)
	p.RunFor(time.Second)
	p.Freeze(fwA)
	p.RunFor(time.Second)
	p.Thaw(fwA)
	p.RunFor(10 * time.Millisecond)
	if !p.Units[fwA].M.Forwarding() {
		t.Errorf("fw-a alone does not forward after a thaw (state %v)\n%s", p.Units[fwA].M.State(), p.Timeline(0))
	}
}

// TestActiveRestartedBehindCutLink: the active restarted while the
// failover link is cut comes back empty. The standby holds the tables, so
// it takes the role when the restarted unit answers its confirmation as
// Negotiation, and the restarted unit, hearing a Standby Ready peer, waits
// instead of taking the role with nothing (seen in chaos: it became active
// with 0 connections, and the streams died). When the link heals it
// becomes the standby.
func TestActiveRestartedBehindCutLink(t *testing.T) {
	for _, restartAfter := range []time.Duration{0, 50 * time.Millisecond, 150 * time.Millisecond} {
		t.Run(fmt.Sprintf("restart after %v", restartAfter), func(t *testing.T) {
			p := settled(t)
			p.CutLink()
			p.RunFor(500 * time.Millisecond)
			p.Kill(fwA)
			p.RunFor(restartAfter)
			if err := p.Restart(fwA); err != nil {
				t.Fatal(err)
			}
			p.RunFor(3 * time.Second)
			if p.DoubleActive != 0 {
				t.Fatalf("two actives for %v\n%s", p.DoubleActive, p.Timeline(0))
			}
			if got := p.States(); got != [2]failover.State{failover.Negotiation, failover.Active} {
				t.Fatalf("states %v, want fw-a Negotiation (waiting), fw-b Active (it has the tables)\n%s", got, p.Timeline(0))
			}
			p.HealLink()
			waitStates(t, p, 2*time.Second, failover.StandbyReady, failover.Active)
			if p.DoubleActive != 0 {
				t.Errorf("two actives for %v after the heal", p.DoubleActive)
			}
			noViolations(t, p)
		})
	}
}
