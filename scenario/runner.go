package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
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
	// Checks are the step's expectations with expected and observed
	// values (expect and wait_for steps; observe.go).
	Checks []Check `json:"checks,omitempty"`
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
	// Faults are the figures across each fault of the timeline: time to
	// Active, and each generator's gap, loss and survival (start-up gaps
	// left out).
	Faults []lab.FaultFigure `json:"faults,omitempty"`
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
	// lastFault is when the last fault was injected (voice checks: media
	// across the failover).
	lastFault time.Time
	// snaps are the traffic reports read before each chaos fault,
	// trimmed (lab.FaultFiguresFrom): each fault's figures come from the
	// first written after its outage, which still lists its gaps.
	snaps [][]lab.TrafficReport

	pullMu sync.Mutex // one pullEvents at a time: two would fetch and append the same events
	evMu   sync.Mutex
	events []api.Event       // guarded by evMu: collected from both units
	since  map[string]uint64 // guarded by evMu: last event seq per unit
	checks []Check           // the current expectation's checks (observe.go)
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
	r.rep.Faults = lab.FaultFiguresFrom(r.rep.Timeline, r.rep.Traffic, r.snaps)
	lab.AttachFaults(r.rep.Traffic, r.rep.Faults)
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

// keepLogs copies a lab's logs (units, daemons, traffic agents), its event
// log and the traffic agents' last reports (one report each, kilobytes) out of its state
// directory, which Down removes, into a new directory under the system's
// temporary directory, and returns its path ("" if nothing was copied).
func keepLogs(labName string) string {
	files, _ := filepath.Glob(filepath.Join(lab.Dir(labName), "*.log"))
	reports, _ := filepath.Glob(filepath.Join(lab.Dir(labName), "traffic-*.jsonl"))
	files = append(files, reports...)
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
