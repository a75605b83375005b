package scenario

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/labs"
)

func TestBuiltinScenariosLoad(t *testing.T) {
	for _, name := range labs.Scenarios() {
		sc, err := LoadScenario(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if sc.Spec.Name != name {
			t.Errorf("scenario file %s is named %q", name, sc.Spec.Name)
		}
	}
}

func TestScenarioOverrides(t *testing.T) {
	sc, err := ParseScenario("x.yaml", []byte("name: x\nlab: default\nmac_mode: burned-in\nhttp_replication: true\nsteps:\n  - wait: 1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Lab.Failover.MACMode != labfile.MACBurnedIn || !sc.Lab.Failover.HTTPReplication {
		t.Errorf("overrides not applied: %+v", sc.Lab.Failover)
	}
}

func TestScenarioErrors(t *testing.T) {
	head := "name: x\nlab: default\nsteps:\n"
	tests := []struct {
		name, steps string
		want        []string
	}{
		{"unknown unit", "  - fault: {kill: fw-c}\n",
			[]string{`x.yaml:4: steps[0].fault.kill: unknown unit "fw-c" (expected fw-a or fw-b)`}},
		{"unknown host", "  - traffic: {kind: ping, client: client9, server: server1}\n",
			[]string{`x.yaml:4: steps[0].traffic.client: unknown host "client9" (expected one of: client1, client2, server1, server2)`}},
		{"two things in a step", "  - {wait: 1s, mark: m}\n",
			[]string{`x.yaml:4: steps[0]: a step does exactly one thing; found 2 (expected one of wait, wait_for, expect, traffic, stop_traffic, fault, repeat, mark, chaos, run)`}},
		{"traffic not started", "  - expect: {traffic: {streams: {resets: 0}}}\n",
			[]string{`x.yaml:4: steps[0].expect.traffic.streams: unknown traffic "streams" (started so far: )`}},
		{"bad state", "  - expect: {state: {fw-a: Standby}}\n",
			[]string{`x.yaml:4: steps[0].expect.state.fw-a: "Standby" is not a failover state (expected one of: Active, Standby Ready, Bulk Sync, Negotiation, Failed, Just Active, Disabled, Down)`}},
		{"wait_for without within", "  - wait_for: {active: fw-a}\n",
			[]string{`x.yaml:4: steps[0].wait_for: needs within (how long to wait)`}},
		{"typo", "  - fault: {kil: fw-a}\n",
			[]string{`x.yaml:4: steps[0].fault.kil: unknown field "kil" (did you mean "kill"?)`}},
		{"bad link", "  - fault: {link_down: fw-a:dmz}\n",
			[]string{`x.yaml:4: steps[0].fault.link_down: no link end "fw-a:dmz" in lab default`}},
		{"run without name or argv", "  - run: {node: client1}\n",
			[]string{`x.yaml:4: steps[0].run.name: a run step needs a name (expect run: NAME checks it)`, `x.yaml:4: steps[0].run.argv: needs the program and its arguments`}},
		{"run on a unit", "  - run: {name: c, node: fw-a, argv: [curl]}\n",
			[]string{`x.yaml:4: steps[0].run.node: unknown host "fw-a" (expected one of: client1, client2, server1, server2)`}},
		{"run not started", "  - expect: {run: {c: {exit: 0}}}\n",
			[]string{`x.yaml:4: steps[0].expect.run.c: unknown run "c" (started so far: )`}},
		{"run bad regexp", "  - run: {name: c, node: client1, argv: [curl]}\n  - expect: {run: {c: {output: \"(\"}}}\n",
			[]string{"x.yaml:5: steps[1].expect.run.c.output: bad regular expression: error parsing regexp: missing closing ): `(`"}},
		{"log without bounds", "  - expect: {log: [{file: ../etc/passwd, pattern: x}]}\n",
			[]string{`x.yaml:4: steps[0].expect.log[0].file: needs a file name in the lab's state dir (no / prefix, no ..)`}},
		{"bad percent", "  - traffic: {name: s, kind: tcp-stream, client: client1, server: server1}\n  - expect: {traffic: {s: {survived: all}}}\n",
			[]string{`x.yaml:5: steps[1].expect.traffic.s.survived: "all" is not a percentage (expected like 100%)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseScenario("x.yaml", []byte(head+tt.steps))
			var got []string
			if probs, ok := err.(labfile.Problems); ok {
				for _, p := range probs {
					got = append(got, p.String())
				}
			} else if err != nil {
				t.Fatalf("error of type %T: %v", err, err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func FuzzParseScenario(f *testing.F) {
	for _, n := range labs.Scenarios() {
		b, _ := labs.Scenario(n)
		f.Add(b)
	}
	f.Add([]byte("name: x\nlab: default\nsteps: [{repeat: {times: 2, steps: [{wait: 1ms}]}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := ParseScenario("fuzz.yaml", data)
		if err == nil && (sc == nil || sc.Lab == nil) {
			t.Fatal("no scenario and no error")
		}
		if err != nil && strings.TrimSpace(err.Error()) == "" {
			t.Fatal("empty error")
		}
	})
}
