package scenario

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/falab/falab/lab"
)

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
