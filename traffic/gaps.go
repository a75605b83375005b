package traffic

import (
	"slices"
	"time"
)

// NotableGap is the shortest gap a flow lists in its report (FlowReport.Gaps):
// shorter ones are scheduling noise, not an outage, and listing them would
// only grow the report files.
const NotableGap = 3 * time.Millisecond

// A flow remembers at most maxGaps notable gaps and maxLossRuns loss runs:
// the recentKept newest of each, whatever their size, and of the older
// ones the longest gaps and largest runs. The newest are kept so that a
// figure per fault taken soon after the fault (a scenario reads the
// reports before each chaos fault) finds that fault's gaps even when the
// run's longest outages fill the list; the longest are kept so that the
// final report still holds the run's worst. 64 of each is about 5 KB per
// flow. What does not fit is not lost silently: the report says how long
// the longest dropped gap was, how many probes the dropped runs lost, and
// when the latest of them ended (FlowReport.GapsDroppedMaxMs,
// GapsDroppedUntil, LossRunsDroppedLost, LossRunsDroppedUntil), and a
// fault's figures say when they may be short.
const (
	maxGaps     = 64
	maxLossRuns = 64
	recentKept  = 16
)

// maxPeers bounds the source addresses a udp-probe server lists for one
// session: two already say NAT re-mapped the flow, and a path that re-maps
// on every probe must not grow the report without end.
const maxPeers = 16

// Gap is one silence of a flow: nothing arrived from Start for Ms
// milliseconds. The gaps carry their times so a reader can tell the
// start-up gap from the one across a fault.
type Gap struct {
	Start time.Time `json:"start"`
	Ms    float64   `json:"ms"`
	// Open says the gap had not ended at the report time (the flow was
	// still silent).
	Open bool `json:"open,omitempty"`
}

// End is when the gap ended (or the report time, for an open gap).
func (g Gap) End() time.Time { return g.Start.Add(time.Duration(g.Ms * float64(time.Millisecond))) }

// LossRun is a run of consecutive probes that were never echoed: Lost
// probes sent between First and Last.
type LossRun struct {
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	Lost  uint64    `json:"lost"`
	seq   uint64    // first sequence number of the run
	span  uint64    // sequence numbers the run covers
}

// noteGap remembers a closed gap of d starting at start if it is notable
// (see maxGaps for which are kept).
func (g *GapTracker) noteGap(start time.Time, d time.Duration) {
	if d < NotableGap {
		return
	}
	g.notable = append(g.notable, Gap{Start: start, Ms: durMs(d)})
	if len(g.notable) <= maxGaps {
		return
	}
	// Drop the shortest of those older than the recentKept newest.
	short := 0
	for j, x := range g.notable[:len(g.notable)-recentKept] {
		if x.Ms < g.notable[short].Ms {
			short = j
		}
	}
	x := g.notable[short]
	g.droppedMax = max(g.droppedMax, time.Duration(x.Ms*float64(time.Millisecond)))
	if x.End().After(g.droppedUntil) {
		g.droppedUntil = x.End()
	}
	g.notable = slices.Delete(g.notable, short, short+1)
}

// DroppedMax is the longest notable gap the tracker did not keep (0: every
// notable gap is in Notable).
func (g *GapTracker) DroppedMax() time.Duration { return g.droppedMax }

// DroppedUntil is when the latest-ending notable gap the tracker did not
// keep ended (zero: none): every notable gap that ended after it is in
// Notable.
func (g *GapTracker) DroppedUntil() time.Time { return g.droppedUntil }

// Notable returns the notable gaps in time order, with the gap still open
// at now (from the last observation) when it is notable. With no
// observation yet there is no gap.
func (g *GapTracker) Notable(now time.Time) []Gap {
	if g.n == 0 {
		return nil
	}
	out := slices.Clone(g.notable)
	if open := now.Sub(g.last); open >= NotableGap {
		out = append(out, Gap{Start: g.last, Ms: durMs(open), Open: true})
	}
	slices.SortFunc(out, func(a, b Gap) int { return a.Start.Compare(b.Start) })
	return out
}

// noteLost records that probe seq, sent at at, settled unanswered.
// Consecutive lost probes form one run.
func (t *SeqTracker) noteLost(seq uint64, at time.Time) {
	if n := len(t.lossRuns); n > 0 {
		r := &t.lossRuns[n-1]
		if r.seq+r.span == seq {
			r.span++
			r.Lost++
			r.Last = at
			return
		}
	}
	run := LossRun{First: at, Last: at, Lost: 1, seq: seq, span: 1}
	t.lossRuns = append(t.lossRuns, run)
	if len(t.lossRuns) <= maxLossRuns {
		return
	}
	// Drop the smallest of those older than the recentKept newest (the
	// newest may still grow).
	small := 0
	for j, x := range t.lossRuns[:len(t.lossRuns)-recentKept] {
		if x.Lost < t.lossRuns[small].Lost {
			small = j
		}
	}
	x := t.lossRuns[small]
	t.droppedLost += x.Lost
	if x.Last.After(t.droppedUntil) {
		t.droppedUntil = x.Last
	}
	t.lossRuns = slices.Delete(t.lossRuns, small, small+1)
}

// DroppedLost counts the lost probes of the runs LossRuns no longer lists.
func (t *SeqTracker) DroppedLost() uint64 { return t.droppedLost }

// DroppedUntil is the time of the last probe of the latest run LossRuns no
// longer lists (zero: none).
func (t *SeqTracker) DroppedUntil() time.Time { return t.droppedUntil }

// lateEcho takes back the loss of probe seq, settled as lost and echoed
// after all.
func (t *SeqTracker) lateEcho(seq uint64) {
	for i := range t.lossRuns {
		r := &t.lossRuns[i]
		if seq >= r.seq && seq < r.seq+r.span && r.Lost > 0 {
			r.Lost--
			return
		}
	}
}

// LossRuns returns the runs of settled, never-echoed probes, oldest first
// (at most maxLossRuns: see there which are kept).
func (t *SeqTracker) LossRuns() []LossRun {
	out := make([]LossRun, 0, len(t.lossRuns))
	for _, r := range t.lossRuns {
		if r.Lost > 0 {
			out = append(out, r)
		}
	}
	return out
}

// FaultWindow is the stretch of time attributed to one fault: from At
// (when the fault was injected, less a little slack for the injection
// itself) until End (the next fault, or the end of the run; zero: open).
type FaultWindow struct {
	At, End time.Time
	// Settled is when the outage is over (e.g. a second after the
	// takeover): gaps and losses count only up to it, so a scheduling
	// hiccup long after the takeover is not the fault's. Zero: End.
	Settled time.Time
}

// faultSlack is how long before a fault's recorded time a gap may begin
// and still be that fault's: the time is recorded once the injection
// returned, after the outage began.
const faultSlack = 100 * time.Millisecond

// overlaps reports whether [from, to] overlaps the window.
func (w FaultWindow) overlaps(from, to time.Time) bool {
	return to.After(w.At.Add(-faultSlack)) && (w.End.IsZero() || from.Before(w.End))
}

// outage is the part of the window in which gaps and losses count.
func (w FaultWindow) outage() FaultWindow {
	if !w.Settled.IsZero() && (w.End.IsZero() || w.Settled.Before(w.End)) {
		w.End = w.Settled
	}
	return w
}

// FaultFigures is what one agent's flows went through across one fault.
type FaultFigures struct {
	// Flows counts the flows established before the fault (the ones the
	// fault can be judged on); Survived those of them alive or completed
	// at the end and not ended inside the window.
	Flows, Survived int
	// Gap is the longest gap of any flow that overlaps the window; GapFlow
	// is that flow's ID and GapStart when it began.
	Gap      time.Duration
	GapStart time.Time
	GapFlow  uint32
	// Lost counts probes sent in the window never echoed (udp-probe,
	// ping; 0 for the stream kinds, where the transport retransmits).
	Lost uint64
	// GapUpTo, when above Gap, says a flow dropped notable gaps up to that
	// long from its report: the fault's real gap lies between Gap and
	// GapUpTo. LostAtLeast says a flow dropped loss runs: Lost is a floor.
	GapUpTo     time.Duration
	LostAtLeast bool
}

// SurvivedPct is the share of the flows established before the fault
// that survived it (100 when there was none to judge).
func (f FaultFigures) SurvivedPct() float64 {
	if f.Flows == 0 {
		return 100
	}
	return 100 * float64(f.Survived) / float64(f.Flows)
}

// FiguresAcross reduces flows (one agent's final detail) to their figures
// across the fault window w. Gaps that ended before the window (start-up)
// are not the fault's and are left out.
func FiguresAcross(flows []FlowReport, w FaultWindow) FaultFigures {
	var out FaultFigures
	for _, f := range flows {
		broke := brokeAt(f)
		if !f.Established.IsZero() && f.Established.Before(w.At) && (broke.IsZero() || !broke.Before(w.At.Add(-faultSlack))) {
			out.Flows++
			if broke.IsZero() || !w.overlaps(broke, broke) {
				out.Survived++
			}
		}
		for _, g := range f.Gaps {
			if !w.outage().overlaps(g.Start, g.End()) {
				continue
			}
			if d := time.Duration(g.Ms * float64(time.Millisecond)); d > out.Gap {
				out.Gap, out.GapStart, out.GapFlow = d, g.Start, f.ID
			}
		}
		for _, r := range f.LossRuns {
			if w.outage().overlaps(r.First, r.Last) {
				out.Lost += r.Lost
			}
		}
		// A dropped gap or run is this window's only if it ended after
		// the window began: the lists hold every later one.
		if !f.GapsDroppedUntil.IsZero() && w.outage().overlaps(f.GapsDroppedUntil, f.GapsDroppedUntil) {
			out.GapUpTo = max(out.GapUpTo, time.Duration(f.GapsDroppedMaxMs*float64(time.Millisecond)))
		}
		if f.LossRunsDroppedLost > 0 && !f.LossRunsDroppedUntil.IsZero() && w.outage().overlaps(f.LossRunsDroppedUntil, f.LossRunsDroppedUntil) {
			out.LostAtLeast = true
		}
	}
	if out.GapUpTo <= out.Gap {
		out.GapUpTo = 0 // every gap that could matter is listed: Gap is exact
	}
	return out
}

// brokeAt is when flow f broke (zero: it did not): for a stalled flow, when
// it went silent (the start of its open gap, else of its longest); for a
// reset or corrupt one, when it ended.
func brokeAt(f FlowReport) time.Time {
	switch f.State {
	case StateAlive, StateCompleted, StateConnecting, StateFailed:
		return time.Time{}
	case StateStalled:
		for _, g := range f.Gaps {
			if g.Open {
				return g.Start
			}
		}
		if !f.GapStart.IsZero() {
			return f.GapStart
		}
	}
	if f.Ended.IsZero() {
		return f.Established // unknown: not counted for any fault
	}
	return f.Ended
}
