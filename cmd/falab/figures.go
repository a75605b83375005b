package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/falab/falab/lab"
)

// printFaultFigures prints, per fault, the time to Active and each
// generator's gap, loss and survival across it: the figures that belong to
// the failover, not the longest gap of the whole run (often at start-up).
func printFaultFigures(w io.Writer, figs []lab.FaultFigure) {
	if len(figs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nper fault (start-up gaps left out):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  FAULT\tTO ACTIVE\tTRAFFIC\tKIND\tGAP\tLOST\tSURVIVED")
	for _, f := range figs {
		label := fmt.Sprintf("%s %s", f.At.Format("15:04:05.000"), f.Fault)
		if len(f.Traffic) == 0 {
			fmt.Fprintf(tw, "  %s\t%s\t-\t\t\t\t\n", label, toActive(f.ToActiveMs, f.NewActive))
		}
		for i, t := range f.Traffic {
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%.0f%% (%d/%d)\n", label, toActive(f.ToActiveMs, f.NewActive),
				t.Name, t.Kind, gapText(t), lostText(t), t.SurvivedPct, t.Survived, t.Flows)
		}
	}
	tw.Flush()
}

func toActive(ms *float64, unit string) string {
	if ms == nil {
		return "no takeover"
	}
	return fmt.Sprintf("%.0fms (%s)", *ms, unit)
}

// lostText is "-" for the stream kinds: TCP retransmits, nothing is lost.
// A floor (loss runs dropped from the reports) reads ">=N".
func lostText(t lab.FaultTraffic) string {
	if t.Kind != "udp-probe" && t.Kind != "ping" {
		return "-"
	}
	if t.LostAtLeast {
		return fmt.Sprintf(">=%d", t.Lost)
	}
	return fmt.Sprint(t.Lost)
}

// gapText is the fault's gap, or its range when the reports dropped
// notable gaps that could be longer than the longest listed one.
func gapText(t lab.FaultTraffic) string {
	if t.GapUpToMs > t.GapMs {
		return fmt.Sprintf("%.1f-%.1fms", t.GapMs, t.GapUpToMs)
	}
	return fmt.Sprintf("%.1fms", t.GapMs)
}
