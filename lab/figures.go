package lab

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/traffic"
)

// FaultFigure is what happened across one fault of the lab's timeline: how
// long until a unit was Active, and what each traffic generator went
// through in the fault's window (from the fault to the next one).
type FaultFigure struct {
	At    time.Time `json:"at"`
	Fault string    `json:"fault"` // the fault event's message
	// ToActiveMs is the time from the fault to the next transition to
	// Active (nil: no unit became Active in the window).
	ToActiveMs *float64       `json:"to_active_ms,omitempty"`
	ActiveAt   time.Time      `json:"active_at,omitzero"`
	NewActive  string         `json:"new_active,omitempty"`
	Traffic    []FaultTraffic `json:"traffic"`
}

// FaultTraffic is one generator's figures across one fault.
type FaultTraffic struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// The fault, repeated so a generator's list of faults reads alone.
	Fault      string    `json:"fault"`
	FaultAt    time.Time `json:"fault_at"`
	ToActiveMs *float64  `json:"to_active_ms,omitempty"`
	// Flows established before the fault, and of them those that did not
	// break in the fault's window.
	Flows       int     `json:"flows"`
	Survived    int     `json:"survived"`
	SurvivedPct float64 `json:"survived_pct"`
	// GapMs is the longest gap of any flow (either side) across the
	// fault; GapFlow the flow's ID.
	GapMs   float64   `json:"gap_ms"`
	GapAt   time.Time `json:"gap_at,omitzero"`
	GapFlow uint32    `json:"gap_flow"`
	// Lost counts probes sent in the window never echoed (udp-probe and
	// ping only).
	Lost uint64 `json:"lost"`
	// GapUpToMs, when set, says the flows' reports dropped notable gaps up
	// to that long (each keeps its longest): the real gap lies between
	// GapMs and GapUpToMs. LostAtLeast: Lost is a floor, loss runs were
	// dropped.
	GapUpToMs   float64 `json:"gap_up_to_ms,omitempty"`
	LostAtLeast bool    `json:"lost_at_least,omitempty"`
}

// IsTakeover reports whether e is a unit's transition to Active.
func IsTakeover(e api.Event) bool {
	return e.Kind == "transition" && strings.Contains(e.Msg, " -> Active:")
}

// FaultFigures sets each fault of timeline (events of kind "fault", in
// time order) against the traffic reports: start-up gaps, before the first
// fault, are nobody's and are left out.
func FaultFigures(timeline []api.Event, reps []TrafficReport) []FaultFigure {
	return FaultFiguresFrom(timeline, reps, nil)
}

// FaultFiguresFrom is FaultFigures with snapshots: the lab's traffic
// reports as read during the run, oldest first (a scenario reads them
// before each chaos fault). A generator's figures across a fault come from
// the first snapshot it wrote after the fault's outage was over: its flows
// list their newest gaps and loss runs whatever their size (see
// traffic.maxGaps), so that snapshot holds the fault's, where the final
// report of a long run may keep only the run's worst. Without such a
// snapshot, from reps.
func FaultFiguresFrom(timeline []api.Event, reps []TrafficReport, snaps [][]TrafficReport) []FaultFigure {
	var faults []api.Event
	for _, e := range timeline {
		if e.Kind == "fault" {
			faults = append(faults, e)
		}
	}
	slices.SortStableFunc(faults, func(a, b api.Event) int { return a.Time.Compare(b.Time) })
	var out []FaultFigure
	for i, f := range faults {
		w := traffic.FaultWindow{At: f.Time}
		if i+1 < len(faults) {
			w.End = faults[i+1].Time
		}
		ff := FaultFigure{At: f.Time, Fault: f.Msg}
		w.Settled = f.Time.Add(settleAfter)
		if t, ok := takeoverIn(timeline, w); ok {
			ms := float64(max(t.Time.Sub(f.Time), 0)) / float64(time.Millisecond)
			ff.ToActiveMs, ff.ActiveAt, ff.NewActive = &ms, t.Time, t.Unit
			w.Settled = t.Time.Add(settleAfter)
		}
		for _, r := range reps {
			if r.Client == nil {
				continue
			}
			ft := trafficAcross(reportAfter(r, w, snaps), w)
			ft.Fault, ft.FaultAt, ft.ToActiveMs = f.Msg, f.Time, ff.ToActiveMs
			ff.Traffic = append(ff.Traffic, ft)
		}
		out = append(out, ff)
	}
	return out
}

// snapshotSlack is how long before a window's end a snapshot may have
// been written and still serve it: a snapshot is read just before the
// next fault is injected, and a gap that begins that close to the next
// fault is the next fault's (its window starts that much early).
const snapshotSlack = 100 * time.Millisecond

// reportAfter returns generator r's report from the first snapshot in
// which both its agents had reported after w's outage was over (to
// snapshotSlack), else r.
func reportAfter(r TrafficReport, w traffic.FaultWindow, snaps [][]TrafficReport) TrafficReport {
	over := w.End
	if !w.Settled.IsZero() && (over.IsZero() || w.Settled.Before(over)) {
		over = w.Settled
	}
	if over.IsZero() {
		return r // the last fault's window runs to the end: the final report
	}
	over = over.Add(-snapshotSlack)
	for _, snap := range snaps {
		for _, s := range snap {
			if s.Traffic.Name != r.Traffic.Name || s.Client == nil || s.Client.At.Before(over) {
				continue
			}
			if r.Server != nil && (s.Server == nil || s.Server.At.Before(over)) {
				continue
			}
			return s
		}
	}
	return r
}

// TrimReports returns a copy of reps whose flows list only the gaps and
// loss runs that ended after since: a snapshot for FaultFiguresFrom, kept
// small over a long run. What it leaves out is said in the flows' dropped
// fields, as the agents say what they drop, so a figure that would need it
// reads as a range (or a floor), never as a smaller outage.
func TrimReports(reps []TrafficReport, since time.Time) []TrafficReport {
	out := slices.Clone(reps)
	for i := range out {
		out[i].Client = trimReport(out[i].Client, since)
		out[i].Server = trimReport(out[i].Server, since)
		out[i].Faults = nil
	}
	return out
}

func trimReport(r *traffic.Report, since time.Time) *traffic.Report {
	if r == nil {
		return nil
	}
	c := *r
	c.Detail = slices.Clone(r.Detail)
	for i := range c.Detail {
		f := &c.Detail[i]
		var gaps []traffic.Gap
		for _, g := range f.Gaps {
			if g.End().After(since) {
				gaps = append(gaps, g)
				continue
			}
			f.GapsDroppedMaxMs = max(f.GapsDroppedMaxMs, g.Ms)
			if g.End().After(f.GapsDroppedUntil) {
				f.GapsDroppedUntil = g.End()
			}
		}
		var runs []traffic.LossRun
		for _, lr := range f.LossRuns {
			if lr.Last.After(since) {
				runs = append(runs, lr)
				continue
			}
			f.LossRunsDroppedLost += lr.Lost
			if lr.Last.After(f.LossRunsDroppedUntil) {
				f.LossRunsDroppedUntil = lr.Last
			}
		}
		f.Gaps, f.LossRuns = gaps, runs
	}
	return &c
}

// AttachFaults gives each traffic report its figures across each fault
// (TrafficReport.Faults).
func AttachFaults(reps []TrafficReport, figs []FaultFigure) {
	for i := range reps {
		reps[i].Faults = nil
		for _, f := range figs {
			for _, t := range f.Traffic {
				if t.Name == reps[i].Traffic.Name {
					reps[i].Faults = append(reps[i].Faults, t)
				}
			}
		}
	}
}

// settleAfter is how long after the takeover (or the fault, without one)
// gaps and losses still count as the fault's: the new active's first
// frames, ARP and the flows' retransmissions.
const settleAfter = time.Second

// takeoverSlack lets a takeover recorded just before its fault's event
// (a manual failover is recorded once the command returned) count.
const takeoverSlack = 100 * time.Millisecond

func takeoverIn(timeline []api.Event, w traffic.FaultWindow) (api.Event, bool) {
	var best api.Event
	found := false
	for _, e := range timeline {
		if !IsTakeover(e) || e.Time.Before(w.At.Add(-takeoverSlack)) || (!w.End.IsZero() && !e.Time.Before(w.End)) {
			continue
		}
		if !found || e.Time.Before(best.Time) {
			best, found = e, true
		}
	}
	return best, found
}

func trafficAcross(r TrafficReport, w traffic.FaultWindow) FaultTraffic {
	c := traffic.FiguresAcross(r.Client.Detail, w)
	out := FaultTraffic{Name: r.Traffic.Name, Kind: r.Traffic.Kind, Flows: c.Flows, Survived: c.Survived,
		SurvivedPct: c.SurvivedPct(), GapMs: durMs(c.Gap), GapAt: c.GapStart, GapFlow: c.GapFlow, Lost: c.Lost,
		LostAtLeast: c.LostAtLeast}
	upTo := c.GapUpTo
	if r.Server != nil {
		// The server receives too (the other direction, or the probes
		// on their way in): its silences count.
		s := traffic.FiguresAcross(r.Server.Detail, w)
		if s.Gap > c.Gap {
			out.GapMs, out.GapAt, out.GapFlow = durMs(s.Gap), s.GapStart, s.GapFlow
		}
		upTo = max(upTo, s.GapUpTo)
	}
	if ms := durMs(upTo); ms > out.GapMs {
		out.GapUpToMs = ms
	}
	return out
}

func durMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Timeline is the lab's timeline as far as it can be read now: the lab's
// own events and each answering unit's (a killed unit's are gone), in time
// order.
func Timeline(ctx context.Context, labName string) []api.Event {
	out, _ := LabEvents(labName)
	st, err := ReadState(labName)
	if err != nil {
		return out
	}
	for u := range st.Units {
		c, err := UnitClient(labName, u)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		evs, err := c.Events(cctx, 0, 0)
		cancel()
		if err == nil {
			out = append(out, evs...)
		}
	}
	slices.SortStableFunc(out, func(a, b api.Event) int { return a.Time.Compare(b.Time) })
	return out
}
