package scenario

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/topo"
)

func (r *runner) steps(ctx context.Context, steps []*StepSpec, prefix string) error {
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		at := time.Since(r.start)
		t0 := time.Now()
		desc, detail, err := r.step(ctx, st, prefix)
		res := StepResult{At: at, Step: prefix + desc, OK: err == nil, Took: time.Since(t0), Detail: detail, Checks: r.checks}
		r.checks = nil
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
	case st.Run != nil:
		return r.run(st.Run)
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

// inject performs a fault, keeping the event collector right: the last
// events of a unit about to be restarted are pulled first, and the new
// process numbers its events from 1 again. (Resetting the position before
// the restart fetched the old process's whole timeline a second time and
// then skipped the new process's first events.)
func (r *runner) inject(ctx context.Context, f lab.Fault) (string, error) {
	r.pullEvents()
	r.lastFault = time.Now()
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
