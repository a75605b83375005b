package lab

import (
	"testing"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/traffic"
)

// Each fault gets the takeover that followed it and the gap across it; the
// start-up gap (before the first fault) is nobody's, and a second fault's
// gap is not the first one's.
func TestFaultFiguresPerFault(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	timeline := []api.Event{
		{Time: at(0), Unit: "lab", Kind: "traffic", Msg: "traffic probe started"},
		{Time: at(1000), Unit: "lab", Kind: "fault", Msg: "kill fw-a"},
		{Time: at(1150), Unit: "fw-b", Kind: "transition", Msg: "Standby Ready -> Just Active: peer failed"},
		{Time: at(1160), Unit: "fw-b", Kind: "transition", Msg: "Just Active -> Active: takeover done"},
		{Time: at(3000), Unit: "lab", Kind: "fault", Msg: "freeze fw-a"},
	}
	probe := &traffic.Report{Kind: traffic.KindUDPProbe, Role: traffic.RoleClient, Detail: []traffic.FlowReport{{
		ID: 1, State: traffic.StateCompleted, Established: at(5),
		Gaps:     []traffic.Gap{{Start: at(10), Ms: 78}, {Start: at(990), Ms: 170}, {Start: at(3100), Ms: 400}},
		LossRuns: []traffic.LossRun{{First: at(991), Last: at(1159), Lost: 168}},
	}}}
	reps := []TrafficReport{{Traffic: Traffic{Name: "probe", Kind: traffic.KindUDPProbe}, Client: probe}}
	got := FaultFigures(timeline, reps)
	if len(got) != 2 {
		t.Fatalf("%d figures, want one per fault (2)", len(got))
	}
	first := got[0]
	if first.ToActiveMs == nil || *first.ToActiveMs != 160 || first.NewActive != "fw-b" {
		t.Errorf("kill: to active %v by %q, want 160 ms by fw-b", first.ToActiveMs, first.NewActive)
	}
	if tr := first.Traffic[0]; tr.GapMs != 170 || tr.Lost != 168 || tr.SurvivedPct != 100 {
		t.Errorf("kill: %+v, want the 170 ms gap (not the 78 ms start-up one, nor the 300 ms one after it settled), 168 lost, 100%% survived", tr)
	}
	if got[1].ToActiveMs != nil {
		t.Errorf("freeze: to active %v, want none (no takeover after it)", *got[1].ToActiveMs)
	}
	if tr := got[1].Traffic[0]; tr.GapMs != 400 || tr.Lost != 0 {
		t.Errorf("freeze: %+v, want its own 400 ms gap and no loss", tr)
	}
}

// A long run's final report may have dropped an early fault's small gap
// (it keeps the run's worst, and says so: a range); a snapshot written
// after that fault's outage still lists it, and the fault's figure then
// comes from there, exact. The snapshot read before the outage was over
// is not used.
func TestFaultFiguresFromSnapshots(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	timeline := []api.Event{
		{Time: at(1000), Unit: "lab", Kind: "fault", Msg: "freeze fw-b"},
		{Time: at(3000), Unit: "lab", Kind: "fault", Msg: "kill fw-a"},
	}
	report := func(written int, gaps []traffic.Gap, droppedMax float64, droppedUntil time.Time) *traffic.Report {
		return &traffic.Report{Kind: traffic.KindUDPProbe, Role: traffic.RoleClient, At: at(written), Detail: []traffic.FlowReport{{
			ID: 1, State: traffic.StateAlive, Established: at(5), Gaps: gaps,
			GapsDroppedMaxMs: droppedMax, GapsDroppedUntil: droppedUntil,
		}}}
	}
	small := traffic.Gap{Start: at(1010), Ms: 7}
	big := traffic.Gap{Start: at(3010), Ms: 120}
	tr := Traffic{Name: "probe", Kind: traffic.KindUDPProbe}
	// The final report dropped the 7 ms gap (it ended at 1017 ms).
	final := []TrafficReport{{Traffic: tr, Client: report(9000, []traffic.Gap{big}, 7, at(1017))}}
	early := []TrafficReport{{Traffic: tr, Client: report(1500, nil, 0, time.Time{})}} // before the outage was over
	later := []TrafficReport{{Traffic: tr, Client: report(3500, []traffic.Gap{small, big}, 0, time.Time{})}}

	if got := FaultFigures(timeline, final)[0].Traffic[0]; got.GapMs != 0 || got.GapUpToMs != 7 {
		t.Errorf("from the final report: gap %v up to %v, want 0 up to 7 ms (a range)", got.GapMs, got.GapUpToMs)
	}
	figs := FaultFiguresFrom(timeline, final, [][]TrafficReport{early, later})
	if got := figs[0].Traffic[0]; got.GapMs != 7 || got.GapUpToMs != 0 {
		t.Errorf("freeze from the snapshots: gap %v up to %v, want exactly 7 ms", got.GapMs, got.GapUpToMs)
	}
	if got := figs[1].Traffic[0]; got.GapMs != 120 {
		t.Errorf("kill (the last fault, from the final report): gap %v, want 120 ms", got.GapMs)
	}
}

// Trimming a snapshot keeps what ended after the cut and says what it
// left out; the original reports are not changed.
func TestTrimReports(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	flow := traffic.FlowReport{ID: 1, State: traffic.StateAlive,
		Gaps:     []traffic.Gap{{Start: at(100), Ms: 50}, {Start: at(900), Ms: 30}, {Start: at(2000), Ms: 5}},
		LossRuns: []traffic.LossRun{{First: at(100), Last: at(140), Lost: 40}, {First: at(2000), Last: at(2004), Lost: 4}}}
	reps := []TrafficReport{{Traffic: Traffic{Name: "probe"}, Client: &traffic.Report{Detail: []traffic.FlowReport{flow}}}}
	got := TrimReports(reps, at(1000))[0].Client.Detail[0]
	if len(got.Gaps) != 1 || got.Gaps[0].Ms != 5 || got.GapsDroppedMaxMs != 50 || !got.GapsDroppedUntil.Equal(at(930)) {
		t.Errorf("gaps %+v, dropped max %v until %v; want the 5 ms gap, dropped up to 50 ms until 930 ms", got.Gaps, got.GapsDroppedMaxMs, got.GapsDroppedUntil)
	}
	if len(got.LossRuns) != 1 || got.LossRunsDroppedLost != 40 || !got.LossRunsDroppedUntil.Equal(at(140)) {
		t.Errorf("runs %+v, dropped %d until %v; want the last run, 40 dropped until 140 ms", got.LossRuns, got.LossRunsDroppedLost, got.LossRunsDroppedUntil)
	}
	if len(reps[0].Client.Detail[0].Gaps) != 3 {
		t.Error("TrimReports changed the reports it was given")
	}
}
