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
