package traffic

import (
	"testing"
	"time"
)

var gt0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func msd(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// The tracker keeps each notable gap with its time, and the open one at the
// report time, so a reader can tell a start-up gap from a fault's.
func TestGapTrackerNotableGaps(t *testing.T) {
	var g GapTracker
	for _, at := range []int{0, 1, 80, 81, 82, 84, 300, 301} {
		g.Observe(gt0.Add(msd(at)))
	}
	got := g.Notable(gt0.Add(msd(315)))
	want := []Gap{{Start: gt0.Add(msd(1)), Ms: 79}, {Start: gt0.Add(msd(84)), Ms: 216}, {Start: gt0.Add(msd(301)), Ms: 14, Open: true}}
	if len(got) != len(want) {
		t.Fatalf("gaps %+v, want %+v", got, want)
	}
	for i := range want {
		if !got[i].Start.Equal(want[i].Start) || got[i].Ms != want[i].Ms || got[i].Open != want[i].Open {
			t.Errorf("gap %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// Beyond maxGaps the longest gaps are kept: a long outage is never pushed
// out by jitter.
func TestGapTrackerKeepsLongest(t *testing.T) {
	var g GapTracker
	at := gt0
	g.Observe(at)
	at = at.Add(msd(500)) // the outage
	g.Observe(at)
	for range 3 * maxGaps {
		at = at.Add(msd(12))
		g.Observe(at)
	}
	got := g.Notable(at)
	if len(got) != maxGaps || got[0].Ms != 500 {
		t.Fatalf("kept %d gaps, first %+v; want %d with the 500 ms one first", len(got), got[0], maxGaps)
	}
}

// Lost probes form runs with the times they were sent; a late echo takes
// its probe back out of its run.
func TestSeqTrackerLossRuns(t *testing.T) {
	tr := NewSeqTracker(msd(50))
	for i := range 100 {
		seq := tr.Next(gt0.Add(msd(i)))
		if (seq < 40 || seq >= 60) && seq != 70 {
			tr.Received(seq, gt0.Add(msd(i)))
		}
	}
	st := tr.Finish()
	tr.Received(45, gt0.Add(msd(200))) // late
	runs := tr.LossRuns()
	if st.Lost != 21 || len(runs) != 2 {
		t.Fatalf("lost %d in runs %+v, want 21 in 2 runs", st.Lost, runs)
	}
	if !runs[0].First.Equal(gt0.Add(msd(40))) || !runs[0].Last.Equal(gt0.Add(msd(59))) || runs[0].Lost != 19 {
		t.Errorf("first run %+v, want 40..59 ms with 19 lost after the late echo", runs[0])
	}
	if runs[1].Lost != 1 || !runs[1].First.Equal(gt0.Add(msd(70))) {
		t.Errorf("second run %+v, want probe 70 alone", runs[1])
	}
}

// The figures across a fault leave out the start-up gap, take the gap that
// spans the fault, count the loss in the window and judge survival by when
// a flow broke.
func TestFiguresAcrossLeavesOutStartup(t *testing.T) {
	fault := gt0.Add(5 * time.Second)
	w := FaultWindow{At: fault, End: fault.Add(10 * time.Second), Settled: fault.Add(time.Second)}
	flows := []FlowReport{
		{ID: 1, State: StateAlive, Established: gt0, Gaps: []Gap{
			{Start: gt0.Add(msd(10)), Ms: 78},           // start-up
			{Start: fault.Add(-msd(20)), Ms: 41.5},      // across the fault
			{Start: fault.Add(3 * time.Second), Ms: 60}, // a hiccup after it settled
		}, LossRuns: []LossRun{{First: gt0.Add(msd(20)), Last: gt0.Add(msd(90)), Lost: 70}, {First: fault.Add(-msd(19)), Last: fault.Add(msd(20)), Lost: 39}}},
		{ID: 2, State: StateReset, Established: gt0, Ended: fault.Add(msd(300))},
		{ID: 3, State: StateStalled, Established: gt0, Ended: fault.Add(20 * time.Second),
			Gaps: []Gap{{Start: fault.Add(15 * time.Second), Ms: 5000, Open: true}}}, // broke in a later window
		{ID: 4, State: StateAlive, Established: fault.Add(time.Second)}, // after: not judged
	}
	got := FiguresAcross(flows, w)
	if got.Gap != time.Duration(41.5*float64(time.Millisecond)) || got.GapFlow != 1 {
		t.Errorf("gap %v of flow %d, want 41.5ms of flow 1 (not the 78 ms start-up gap nor the later 60 ms one)", got.Gap, got.GapFlow)
	}
	if got.Lost != 39 {
		t.Errorf("lost %d, want 39 (not the 70 at start-up)", got.Lost)
	}
	if got.Flows != 3 || got.Survived != 2 {
		t.Errorf("survived %d of %d, want 2 of 3 (flow 2 reset in the window)", got.Survived, got.Flows)
	}
	if p := got.SurvivedPct(); p < 66 || p > 67 {
		t.Errorf("survived %.1f%%, want 66.7%%", p)
	}
}

// What the lists drop is said, not lost: the tracker remembers the
// longest gap it did not keep and the lost probes of dropped runs, and a
// fault's figures then give the gap as a range and the loss as a floor.
func TestDroppedGapsAndRunsAreSaid(t *testing.T) {
	var g GapTracker
	at := gt0
	g.Observe(at)
	for i := range maxGaps + 5 {
		at = at.Add(msd(20 + i)) // the first five (20-24 ms) are dropped last
		g.Observe(at)
	}
	if got := g.DroppedMax(); got != msd(24) {
		t.Errorf("dropped max %v, want 24ms (the longest gap pushed out)", got)
	}

	tr := NewSeqTracker(msd(50))
	for i := range 8 * maxLossRuns { // 2*maxLossRuns runs of one probe
		seq := tr.Next(gt0.Add(msd(i)))
		if seq%4 != 0 { // every fourth probe lost, each a run of its own
			tr.Received(seq, gt0.Add(msd(i)))
		}
	}
	tr.Finish()
	if got := tr.DroppedLost(); got != uint64(maxLossRuns) {
		t.Errorf("dropped lost %d, want %d (the runs beyond the list)", got, maxLossRuns)
	}

	fault := gt0.Add(5 * time.Second)
	w := FaultWindow{At: fault, Settled: fault.Add(time.Second)}
	flows := []FlowReport{{ID: 1, State: StateAlive, Established: gt0,
		Gaps:             []Gap{{Start: fault, Ms: 30}},
		GapsDroppedMaxMs: 45, GapsDroppedUntil: fault.Add(msd(10)),
		LossRunsDroppedLost: 3, LossRunsDroppedUntil: fault.Add(msd(10))}}
	got := FiguresAcross(flows, w)
	if got.Gap != msd(30) || got.GapUpTo != msd(45) || !got.LostAtLeast {
		t.Errorf("gap %v up to %v, lost at least %v; want 30ms up to 45ms, a floor", got.Gap, got.GapUpTo, got.LostAtLeast)
	}
	flows[0].GapsDroppedMaxMs = 20 // every dropped gap is shorter than the one listed
	if got := FiguresAcross(flows, w); got.GapUpTo != 0 {
		t.Errorf("gap up to %v, want 0: the listed 30 ms gap is exact", got.GapUpTo)
	}
	// What was dropped ended before the window: the lists are complete
	// for it, and its figures exact.
	flows[0].GapsDroppedMaxMs = 45
	flows[0].GapsDroppedUntil, flows[0].LossRunsDroppedUntil = fault.Add(-time.Second), fault.Add(-time.Second)
	if got := FiguresAcross(flows, w); got.GapUpTo != 0 || got.LostAtLeast {
		t.Errorf("gap up to %v, lost at least %v; want exact figures (the drops are older than the fault)", got.GapUpTo, got.LostAtLeast)
	}
}

// TestNewestGapsAndRunsAreKept: a long run whose worst outages fill the
// lists still lists its newest gaps and loss runs, however small, so a
// figure taken soon after a fault finds that fault's; the run's longest
// stay listed too.
func TestNewestGapsAndRunsAreKept(t *testing.T) {
	var g GapTracker
	at := gt0
	g.Observe(at)
	for range 100 { // 100 outages of 100 ms
		at = at.Add(100 * time.Millisecond)
		g.Observe(at)
		at = at.Add(msd(1))
		g.Observe(at)
	}
	var small []time.Time
	for i := range recentKept { // then small ones, 4-19 ms
		start := at
		small = append(small, start)
		at = at.Add(msd(4 + i))
		g.Observe(at)
	}
	notable := g.Notable(at)
	if len(notable) != maxGaps {
		t.Fatalf("%d gaps listed, want %d", len(notable), maxGaps)
	}
	for i, start := range small {
		found := false
		for _, x := range notable {
			found = found || x.Start.Equal(start)
		}
		if !found {
			t.Errorf("the %d ms gap at %v, among the newest, is not listed", 4+i, start)
		}
	}
	if long := notable[0]; long.Ms != 100 {
		t.Errorf("oldest listed gap %.0f ms, want one of the 100 ms outages", long.Ms)
	}
	if g.DroppedMax() != 100*time.Millisecond || !g.DroppedUntil().Before(small[0]) {
		t.Errorf("dropped max %v until %v; want 100ms, ending before the small gaps began (%v)", g.DroppedMax(), g.DroppedUntil(), small[0])
	}

	tr := NewSeqTracker(msd(50))
	sentAt := gt0
	lose := func(n int) { // n probes lost in a row, then one echoed
		for range n {
			tr.Next(sentAt)
			sentAt = sentAt.Add(msd(1))
		}
		seq := tr.Next(sentAt)
		tr.Received(seq, sentAt)
		sentAt = sentAt.Add(msd(1))
	}
	for range maxLossRuns {
		lose(100)
	}
	lastBig := sentAt
	for range recentKept {
		lose(1)
	}
	tr.Finish()
	runs := tr.LossRuns()
	if len(runs) != maxLossRuns {
		t.Fatalf("%d runs listed, want %d", len(runs), maxLossRuns)
	}
	for _, r := range runs[len(runs)-recentKept:] {
		if r.Lost != 1 || r.First.Before(lastBig) {
			t.Errorf("newest runs: %+v, want the one-probe runs after %v", r, lastBig)
		}
	}
	if tr.DroppedLost() != uint64(recentKept)*100 || !tr.DroppedUntil().Before(lastBig) {
		t.Errorf("dropped %d lost until %v; want %d, before %v", tr.DroppedLost(), tr.DroppedUntil(), recentKept*100, lastBig)
	}
}
