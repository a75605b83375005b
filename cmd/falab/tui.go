package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/traffic"
	"github.com/falab/falab/tui"
)

// newTUICmd attaches the live terminal UI to a running lab.
func newTUICmd(e *env) *cobra.Command {
	var labName string
	cmd := &cobra.Command{
		Use:         "tui [LAB] [--lab LAB]",
		Short:       "the live terminal UI over a running lab (q leaves the lab running)",
		Args:        maxArgs(1, "lab"),
		Annotations: rootNeeded(),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := pickLab(labName, firstOr(args, ""))
			if err != nil {
				return err
			}
			return runTUI(cmd.Context(), e, name)
		},
	}
	labFlag(cmd, &labName)
	return cmd
}

func runTUI(ctx context.Context, e *env, name string) error {
	return tui.Run(ctx, name, tui.Options{Log: e.log, Traffic: trafficFeed(name)})
}

// isTerminal reports whether stdout is a terminal (the TUI needs one).
func isTerminal() bool { return term.IsTerminal(int(os.Stdout.Fd())) }

// trafficFeed turns the lab's traffic reports into the TUI's summaries.
func trafficFeed(name string) func(context.Context) ([]tui.TrafficFlowSummary, error) {
	return func(ctx context.Context) ([]tui.TrafficFlowSummary, error) {
		reps, err := lab.TrafficReports(name)
		if err != nil {
			return nil, err
		}
		lab.AttachFaults(reps, lab.FaultFigures(lab.Timeline(ctx, name), reps))
		var out []tui.TrafficFlowSummary
		for _, r := range reps {
			s := tui.TrafficFlowSummary{Name: fmt.Sprintf("%s %s->%s", r.Traffic.Name, r.Traffic.Client, r.Traffic.Server), Kind: r.Traffic.Kind}
			if c := r.Client; c != nil {
				s.Flows = c.Flows
				s.Alive = c.Alive + c.Completed
				s.Broken = c.Reset + c.Stalled + c.Corrupt + c.Failed
				s.LongestGap = time.Duration(c.LongestGapMs * float64(time.Millisecond))
				if el := c.At.Sub(c.Started).Seconds(); el > 0 {
					s.RateBps = float64(c.BytesReceived+c.BytesSent) * 8 / el
				}
				s.At, s.Traces = c.At, tuiTraces(c.Detail)
			}
			s.Faults = tuiFaults(r.Faults)
			out = append(out, s)
		}
		return out, nil
	}
}

// tuiFaults are a generator's per-fault figures for the Traffic tab.
func tuiFaults(fts []lab.FaultTraffic) []tui.TrafficFault {
	var out []tui.TrafficFault
	for _, t := range fts {
		f := tui.TrafficFault{Fault: t.Fault, At: t.FaultAt, ToActive: -1, Gap: time.Duration(t.GapMs * float64(time.Millisecond)), Lost: -1, SurvivedPct: t.SurvivedPct}
		if t.ToActiveMs != nil {
			f.ToActive = time.Duration(*t.ToActiveMs * float64(time.Millisecond))
		}
		if t.Kind == "udp-probe" || t.Kind == "ping" {
			f.Lost = int64(t.Lost)
		}
		out = append(out, f)
	}
	return out
}

// tuiTraces are a client's flows for the Traffic tab's gap chart: where
// each received (the client verifies what arrives, as the HTML report's
// chart draws it).
func tuiTraces(flows []traffic.FlowReport) []tui.FlowTrace {
	out := make([]tui.FlowTrace, 0, len(flows))
	for _, f := range flows {
		tr := tui.FlowTrace{ID: f.ID, Established: f.Established, Ended: f.Ended}
		for _, g := range f.Gaps {
			tr.Gaps = append(tr.Gaps, tui.TraceGap{Start: g.Start, Len: time.Duration(g.Ms * float64(time.Millisecond)), Open: g.Open})
		}
		out = append(out, tr)
	}
	return out
}
