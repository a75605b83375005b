package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// chartTraffic is two generators across a kill of fw-a at fault: three
// tcp-stream flows silent for 400 ms from 20 ms before it (one of them
// reset at +600 ms), a udp-probe silent for 170 ms; fw-b Active at +160 ms;
// the reports are from +3 s.
func chartTraffic(fault time.Time) []TrafficFlowSummary {
	start := fault.Add(-10 * time.Second)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	kill := TrafficFault{Fault: "kill fw-a", At: fault, ToActive: ms(160), Gap: ms(400), Lost: -1, SurvivedPct: 67}
	streams := TrafficFlowSummary{Name: "streams client1->server1", Kind: "tcp-stream", Flows: 3, Alive: 2, Broken: 1,
		RateBps: 24e6, LongestGap: ms(400), At: fault.Add(3 * time.Second), Faults: []TrafficFault{kill}}
	for id := range 3 {
		tr := FlowTrace{ID: uint32(id), Established: start, Gaps: []TraceGap{
			{Start: start.Add(ms(5)), Len: ms(40)}, // start-up
			{Start: fault.Add(ms(-20)), Len: ms(400)},
		}}
		if id == 2 {
			tr.Ended = fault.Add(600 * time.Millisecond)
		}
		streams.Traces = append(streams.Traces, tr)
	}
	probeKill := kill
	probeKill.Gap, probeKill.Lost, probeKill.SurvivedPct = ms(170), 150, 100
	probe := TrafficFlowSummary{Name: "probe client2->server2", Kind: "udp-probe", Flows: 1, Alive: 1, RateBps: 2e5,
		LongestGap: ms(170), At: fault.Add(3 * time.Second), Faults: []TrafficFault{probeKill},
		Traces: []FlowTrace{{ID: 0, Established: start, Gaps: []TraceGap{{Start: fault, Len: ms(170)}}}}}
	return []TrafficFlowSummary{streams, probe}
}

// Golden: the Traffic tab charts every flow around the fault, the fault
// (F) and the takeover (A) marked, the outage blank.
func TestGoldenTrafficGapChart(t *testing.T) {
	for _, sz := range []struct {
		name string
		w, h int
	}{{"80x24", 80, 24}, {"120x40", 120, 40}} {
		src := newFakeSource(3, 0)
		src.traffic = chartTraffic(t0.Add(10 * time.Second))
		hs := newHarness(t, src, sz.w, sz.h)
		hs.tick(100 * time.Millisecond)
		hs.press("tab") // open the tabs in order until Traffic
		for range tabIndexTraffic - 1 {
			hs.press("tab")
		}
		hs.tick(time.Second)
		hs.golden("traffic-chart-" + sz.name)
	}
}

// The chart's lines: a flow silent across the fault is blank from the gap's
// start to its end and receiving around it; the marks sit at the fault and
// the takeover columns.
func TestGapChartMarksAndGap(t *testing.T) {
	fault := t0.Add(10 * time.Second)
	c := gapCharts(chartTraffic(fault))
	if len(c) != 1 {
		t.Fatalf("%d charts, want one (one fault)", len(c))
	}
	// 100 columns over [-300ms, +900ms]: 12 ms a cell.
	lines := c[0].render(chartLabel+100, 10)
	marks := ansi.Strip(lines[1])[chartLabel:]
	if f, a := strings.IndexRune(marks, 'F'), strings.IndexRune(marks, 'A'); f != 25 || a != 38 {
		t.Errorf("marks at F %d, A %d; want 25 and 38:\n%s", f, a, marks)
	}
	stream := []rune(ansi.Strip(lines[2])[chartLabel:])
	blank := func(r rune) bool { return r == ' ' }
	first, last := -1, -1
	for i, r := range stream {
		if blank(r) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	// The gap [-20ms, +380ms] is cells 23.3..56.7: blank 24..55, and
	// the cells at its ends half drawn (6 ms halves).
	if first != 24 || last != 55 || stream[23] != '▌' || stream[56] != '▐' {
		t.Errorf("stream #0 blank in cells %d..%d (ends %q %q), want 24..55 (▌ ▐):\n%s", first, last, stream[23], stream[56], string(stream))
	}
	if ended := []rune(ansi.Strip(lines[4])[chartLabel:]); ended[len(ended)-1] != ' ' || ended[60] != '█' {
		t.Errorf("the reset flow (ended at +600ms) is not drawn receiving until then and blank after: %q", string(ended))
	}
}

// With no fault yet, the chart is the last few seconds up to the newest
// report, and moves with it.
func TestGapChartLiveWithoutFault(t *testing.T) {
	gens := chartTraffic(t0.Add(10 * time.Second))
	for i := range gens {
		gens[i].Faults = nil
	}
	c := gapCharts(gens)
	if len(c) != 1 || !c[0].to.Equal(gens[0].At) || c[0].to.Sub(c[0].from) != chartLive || !c[0].fault.IsZero() {
		t.Fatalf("charts = %+v; want one live window of %s ending at the report", c, chartLive)
	}
}
