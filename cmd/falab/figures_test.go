package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/falab/falab/lab"
)

// Golden: the per-fault table of `traffic show` and `run`.
func TestPrintFaultFigures(t *testing.T) {
	at := time.Date(2026, 1, 1, 12, 0, 1, 0, time.UTC)
	ms := 160.0
	figs := []lab.FaultFigure{
		{At: at, Fault: "kill fw-a", ToActiveMs: &ms, NewActive: "fw-b", Traffic: []lab.FaultTraffic{
			{Name: "streams", Kind: "tcp-stream", Flows: 20, Survived: 20, SurvivedPct: 100, GapMs: 171.5},
			{Name: "probe", Kind: "udp-probe", Flows: 1, Survived: 1, SurvivedPct: 100, GapMs: 170, Lost: 168},
		}},
		{At: at.Add(2 * time.Second), Fault: "thaw fw-a"},
	}
	var b bytes.Buffer
	printFaultFigures(&b, figs)
	want := `
per fault (start-up gaps left out):
  FAULT                   TO ACTIVE     TRAFFIC  KIND        GAP      LOST  SURVIVED
  12:00:01.000 kill fw-a  160ms (fw-b)  streams  tcp-stream  171.5ms  -     100% (20/20)
                          160ms (fw-b)  probe    udp-probe   170.0ms  168   100% (1/1)
  12:00:03.000 thaw fw-a  no takeover   -                                   
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
