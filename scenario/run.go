package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/labfile"
	"github.com/falab/falab/topo"
)

// pollEvery is how often expectations with `within` are re-checked.
const pollEvery = 10 * time.Millisecond

// StepResult is one step's outcome.
type StepResult struct {
	At     time.Duration `json:"at_ns"` // since the scenario started
	Step   string        `json:"step"`
	OK     bool          `json:"ok"`
	Took   time.Duration `json:"took_ns"`
	Detail string        `json:"detail,omitempty"`
}

// RunReport is a scenario's verdict, timeline and figures.
type RunReport struct {
	Scenario string              `json:"scenario"`
	Lab      string              `json:"lab"`
	Pass     bool                `json:"pass"`
	Error    string              `json:"error,omitempty"`
	Started  time.Time           `json:"started"`
	Took     time.Duration       `json:"took_ns"`
	Steps    []StepResult        `json:"steps"`
	Failures []string            `json:"failures,omitempty"`
	Timeline []api.Event         `json:"timeline"`
	Traffic  []lab.TrafficReport `json:"traffic"`
	// KeptLogs is where the units' logs of a run that did not pass were
	// copied before the lab was removed (empty when it passed).
	KeptLogs string `json:"kept_logs,omitempty"`
}

// RunOptions tune RunScenario.
type RunOptions struct {
	Logger *slog.Logger
	// Progress, when set, gets a line per step as it happens.
	Progress io.Writer
}

// errScenarioFailed marks a failed expectation (as opposed to an error).
var errScenarioFailed = errors.New("expectation failed")

// runner plays one scenario on its lab.
type runner struct {
	sc      *Scenario
	l       *labfile.Lab
	name    string
	start   time.Time
	rep     *RunReport
	opt     RunOptions
	lastARP map[string][]topo.Neighbor // host -> cache before the last fault

	pullMu sync.Mutex // one pullEvents at a time: two would fetch and append the same events
	evMu   sync.Mutex
	events []api.Event       // guarded by evMu: collected from both units
	since  map[string]uint64 // guarded by evMu: last event seq per unit
}

// RunScenario builds the scenario's lab, plays its steps, and tears the
// lab down whatever happens (failure, error, ctx cancelled by Ctrl-C). The
// report says pass or fail; the error is for what stopped the run itself.
func RunScenario(ctx context.Context, sc *Scenario, opt RunOptions) (*RunReport, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &runner{sc: sc, l: sc.Lab, name: sc.Lab.Name, opt: opt, since: map[string]uint64{},
		rep: &RunReport{Scenario: sc.Spec.Name, Lab: sc.Lab.Name, Started: time.Now()}}
	r.start = r.rep.Started
	if _, err := lab.Up(ctx, sc.Lab, sc.LabData, lab.UpOptions{Logger: log}); err != nil {
		err = fmt.Errorf("bring up lab %s: %w", sc.Lab.Name, err)
		r.rep.Error = err.Error()
		return r.rep, err
	}
	// From here on the lab is ours: always remove it, even if ctx ends.
	defer func() {
		if !r.rep.Pass {
			r.rep.KeptLogs = keepLogs(r.name)
		}
		if _, err := lab.Down(r.name, log); err != nil {
			log.Error("down after scenario", "err", err)
		}
	}()
	collectCtx, stopCollect := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.collect(collectCtx) })

	err := r.steps(ctx, sc.Spec.Steps, "")
	// Figures: final traffic reports (stopping any still running).
	_ = lab.StopTraffic(r.name)
	r.rep.Traffic, _ = lab.TrafficReports(r.name)
	stopCollect()
	wg.Wait()
	r.pullEvents() // the last word of each unit
	labEvents, _ := lab.LabEvents(r.name)
	r.evMu.Lock()
	r.rep.Timeline = append(r.events, labEvents...)
	r.evMu.Unlock()
	sort.SliceStable(r.rep.Timeline, func(i, j int) bool { return r.rep.Timeline[i].Time.Before(r.rep.Timeline[j].Time) })
	r.rep.Took = time.Since(r.start)
	switch {
	case err == nil:
		r.rep.Pass = true
	case errors.Is(err, errScenarioFailed):
		r.rep.Pass = false
	default:
		r.rep.Error = err.Error()
		return r.rep, err
	}
	return r.rep, nil
}

// collect pulls both units' events while the scenario runs: a unit that
// is killed takes its in-memory timeline with it.
func (r *runner) collect(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.pullEvents()
		}
	}
}

func (r *runner) pullEvents() {
	r.pullMu.Lock()
	defer r.pullMu.Unlock()
	for _, u := range r.l.Units {
		c, err := lab.UnitClient(r.name, u.Name)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		r.evMu.Lock()
		since := r.since[u.Name]
		r.evMu.Unlock()
		evs, err := c.Events(ctx, since, 0)
		cancel()
		if err != nil || len(evs) == 0 {
			continue
		}
		r.evMu.Lock()
		r.events = append(r.events, evs...)
		r.since[u.Name] = evs[len(evs)-1].Seq
		r.evMu.Unlock()
	}
}

func (r *runner) progress(res StepResult) {
	r.rep.Steps = append(r.rep.Steps, res)
	if r.opt.Progress != nil {
		mark := "ok"
		if !res.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(r.opt.Progress, "  +%7.3fs  %-4s %s", res.At.Seconds(), mark, res.Step)
		if res.Detail != "" {
			fmt.Fprintf(r.opt.Progress, "  (%s)", res.Detail)
		}
		fmt.Fprintln(r.opt.Progress)
	}
}

func (r *runner) steps(ctx context.Context, steps []*StepSpec, prefix string) error {
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		at := time.Since(r.start)
		t0 := time.Now()
		desc, detail, err := r.step(ctx, st, prefix)
		res := StepResult{At: at, Step: prefix + desc, OK: err == nil, Took: time.Since(t0), Detail: detail}
		if err != nil {
			res.Detail = err.Error()
			r.progress(res)
			if errors.Is(err, errScenarioFailed) {
				r.rep.Failures = append(r.rep.Failures, prefix+desc+": "+strings.TrimSuffix(err.Error(), ": "+errScenarioFailed.Error()))
			}
			return err
		}
		if st.Repeat == nil {
			r.progress(res)
		}
	}
	return nil
}

func (r *runner) step(ctx context.Context, st *StepSpec, prefix string) (desc, detail string, err error) {
	switch {
	case st.Mark != "":
		lab.RecordEvent(r.name, "mark", st.Mark)
		return "mark " + st.Mark, "", nil
	case st.Wait != nil:
		d := st.Wait.D(0)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return "wait", "", ctx.Err()
		}
		return "wait " + d.String(), "", nil
	case st.WaitFor != nil:
		desc = "wait_for " + describeExpect(st.WaitFor)
		detail, err = r.expect(ctx, st.WaitFor)
		return desc, detail, err
	case st.Expect != nil:
		desc = "expect " + describeExpect(st.Expect)
		detail, err = r.expect(ctx, st.Expect)
		return desc, detail, err
	case st.Traffic != nil:
		t := st.Traffic
		tr := lab.Traffic{Name: t.Name, Kind: t.Kind, Client: t.Client, Server: t.Server, Flows: t.Flows, Direction: t.Direction, Rate: int64(t.Rate), Port: t.Port, Target: t.Target}
		if t.Interval != nil {
			tr.Interval = t.Interval.D(0)
		}
		desc = fmt.Sprintf("traffic %s: %s %s -> %s", tr.Name, tr.Kind, tr.Client, tr.Server)
		return desc, "", lab.StartTraffic(ctx, r.name, tr)
	case st.StopTraffic != nil:
		names := st.StopTraffic
		if slices.Contains(names, "all") {
			names = nil
		}
		return "stop_traffic " + strings.Join(st.StopTraffic, ","), "", lab.StopTraffic(r.name, names...)
	case st.Fault != nil:
		f := faultOf(st.Fault)
		r.snapshotARP()
		msg, err := r.inject(ctx, f)
		return "fault " + f.String(), msg, err
	case st.Chaos != nil:
		desc = fmt.Sprintf("chaos: %d random faults", st.Chaos.Faults)
		detail, err = r.chaos(ctx, st.Chaos)
		return desc, detail, err
	case st.Repeat != nil:
		for i := 0; i < st.Repeat.Times; i++ {
			if err := r.steps(ctx, st.Repeat.Steps, fmt.Sprintf("%s[%d/%d] ", prefix, i+1, st.Repeat.Times)); err != nil {
				return fmt.Sprintf("repeat %d times", st.Repeat.Times), "", err
			}
		}
		return fmt.Sprintf("repeat %d times", st.Repeat.Times), "", nil
	}
	return "", "", fmt.Errorf("empty step")
}

// keepLogs copies a lab's unit logs and event log out of its state
// directory, which Down removes, into a new directory under the system's
// temporary directory, and returns its path ("" if nothing was copied).
func keepLogs(labName string) string {
	files, _ := filepath.Glob(filepath.Join(lab.Dir(labName), "*.log"))
	// The lab's own event log; not the traffic reports, which are large.
	files = append(files, filepath.Join(lab.Dir(labName), "events.jsonl"))
	if len(files) == 0 {
		return ""
	}
	dir, err := os.MkdirTemp("", "falab-run-"+labName+"-")
	if err != nil {
		return ""
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			_ = os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600)
		}
	}
	return dir
}

// inject performs a fault, keeping the event collector right: the last
// events of a unit about to be restarted are pulled first, and the new
// process numbers its events from 1 again. (Resetting the position before
// the restart fetched the old process's whole timeline a second time and
// then skipped the new process's first events.)
func (r *runner) inject(ctx context.Context, f lab.Fault) (string, error) {
	r.pullEvents()
	msg, err := lab.Inject(ctx, r.name, f)
	if f.Kind == lab.FaultRestart && err == nil {
		r.evMu.Lock()
		r.since[f.Target] = 0
		r.evMu.Unlock()
	}
	return msg, err
}

func faultOf(fs *FaultSpec) lab.Fault {
	switch {
	case fs.Kill != "":
		return lab.Fault{Kind: lab.FaultKill, Target: fs.Kill}
	case fs.Freeze != "":
		return lab.Fault{Kind: lab.FaultFreeze, Target: fs.Freeze}
	case fs.Thaw != "":
		return lab.Fault{Kind: lab.FaultThaw, Target: fs.Thaw}
	case fs.Restart != "":
		return lab.Fault{Kind: lab.FaultRestart, Target: fs.Restart}
	case fs.PowerOff != "":
		return lab.Fault{Kind: lab.FaultPowerOff, Target: fs.PowerOff}
	case fs.LinkDown != "":
		return lab.Fault{Kind: lab.FaultLinkDown, Target: fs.LinkDown}
	case fs.LinkUp != "":
		return lab.Fault{Kind: lab.FaultLinkUp, Target: fs.LinkUp}
	case fs.CutFailover:
		return lab.Fault{Kind: lab.FaultCutFailover}
	case fs.HealFailover:
		return lab.Fault{Kind: lab.FaultHeal}
	case fs.Loss != nil:
		return lab.Fault{Kind: lab.FaultLoss, Target: fs.Loss.Link, Percent: fs.Loss.Percent}
	case fs.Clear != "":
		return lab.Fault{Kind: lab.FaultClear, Target: fs.Clear}
	default:
		t := fs.Failover
		if t == "standby" {
			t = ""
		}
		return lab.Fault{Kind: lab.FaultManual, Target: t}
	}
}

func (r *runner) snapshotARP() {
	r.lastARP = map[string][]topo.Neighbor{}
	for _, h := range r.l.Hosts {
		if n, err := topo.Neighbors(r.l.Namespace(h.Name)); err == nil {
			r.lastARP[h.Name] = n
		}
	}
}

func describeExpect(e *ExpectSpec) string {
	var parts []string
	if e.Active != "" {
		parts = append(parts, "active "+e.Active)
	}
	if e.StandbyReady != "" {
		parts = append(parts, "standby_ready "+e.StandbyReady)
	}
	for _, u := range keys(e.State) {
		parts = append(parts, u+" "+e.State[u])
	}
	if e.FailoverLink != "" {
		parts = append(parts, "failover link "+e.FailoverLink)
	}
	if e.StandbyHas != "" {
		parts = append(parts, "standby has "+e.StandbyHas)
	}
	for _, n := range keys(e.Traffic) {
		parts = append(parts, "traffic "+n)
	}
	for _, a := range e.ARP {
		if a != nil {
			parts = append(parts, fmt.Sprintf("arp %s %s %s", a.Host, a.IP, a.MAC))
		}
	}
	for _, d := range keys(e.Drops) {
		parts = append(parts, "drops "+d+" "+e.Drops[d])
	}
	if e.OneAnswer {
		parts = append(parts, "one unit answers ARP on the wire")
	}
	if e.SteadyReplication {
		parts = append(parts, "steady replication")
	}
	if e.MaxTerm > 0 {
		parts = append(parts, fmt.Sprintf("max term %d", e.MaxTerm))
	}
	if e.Within != nil {
		parts = append(parts, "within "+e.Within.D(0).String())
	}
	return strings.Join(parts, ", ")
}

// expect checks e, retrying every pollEvery until within has passed.
func (r *runner) expect(ctx context.Context, e *ExpectSpec) (string, error) {
	within := e.Within.D(0)
	deadline := time.Now().Add(within)
	t0 := time.Now()
	for {
		problems := r.check(ctx, e)
		if len(problems) == 0 {
			if within > 0 {
				return "after " + time.Since(t0).Round(time.Millisecond).String(), nil
			}
			return "", nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: %w", strings.Join(problems, "; "), errScenarioFailed)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// check returns what does not hold now.
func (r *runner) check(ctx context.Context, e *ExpectSpec) []string {
	var problems []string
	status := map[string]*api.Status{}
	stateOf := func(u string) string {
		if s, ok := status[u]; ok {
			if s == nil {
				return "Down"
			}
			return s.State
		}
		c, err := lab.UnitClient(r.name, u)
		if err != nil {
			status[u] = nil
			return "Down"
		}
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		s, err := c.Status(cctx)
		if err != nil {
			status[u] = nil
			return "Down"
		}
		status[u] = &s
		return s.State
	}
	if e.Active != "" {
		if s := stateOf(e.Active); s != "Active" {
			problems = append(problems, fmt.Sprintf("%s is %s, not Active", e.Active, s))
		}
	}
	if e.StandbyReady != "" {
		if s := stateOf(e.StandbyReady); s != "Standby Ready" {
			problems = append(problems, fmt.Sprintf("%s is %s, not Standby Ready", e.StandbyReady, s))
		}
	}
	for _, u := range keys(e.State) {
		if s := stateOf(u); s != e.State[u] {
			problems = append(problems, fmt.Sprintf("%s is %s, not %s", u, s, e.State[u]))
		}
	}
	if e.FailoverLink != "" {
		var failed, seen []string
		for _, u := range r.l.Units {
			stateOf(u.Name)
			if s := status[u.Name]; s != nil {
				seen = append(seen, u.Name)
				if !s.FailoverLinkUp {
					failed = append(failed, u.Name)
				}
			}
		}
		switch {
		case e.FailoverLink == "failed" && len(failed) == 0:
			problems = append(problems, fmt.Sprintf("no unit reports the failover link failed (asked %s)", strings.Join(seen, ", ")))
		case e.FailoverLink == "up" && len(failed) > 0:
			problems = append(problems, fmt.Sprintf("%s report the failover link failed", strings.Join(failed, ", ")))
		}
	}
	switch e.StandbyHas {
	case "all-conns":
		if p := r.checkStandbyHas(ctx); p != "" {
			problems = append(problems, p)
		}
	case "bridge-table":
		if p := r.checkBridgeTable(ctx); p != "" {
			problems = append(problems, p)
		}
	}
	if len(e.Traffic) > 0 {
		reps, err := lab.TrafficReports(r.name)
		if err != nil {
			problems = append(problems, err.Error())
		}
		for _, name := range keys(e.Traffic) {
			problems = append(problems, checkTraffic(name, e.Traffic[name], reps)...)
		}
	}
	for _, a := range e.ARP {
		if a != nil {
			if p := r.checkARP(a); p != "" {
				problems = append(problems, p)
			}
		}
	}
	if e.SteadyReplication || e.MaxTerm > 0 {
		for _, u := range r.l.Units {
			stateOf(u.Name)
			s := status[u.Name]
			if s == nil {
				problems = append(problems, u.Name+" not answering")
				continue
			}
			if e.MaxTerm > 0 && s.Term > uint64(e.MaxTerm) {
				problems = append(problems, fmt.Sprintf("%s is in term %d, above %d: a takeover happened", u.Name, s.Term, e.MaxTerm))
			}
			if e.SteadyReplication {
				if p := steadyProblem(s.Replication); p != "" {
					problems = append(problems, u.Name+": "+p)
				}
			}
		}
	}
	if e.OneAnswer {
		answers, err := lab.GatewayAnswers(ctx, r.l)
		if err != nil {
			problems = append(problems, "one answer: "+err.Error())
		}
		problems = append(problems, lab.WireProblems(answers)...)
	}
	if len(e.Drops) > 0 {
		active, err := lab.ActiveUnit(ctx, r.name)
		var drops map[string]uint64
		if err == nil {
			var c *api.Client
			if c, err = lab.UnitClient(r.name, active); err == nil {
				drops, err = c.Drops(ctx)
			}
		}
		if err != nil {
			problems = append(problems, "drops: "+err.Error())
		}
		for _, reason := range keys(e.Drops) {
			op, n, _ := parseCount(e.Drops[reason])
			if got := drops[reason]; !compare(got, op, n) {
				problems = append(problems, fmt.Sprintf("drops %s on %s: %d, expected %s%d", reason, active, got, op, n))
			}
		}
	}
	return problems
}

// steadyProblem says what shows a state session that did not hold, or "".
func steadyProblem(r api.ReplicationStats) string {
	var p []string
	if r.Sessions != 1 {
		p = append(p, fmt.Sprintf("%d state sessions", r.Sessions))
	}
	if r.SessionErrors != 0 {
		p = append(p, fmt.Sprintf("%d session errors (last: %s)", r.SessionErrors, r.LastError))
	}
	if r.Role == "receiver" && r.BulkSyncs != 1 {
		p = append(p, fmt.Sprintf("%d bulk syncs", r.BulkSyncs))
	}
	if r.Resyncs != 0 || r.Overflows != 0 || r.DigestMismatches != 0 {
		p = append(p, fmt.Sprintf("%d resyncs, %d overflows, %d digest mismatches", r.Resyncs, r.Overflows, r.DigestMismatches))
	}
	if !r.Synced {
		p = append(p, "not synced")
	}
	if len(p) == 0 {
		return ""
	}
	return "state session did not hold: " + strings.Join(p, ", ")
}

func compare(got uint64, op string, n uint64) bool {
	switch op {
	case ">":
		return got > n
	case ">=":
		return got >= n
	case "<":
		return got < n
	case "<=":
		return got <= n
	}
	return got == n
}

func checkTraffic(name string, te *TrafficExpect, reps []lab.TrafficReport) []string {
	var tr *lab.TrafficReport
	for i := range reps {
		if reps[i].Traffic.Name == name {
			tr = &reps[i]
		}
	}
	if tr == nil || tr.Client == nil {
		return []string{"traffic " + name + ": no report"}
	}
	if te == nil {
		return nil
	}
	c := tr.Client
	var problems []string
	bad := func(format string, a ...any) {
		problems = append(problems, fmt.Sprintf("traffic %s: ", name)+fmt.Sprintf(format, a...))
	}
	dead := c.Reset + c.Stalled + c.Corrupt + c.Failed
	survived := 100.0
	if c.Flows > 0 {
		survived = 100 * float64(c.Flows-dead) / float64(c.Flows)
	} else {
		bad("no flows")
	}
	if te.Survived != "" {
		if want, _ := parsePercent(te.Survived); survived < want {
			bad("%.0f%% survived (%d of %d: %d reset, %d stalled, %d corrupt, %d failed), expected at least %s", survived, c.Flows-dead, c.Flows, c.Reset, c.Stalled, c.Corrupt, c.Failed, te.Survived)
		}
	}
	if te.MaxSurvived != "" {
		if want, _ := parsePercent(te.MaxSurvived); survived > want {
			bad("%.0f%% survived, expected at most %s", survived, te.MaxSurvived)
		}
	}
	if te.Resets != nil && c.Reset != *te.Resets {
		bad("%d flows reset, expected %d", c.Reset, *te.Resets)
	}
	if te.MinResets != nil && c.Reset < *te.MinResets {
		bad("%d flows reset, expected at least %d", c.Reset, *te.MinResets)
	}
	if te.MaxGap != nil {
		if gap := time.Duration(c.LongestGapMs * float64(time.Millisecond)); gap > te.MaxGap.D(0) {
			bad("longest gap %v, expected at most %v", gap.Round(10*time.Microsecond), te.MaxGap.D(0))
		}
	}
	if te.MaxLost != nil && c.Lost > uint64(*te.MaxLost) {
		bad("%d lost, expected at most %d", c.Lost, *te.MaxLost)
	}
	if te.SameMapping {
		if tr.Server == nil {
			bad("no server report to check the NAT mapping")
		} else {
			for _, f := range tr.Server.Detail {
				if len(f.Peers) > 1 {
					bad("flow %d came from %d source addresses %v: NAT changed its mapping", f.ID, len(f.Peers), f.Peers)
				}
			}
		}
	}
	return problems
}

// checkStandbyHas compares the active's and the standby's connections: every
// replicated connection of the active must be on the standby.
func (r *runner) checkStandbyHas(ctx context.Context) string {
	active, err := lab.ActiveUnit(ctx, r.name)
	if err != nil {
		return err.Error()
	}
	standby := r.l.Peer(active).Name
	keysOf := func(u string) (map[string]bool, error) {
		c, err := lab.UnitClient(r.name, u)
		if err != nil {
			return nil, err
		}
		out := map[string]bool{}
		for off := 0; ; {
			p, err := c.Conns(ctx, off, 10000)
			if err != nil {
				return nil, err
			}
			for _, cn := range p.Entries {
				if cn.HTTP && !r.l.Failover.HTTPReplication {
					continue
				}
				out[cn.Protocol+" "+cn.OrigSrc+" "+cn.OrigDst] = true
			}
			off += len(p.Entries)
			if len(p.Entries) == 0 || off >= p.Total {
				return out, nil
			}
		}
	}
	a, err := keysOf(active)
	if err != nil {
		return err.Error()
	}
	s, err := keysOf(standby)
	if err != nil {
		return err.Error()
	}
	var missing []string
	for k := range a {
		if !s[k] {
			missing = append(missing, k)
		}
	}
	if len(a) == 0 {
		return "the active has no connections to compare"
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Sprintf("standby %s lacks %d of the active's %d connections (e.g. %s)", standby, len(missing), len(a), missing[0])
	}
	return ""
}

// checkBridgeTable compares the active's and the standby's bridge tables.
func (r *runner) checkBridgeTable(ctx context.Context) string {
	active, err := lab.ActiveUnit(ctx, r.name)
	if err != nil {
		return err.Error()
	}
	standby := r.l.Peer(active).Name
	table := func(u string) (map[string]string, error) {
		c, err := lab.UnitClient(r.name, u)
		if err != nil {
			return nil, err
		}
		bt, err := c.Bridge(ctx)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, b := range bt {
			out[b.MAC] = b.Interface
		}
		return out, nil
	}
	a, err := table(active)
	if err != nil {
		return err.Error()
	}
	s, err := table(standby)
	if err != nil {
		return err.Error()
	}
	if len(a) == 0 {
		return "the active's bridge table is empty"
	}
	for mac, iface := range a {
		if s[mac] != iface {
			return fmt.Sprintf("standby %s has %s on %q, the active on %q (%d vs %d entries)", standby, mac, s[mac], iface, len(s), len(a))
		}
	}
	if len(s) != len(a) {
		return fmt.Sprintf("standby %s has %d bridge entries, the active %d", standby, len(s), len(a))
	}
	return ""
}

func (r *runner) checkARP(a *ARPExpect) string {
	ip := net.ParseIP(a.IP).To4()
	ns, err := topo.Neighbors(r.l.Namespace(a.Host))
	if err != nil {
		return err.Error()
	}
	find := func(list []topo.Neighbor) string {
		for _, n := range list {
			if n.IP == netipFrom(ip) && n.MAC != nil {
				return n.MAC.String()
			}
		}
		return ""
	}
	got := find(ns)
	if got == "" {
		return fmt.Sprintf("%s has no ARP entry for %s", a.Host, a.IP)
	}
	var want string
	switch a.MAC {
	case "unchanged":
		want = find(r.lastARP[a.Host])
		if want == "" {
			return fmt.Sprintf("%s had no ARP entry for %s before the last fault to compare with", a.Host, a.IP)
		}
	case "virtual":
		fi := r.ifaceFor(ip)
		if fi == nil {
			return fmt.Sprintf("%s is on no firewall interface", a.IP)
		}
		want = fi.VirtualMAC.String()
	default:
		if u, ok := r.l.Unit(a.MAC); ok {
			fi := r.ifaceFor(ip)
			if fi == nil {
				return fmt.Sprintf("%s is on no firewall interface", a.IP)
			}
			want = u.MACs[fi.Name].String()
		} else {
			want = strings.ToLower(a.MAC)
		}
	}
	if got != want {
		return fmt.Sprintf("%s's ARP entry for %s is %s, expected %s (%s)", a.Host, a.IP, got, want, a.MAC)
	}
	return ""
}

func (r *runner) ifaceFor(ip net.IP) *labfile.FirewallInterface {
	for i := range r.l.Firewall.Interfaces {
		fi := &r.l.Firewall.Interfaces[i]
		if fi.Addr.IsValid() && fi.Addr.Masked().Contains(netipFrom(ip)) {
			return fi
		}
	}
	return nil
}

// TrafficSummary is one line of figures for a report.
func TrafficSummary(tr lab.TrafficReport) string {
	c := tr.Client
	if c == nil {
		return tr.Traffic.Name + ": no report"
	}
	s := fmt.Sprintf("%s (%s %s->%s): %d flows, %d reset, %d stalled, %d corrupt, longest gap %.1fms",
		tr.Traffic.Name, tr.Traffic.Kind, tr.Traffic.Client, tr.Traffic.Server, c.Flows, c.Reset, c.Stalled, c.Corrupt, c.LongestGapMs)
	if c.Sent > 0 {
		s += fmt.Sprintf(", %d sent, %d lost", c.Sent, c.Lost)
	}
	if tr.Server != nil && tr.Traffic.Kind != "ping" {
		peers := map[string]bool{}
		for _, f := range tr.Server.Detail {
			for _, p := range append(slices.Clone(f.Peers), f.Remote) {
				if ap, err := netip.ParseAddrPort(p); err == nil {
					peers[ap.Addr().Unmap().String()] = true
				}
			}
		}
		s += ", server saw " + strings.Join(keys(peers), ",")
	}
	return s
}

func netipFrom(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip.To4())
	return a
}
