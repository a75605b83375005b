package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
)

// TestStatusWording: a unit's STATE says its process and failover state;
// a unit not yet started is said so, never "ok ... no process".
func TestStatusWording(t *testing.T) {
	s := labStatus{
		Status: &lab.Status{Name: "default", Phase: lab.PhaseUp, CreatedAt: time.Now(), Nodes: []lab.NodeStatus{
			{Name: "client1", Kind: "host", Namespace: "falab-default-client1", Present: true},
			{Name: "fw-a", Kind: "unit", Namespace: "falab-default-fw-a", Present: true},
			{Name: "fw-b", Kind: "unit", Namespace: "falab-default-fw-b", Present: true},
			{Name: "fw-c", Kind: "unit", Namespace: "falab-default-fw-c", Present: false},
		}},
		Units: []unitStatus{
			{UnitStatus: lab.UnitStatus{Name: "fw-a", Role: "primary", PID: 10, Alive: true},
				Failover: &unitFailover{Role: "primary", State: "Active", Active: true, Term: 2}},
			{UnitStatus: lab.UnitStatus{Name: "fw-b", Role: "secondary"}},
			{UnitStatus: lab.UnitStatus{Name: "fw-c", Role: "secondary", PID: 11}},
		},
	}
	var b bytes.Buffer
	printStatus(&b, s)
	out := b.String()
	for _, want := range []string{
		"client1  host  falab-default-client1  up",
		"primary, pid 10, Active (term 2)",
		"secondary, unit process not started",
		"namespace MISSING, secondary, pid 11 DEAD",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "ok") || strings.Contains(out, "no process") {
		t.Errorf("old wording:\n%s", out)
	}
}

// TestStatusJSONFailover: status --json gives each unit's failover state
// (role, state, active, term) beside its process, once per unit.
func TestStatusJSONFailover(t *testing.T) {
	s := labStatus{
		Status: &lab.Status{Name: "default", Units: []lab.UnitStatus{{Name: "fw-a"}}},
		Units: []unitStatus{{UnitStatus: lab.UnitStatus{Name: "fw-a", Role: "primary", PID: 10, Alive: true},
			Failover: &unitFailover{Role: "primary", State: "Active", Active: true, Term: 2}}},
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Name  string `json:"name"`
		Units []map[string]any
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "default" || len(got.Units) != 1 {
		t.Fatalf("%s", b)
	}
	fo, ok := got.Units[0]["failover"].(map[string]any)
	if !ok || fo["state"] != "Active" || fo["active"] != true || fo["term"] != 2.0 || fo["role"] != "primary" || got.Units[0]["pid"] != 10.0 {
		t.Errorf("%s", b)
	}
}

// TestThisHost: `show failover` answers as the unit asked, else the
// active, else one that answered.
func TestThisHost(t *testing.T) {
	a := api.Status{Unit: "fw-a", PID: 1, Active: true}
	b := api.Status{Unit: "fw-b", PID: 2}
	frozen := api.Status{Unit: "fw-a", State: "not answering"}
	for _, tt := range []struct {
		sts   []api.Status
		asked string
		want  int
	}{
		{[]api.Status{a, b}, "", 0},
		{[]api.Status{a, b}, "fw-b", 1},
		{[]api.Status{b, a}, "", 1},
		{[]api.Status{frozen, b}, "", 1},
		{[]api.Status{frozen, {Unit: "fw-b"}}, "", 0},
	} {
		if got := thisHost(tt.sts, tt.asked); got != tt.want {
			t.Errorf("thisHost(%v, %q) = %d, want %d", tt.sts, tt.asked, got, tt.want)
		}
	}
}
