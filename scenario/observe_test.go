package scenario

import (
	"testing"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/labfile"
	"github.com/falab/falab/traffic"
)

// Traffic expectations come out as values (expected, observed, ok), with
// the prose kept in Detail.
func TestTrafficChecksAreStructured(t *testing.T) {
	zero := 0
	gap := labfile.Duration(200e6)
	te := &TrafficExpect{Survived: "100%", Resets: &zero, MaxGap: &gap, SameMapping: true}
	client := &traffic.Report{Flows: 4, Alive: 3, Reset: 1, LongestGapMs: 250}
	server := &traffic.Report{Detail: []traffic.FlowReport{{ID: 1, Peers: []string{"a:1"}}, {ID: 2, Peers: []string{"a:2", "a:3"}}}}
	reps := []lab.TrafficReport{{Traffic: lab.Traffic{Name: "streams"}, Client: client, Server: server}}
	got := trafficChecks("streams", te, reps)
	want := []Check{
		{Check: "traffic.streams.survived", Expected: ">=100%", Observed: "75%", OK: false},
		{Check: "traffic.streams.resets", Expected: "0", Observed: "1", OK: false},
		{Check: "traffic.streams.gap", Expected: "<=200ms", Observed: "250ms", OK: false},
		{Check: "traffic.streams.same_mapping", Expected: "1 source per flow", Observed: "1 of 2 flows re-mapped", OK: false},
	}
	if len(got) != len(want) {
		t.Fatalf("checks %+v, want %d", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Check != w.Check || g.Expected != w.Expected || g.Observed != w.Observed || g.OK != w.OK || g.Detail == "" {
			t.Errorf("check %d = %+v, want %+v with prose detail", i, g, w)
		}
	}
	client.Reset, client.Alive, client.LongestGapMs = 0, 4, 20
	server.Detail = server.Detail[:1]
	for _, c := range trafficChecks("streams", te, reps) {
		if !c.OK {
			t.Errorf("healthy figures: %+v not ok", c)
		}
	}
}
