package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// Golden: the Traffic tab shows, under each generator, one line per fault
// with the time to Active and the gap, loss and survival across it.
func TestTrafficTabPerFaultLines(t *testing.T) {
	tab := &trafficTab{loaded: true, width: 90, height: 5, flows: []TrafficFlowSummary{{
		Name: "probe client2->server2", Kind: "udp-probe", Flows: 1, Alive: 1, RateBps: 2e5, LongestGap: 170 * time.Millisecond,
		Faults: []TrafficFault{
			{Fault: "kill fw-a", ToActive: 160 * time.Millisecond, Gap: 170 * time.Millisecond, Lost: 150, SurvivedPct: 100},
			{Fault: "thaw fw-a", ToActive: -1, Gap: 0, Lost: 0, SurvivedPct: 100},
		},
	}}}
	got := strings.Split(ansi.Strip(tab.Render()), "\n")
	want := []string{
		"  ↳ kill fw-a: Active in 160ms, gap 170ms, lost 150, survived 100%",
		"  ↳ thaw fw-a: no takeover, gap 0ms, lost 0, survived 100%",
	}
	for i, w := range want {
		if strings.TrimRight(got[2+i], " ") != w {
			t.Errorf("line %d = %q, want %q", 2+i, got[2+i], w)
		}
	}
}
