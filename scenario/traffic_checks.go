package scenario

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/falab/falab/lab"
)

// trafficChecks checks a generator's figures against te, one Check per
// expectation, each with what was expected and observed.
func trafficChecks(name string, te *TrafficExpect, reps []lab.TrafficReport) []Check {
	var tr *lab.TrafficReport
	for i := range reps {
		if reps[i].Traffic.Name == name {
			tr = &reps[i]
		}
	}
	key := "traffic." + name + "."
	if tr == nil || tr.Client == nil {
		return []Check{{Check: key + "report", Expected: "present", Observed: "none", Detail: "no report"}}
	}
	if te == nil {
		return nil
	}
	c := tr.Client
	var checks []Check
	add := func(check, expected, observed string, ok bool, format string, a ...any) {
		checks = append(checks, Check{Check: key + check, Expected: expected, Observed: observed, OK: ok, Detail: fmt.Sprintf(format, a...)})
	}
	dead := c.Reset + c.Stalled + c.Corrupt + c.Failed
	survived := 100.0
	if c.Flows > 0 {
		survived = 100 * float64(c.Flows-dead) / float64(c.Flows)
	} else {
		add("flows", ">0", "0", false, "no flows")
	}
	pct := fmt.Sprintf("%.0f%%", survived)
	if te.Survived != "" {
		want, _ := parsePercent(te.Survived)
		add("survived", ">="+te.Survived, pct, survived >= want, "%.0f%% survived (%d of %d: %d reset, %d stalled, %d corrupt, %d failed), expected at least %s", survived, c.Flows-dead, c.Flows, c.Reset, c.Stalled, c.Corrupt, c.Failed, te.Survived)
	}
	if te.MaxSurvived != "" {
		want, _ := parsePercent(te.MaxSurvived)
		add("survived", "<="+te.MaxSurvived, pct, survived <= want, "%.0f%% survived, expected at most %s", survived, te.MaxSurvived)
	}
	if te.Resets != nil {
		add("resets", fmt.Sprint(*te.Resets), fmt.Sprint(c.Reset), c.Reset == *te.Resets, "%d flows reset, expected %d", c.Reset, *te.Resets)
	}
	if te.MinResets != nil {
		add("resets", fmt.Sprintf(">=%d", *te.MinResets), fmt.Sprint(c.Reset), c.Reset >= *te.MinResets, "%d flows reset, expected at least %d", c.Reset, *te.MinResets)
	}
	if te.MaxGap != nil {
		gap := time.Duration(c.LongestGapMs * float64(time.Millisecond))
		add("gap", "<="+te.MaxGap.D(0).String(), gap.Round(10*time.Microsecond).String(), gap <= te.MaxGap.D(0), "longest gap %v, expected at most %v", gap.Round(10*time.Microsecond), te.MaxGap.D(0))
	}
	if te.MaxLost != nil {
		add("lost", fmt.Sprintf("<=%d", *te.MaxLost), fmt.Sprint(c.Lost), c.Lost <= uint64(*te.MaxLost), "%d lost, expected at most %d", c.Lost, *te.MaxLost)
	}
	if te.SameMapping {
		checks = append(checks, mappingCheck(key, tr))
	}
	return checks
}

// mappingCheck: the server saw one source address:port per flow.
func mappingCheck(key string, tr *lab.TrafficReport) Check {
	c := Check{Check: key + "same_mapping", Expected: "1 source per flow", OK: true}
	if tr.Server == nil {
		c.Observed, c.OK, c.Detail = "no server report", false, "no server report to check the NAT mapping"
		return c
	}
	remapped := 0
	var details []string
	for _, f := range tr.Server.Detail {
		if len(f.Peers) > 1 {
			remapped++
			details = append(details, fmt.Sprintf("flow %d came from %d source addresses %v: NAT changed its mapping", f.ID, len(f.Peers), f.Peers))
		}
	}
	c.Observed = fmt.Sprintf("%d of %d flows re-mapped", remapped, len(tr.Server.Detail))
	c.OK, c.Detail = remapped == 0, strings.Join(details, "; ")
	return c
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
