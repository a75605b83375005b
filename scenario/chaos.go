package scenario

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/traffic"
)

// ChaosKinds are the faults a chaos step draws from. Each is injected and
// then repaired (a killed or powered-off unit restarted, a frozen one
// thawed, a cut link healed, a downed interface brought up), so that the
// pair must come back to health after every one.
//
// Two are compound, two faults at once: "cut+freeze" (the failover link cut,
// then a unit frozen behind it) and "cut+restart" (a unit restarted while
// the link is cut). Behind a cut link a unit learns of its peer only on
// the data interfaces, which is where two actives come from. Detection is
// slower there (no hellos; the confirmation has twice the rounds), so
// traffic can pause for most of a second and TCP's backoff stretches that
// to several seconds: a scenario gives the streams time to resume before
// it judges them.
var ChaosKinds = []string{"kill", "freeze", "cut", "link", "power-off", "restart", "failover", "cut+freeze", "cut+restart"}

// defaultChaosKinds are drawn when a chaos step names no kinds.
var defaultChaosKinds = ChaosKinds

// chaosSampleEvery is how often the chaos step asks both units their role.
const chaosSampleEvery = 10 * time.Millisecond

// chaos plays spec's random faults while a sampler watches both units. It
// fails on: a sample in which both units say they are Active; a standby
// that found its tables' digests differing from the active's; a pair not
// healthy (one Active, one Standby Ready, failover link up) within Settle
// of a fault's repair; a host whose ARP for its gateway is answered by no
// unit or by two.
func (r *runner) chaos(ctx context.Context, spec *ChaosSpec) (string, error) {
	seed := spec.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)>>32))
	kinds := spec.Kinds
	if len(kinds) == 0 {
		kinds = defaultChaosKinds
	}
	settle := spec.Settle.D(10 * time.Second)
	lab.RecordEvent(r.name, "chaos", fmt.Sprintf("chaos: %d faults, seed %d", spec.Faults, seed))

	s := &roleSampler{r: r, mismatches: map[string]uint64{}}
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.run(sctx) })
	defer func() { stop(); wg.Wait() }()

	var violations []string
	counts := map[string]int{}
	wireOK := 0
	if _, err := r.waitHealthy(ctx, settle); err != nil {
		return fmt.Sprintf("seed %d", seed), fmt.Errorf("pair not healthy before the first fault: %v: %w", err, errScenarioFailed)
	}
	for i := 1; i <= spec.Faults && len(violations) == 0; i++ {
		kind := kinds[rng.IntN(len(kinds))]
		counts[kind]++
		r.snapshotTraffic()
		s.setFault(i)
		what, err := r.chaosFault(ctx, kind, rng, settle)
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			violations = append(violations, fmt.Sprintf("fault %d (%s): %v", i, what, err))
			break
		}
		states, err := r.waitHealthy(ctx, settle)
		if err != nil {
			violations = append(violations, fmt.Sprintf("fault %d (%s): not healthy within %v of its repair: %s", i, what, settle, states))
			break
		}
		answers, err := lab.GatewayAnswers(ctx, r.l)
		if err != nil {
			violations = append(violations, fmt.Sprintf("fault %d (%s): wire check: %v", i, what, err))
			break
		}
		if p := lab.WireProblems(answers); len(p) > 0 {
			violations = append(violations, fmt.Sprintf("fault %d (%s): on the wire: %s [%s]", i, what, strings.Join(p, "; "), r.arpDiagnosis(ctx)))
		} else {
			wireOK++
		}
	}
	stop()
	wg.Wait()
	violations = append(violations, s.violations()...)

	var kc []string
	for _, k := range ChaosKinds {
		if counts[k] > 0 {
			kc = append(kc, fmt.Sprintf("%s %d", k, counts[k]))
		}
	}
	detail := fmt.Sprintf("seed %d; faults: %s; %d role samples, %d with two units forwarding, %d unanswered; %d wire checks with exactly one unit answering",
		seed, strings.Join(kc, ", "), s.samples, s.twoActives, s.silent, wireOK)
	lab.RecordEvent(r.name, "chaos", detail)
	if len(violations) > 0 {
		return detail, fmt.Errorf("%s (%s): %w", strings.Join(violations, "; "), detail, errScenarioFailed)
	}
	return detail, nil
}

// snapshotKeep is how much of the past a traffic snapshot keeps: far more
// than a chaos fault's window, so the snapshot read after a fault's
// outage still lists every gap of it.
const snapshotKeep = time.Minute

// snapshotTraffic reads the lab's traffic reports for the figures of the
// faults before (runner.snaps), once every agent has written one since it
// was called (they write every 100 ms; it waits at most freshWait).
func (r *runner) snapshotTraffic() {
	const freshWait = 400 * time.Millisecond
	now := time.Now()
	for deadline := now.Add(freshWait); ; time.Sleep(20 * time.Millisecond) {
		reps, err := lab.TrafficReports(r.name)
		if err != nil || len(reps) == 0 {
			return
		}
		if allWrittenSince(reps, now) || time.Now().After(deadline) {
			r.snaps = append(r.snaps, lab.TrimReports(reps, now.Add(-snapshotKeep)))
			return
		}
	}
}

// allWrittenSince reports whether every agent of reps that is running
// wrote its report at or after t.
func allWrittenSince(reps []lab.TrafficReport, t time.Time) bool {
	for _, rep := range reps {
		if !rep.Running {
			continue
		}
		for _, a := range []*traffic.Report{rep.Client, rep.Server} {
			if a != nil && !a.Final && a.At.Before(t) {
				return false
			}
		}
	}
	return true
}

// chaosFault injects one fault of kind and its repair, and says what it did.
func (r *runner) chaosFault(ctx context.Context, kind string, rng *rand.Rand, settle time.Duration) (string, error) {
	active, err := lab.ActiveUnit(ctx, r.name)
	if err != nil {
		return kind, err
	}
	target := active
	if rng.IntN(2) == 1 {
		target = r.l.Peer(active).Name
	}
	pause := time.Duration(200+rng.IntN(800)) * time.Millisecond
	do := func(f lab.Fault) error {
		_, err := r.inject(ctx, f)
		return err
	}
	sleep := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// killAndRestart waits for the survivor to take over before the
	// victim comes back, so that every kill is a real failover.
	killAndRestart := func(f lab.Fault) error {
		if err := do(f); err != nil {
			return err
		}
		if _, err := r.waitActive(ctx, r.l.Peer(target).Name, settle); err != nil {
			return err
		}
		return do(lab.Fault{Kind: lab.FaultRestart, Target: target})
	}
	switch kind {
	case "kill":
		return "kill " + target, killAndRestart(lab.Fault{Kind: lab.FaultKill, Target: target})
	case "power-off":
		return "power-off " + target, killAndRestart(lab.Fault{Kind: lab.FaultPowerOff, Target: target})
	case "restart":
		return "restart " + target, do(lab.Fault{Kind: lab.FaultRestart, Target: target})
	case "freeze":
		what := fmt.Sprintf("freeze %s for %v", target, pause)
		if err := do(lab.Fault{Kind: lab.FaultFreeze, Target: target}); err != nil {
			return what, err
		}
		if err := sleep(pause); err != nil {
			return what, err
		}
		return what, do(lab.Fault{Kind: lab.FaultThaw, Target: target})
	case "cut":
		what := fmt.Sprintf("cut the failover link for %v", pause)
		if err := do(lab.Fault{Kind: lab.FaultCutFailover}); err != nil {
			return what, err
		}
		if err := sleep(pause); err != nil {
			return what, err
		}
		return what, do(lab.Fault{Kind: lab.FaultHeal})
	case "link":
		ifs := r.l.Firewall.Interfaces
		end := target + ":" + ifs[rng.IntN(len(ifs))].Name
		what := fmt.Sprintf("link %s down for %v", end, pause)
		if err := do(lab.Fault{Kind: lab.FaultLinkDown, Target: end}); err != nil {
			return what, err
		}
		if err := sleep(pause); err != nil {
			return what, err
		}
		return what, do(lab.Fault{Kind: lab.FaultLinkUp, Target: end})
	case "failover":
		return "failover to the standby", do(lab.Fault{Kind: lab.FaultManual})
	case "cut+freeze", "cut+restart":
		what := fmt.Sprintf("cut the failover link, %s %s behind it, heal after %v", strings.TrimPrefix(kind, "cut+"), target, pause)
		if err := do(lab.Fault{Kind: lab.FaultCutFailover}); err != nil {
			return what, err
		}
		second, repair := lab.Fault{Kind: lab.FaultFreeze, Target: target}, lab.Fault{Kind: lab.FaultThaw, Target: target}
		if kind == "cut+restart" {
			second, repair = lab.Fault{Kind: lab.FaultRestart, Target: target}, lab.Fault{}
		}
		if err := do(second); err != nil {
			return what, err
		}
		if err := sleep(pause); err != nil {
			return what, err
		}
		if repair.Kind != "" {
			if err := do(repair); err != nil {
				return what, err
			}
		}
		return what, do(lab.Fault{Kind: lab.FaultHeal})
	}
	return kind, fmt.Errorf("unknown chaos fault %q", kind)
}

// unitStates asks both units their status, each with its own short
// deadline (a frozen unit never answers); a unit that does not answer is
// nil.
func (r *runner) unitStates(ctx context.Context, wait time.Duration) map[string]*api.Status {
	out := make(map[string]*api.Status, len(r.l.Units))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, u := range r.l.Units {
		wg.Go(func() {
			c, err := lab.UnitClient(r.name, u.Name)
			if err != nil {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			s, err := c.Status(cctx)
			if err != nil {
				return
			}
			mu.Lock()
			out[u.Name] = &s
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// describeStates says both units' states in one line.
func (r *runner) describeStates(st map[string]*api.Status) string {
	var parts []string
	for _, u := range r.l.Units {
		s := st[u.Name]
		switch {
		case s == nil:
			parts = append(parts, u.Name+" not answering")
		case !s.FailoverLinkUp:
			parts = append(parts, u.Name+" "+s.State+" (failover link failed)")
		default:
			parts = append(parts, u.Name+" "+s.State)
		}
	}
	return strings.Join(parts, ", ")
}

// waitHealthy waits until one unit is Active, the other Standby Ready, and
// both see the failover link up. It returns the last states seen.
func (r *runner) waitHealthy(ctx context.Context, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	for {
		st := r.unitStates(ctx, 500*time.Millisecond)
		var states []string
		linkUp := true
		for _, u := range r.l.Units {
			if s := st[u.Name]; s != nil {
				states = append(states, s.State)
				linkUp = linkUp && s.FailoverLinkUp
			}
		}
		slices.Sort(states)
		if linkUp && slices.Equal(states, []string{"Active", "Standby Ready"}) {
			return r.describeStates(st), nil
		}
		if time.Now().After(deadline) {
			return r.describeStates(st), errors.New("pair not healthy")
		}
		select {
		case <-ctx.Done():
			return r.describeStates(st), ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitActive waits until name says it is Active.
func (r *runner) waitActive(ctx context.Context, name string, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	for {
		st := r.unitStates(ctx, 500*time.Millisecond)
		if s := st[name]; s != nil && s.Active {
			return r.describeStates(st), nil
		}
		if time.Now().After(deadline) {
			return r.describeStates(st), fmt.Errorf("%s did not become active within %v (%s)", name, within, r.describeStates(st))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// roleSampler asks both units their role every chaosSampleEvery and counts
// the samples in which both claim to be Active, and the digest mismatches
// any standby reported.
type roleSampler struct {
	r *runner

	mu         sync.Mutex
	fault      int // the fault under way, for reports
	samples    int
	twoActives int
	silent     int               // samples in which neither unit answered
	firstTwo   string            // when and during which fault two actives were first seen
	mismatches map[string]uint64 // unit/pid -> digest mismatches its receiver reported
}

func (s *roleSampler) setFault(i int) {
	s.mu.Lock()
	s.fault = i
	s.mu.Unlock()
}

func (s *roleSampler) run(ctx context.Context) {
	t := time.NewTicker(chaosSampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := s.r.unitStates(ctx, 5*chaosSampleEvery)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.samples++
		var fwd []*api.Status
		for name, u := range st {
			// Forwarding, not Active: a unit resuming from a freeze
			// says Active for the moment it takes to ask its peer,
			// but forwards nothing meanwhile (its lease lapsed).
			if u.Forwarding {
				fwd = append(fwd, u)
			}
			if u.Replication.Role == "receiver" && u.Replication.DigestMismatches > 0 {
				k := fmt.Sprintf("%s (pid %d)", name, u.PID)
				s.mismatches[k] = max(s.mismatches[k], u.Replication.DigestMismatches)
			}
		}
		if len(st) == 0 {
			s.silent++
		}
		// The two answers are taken a few milliseconds apart: during a
		// takeover one may still say forwarding while the other already
		// does. Only intervals that overlap prove two units forwarding
		// at once (both units read one clock).
		if len(fwd) == 2 && overlap(fwd[0], fwd[1]) {
			s.twoActives++
			if s.firstTwo == "" {
				s.firstTwo = fmt.Sprintf("first at %s during fault %d", time.Now().Format("15:04:05.000"), s.fault)
			}
		}
		s.mu.Unlock()
	}
}

// overlap reports whether two units' forwarding intervals
// [ForwardingSince, At] share an instant.
func overlap(a, b *api.Status) bool {
	if a.ForwardingSince.IsZero() || b.ForwardingSince.IsZero() {
		return true // no interval given: assume the worst
	}
	start := a.ForwardingSince
	if b.ForwardingSince.After(start) {
		start = b.ForwardingSince
	}
	end := a.At
	if b.At.Before(end) {
		end = b.At
	}
	return !start.After(end)
}

func (s *roleSampler) violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v []string
	if s.twoActives > 0 {
		v = append(v, fmt.Sprintf("both units forwarding as active in %d of %d samples (%s)", s.twoActives, s.samples, s.firstTwo))
	}
	for _, k := range keys(s.mismatches) {
		v = append(v, fmt.Sprintf("standby %s found its digests differing from the active's %d times", k, s.mismatches[k]))
	}
	return v
}

// arpDiagnosis says, for a failed wire check, what each unit's data plane
// counted about ARP and what it forwards: enough to tell a lost request
// from a unit that refused to answer.
func (r *runner) arpDiagnosis(ctx context.Context) string {
	var parts []string
	for _, u := range r.l.Units {
		c, err := lab.UnitClient(r.name, u.Name)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		st, err1 := c.Status(cctx)
		drops, err2 := c.Drops(cctx)
		cancel()
		if err1 != nil || err2 != nil {
			parts = append(parts, u.Name+" not answering")
			continue
		}
		var d []string
		for _, k := range keys(drops) {
			if strings.Contains(k, "arp") || strings.Contains(k, "lease") || k == "not-active" {
				d = append(d, fmt.Sprintf("%s %d", k, drops[k]))
			}
		}
		parts = append(parts, fmt.Sprintf("%s %s forwarding=%v drops: %s", u.Name, st.State, st.Forwarding, strings.Join(d, ", ")))
	}
	return strings.Join(parts, "; ")
}
