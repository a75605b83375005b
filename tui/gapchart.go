package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// FlowTrace is one flow's receiving record as the gap chart draws it: from
// Established to Ended (zero: still going) it received, except in Gaps.
// Only gaps of 3 ms or more are recorded (traffic.NotableGap), and a flow
// keeps its 16 longest: the chart shows outages, not jitter.
type FlowTrace struct {
	ID          uint32
	Established time.Time
	Ended       time.Time
	Gaps        []TraceGap
}

// TraceGap is one silence of a flow; Open says it had not ended at the
// report.
type TraceGap struct {
	Start time.Time
	Len   time.Duration
	Open  bool
}

// receiving reports whether the flow received throughout most of [a, b):
// established, not ended, and not silent for half of it or more.
func (f FlowTrace) receiving(a, b time.Time) bool {
	if f.Established.IsZero() || f.Established.After(a.Add(b.Sub(a)/2)) {
		return false
	}
	if !f.Ended.IsZero() && f.Ended.Before(b) {
		return false
	}
	var silent time.Duration
	for _, g := range f.Gaps {
		from, to := later(g.Start, a), earlier(g.Start.Add(g.Len), b)
		if to.After(from) {
			silent += to.Sub(from)
		}
	}
	return silent*2 < b.Sub(a)
}

// gapChart is the Traffic tab's chart of one time window: one line per flow
// (time on x, a block where the flow received, blank where it was silent),
// with the fault and the takeover marked on a line above.
type gapChart struct {
	title    string
	from, to time.Time
	fault    time.Time // zero: none in the window
	takeover time.Time // zero: none
	rows     []chartRow
}

type chartRow struct {
	label string
	trace FlowTrace
}

// Window framing, as the HTML report frames its charts (report/chart.go):
// a little before the fault, a little after the later of the takeover and
// the longest gap, or the last few seconds when there was no fault.
const (
	chartBefore = 300 * time.Millisecond
	chartAfter  = 500 * time.Millisecond
	chartLive   = 5 * time.Second
	chartLabel  = 14 // the flow label's width
)

// halfBlocks draws a cell from its two halves (left, right) receiving.
var halfBlocks = [2][2]string{{" ", "▐"}, {"▌", "█"}}

// render draws the chart in width cells: the title, the marks line, one
// line per flow (at most maxRows, then how many more), the axis.
func (c gapChart) render(width, maxRows int) []string {
	cols := width - chartLabel
	if cols < 10 || !c.to.After(c.from) {
		return nil
	}
	span := c.to.Sub(c.from)
	at := func(i int) time.Time { return c.from.Add(span * time.Duration(i) / time.Duration(2*cols)) }
	col := func(t time.Time) int { return int(int64(cols) * int64(t.Sub(c.from)) / int64(span)) }

	out := []string{styleTitle.Render(c.title)}
	marks := []rune(strings.Repeat(" ", cols))
	if !c.fault.IsZero() && !c.fault.Before(c.from) && c.fault.Before(c.to) {
		marks[col(c.fault)] = 'F'
	}
	if !c.takeover.IsZero() && !c.takeover.Before(c.from) && c.takeover.Before(c.to) {
		marks[col(c.takeover)] = 'A'
	}
	out = append(out, strings.Repeat(" ", chartLabel)+styleWarn.Render(string(marks)))
	for i, r := range c.rows {
		if i == maxRows && len(c.rows) > maxRows+1 {
			out = append(out, styleDim.Render(fmt.Sprintf("%*s(%d more flows)", chartLabel, "", len(c.rows)-maxRows)))
			break
		}
		var sb strings.Builder
		for k := range cols {
			left := r.trace.receiving(at(2*k), at(2*k+1))
			right := r.trace.receiving(at(2*k+1), at(2*k+2))
			sb.WriteString(halfBlocks[b2i(left)][b2i(right)])
		}
		out = append(out, fmt.Sprintf("%-*.*s", chartLabel, chartLabel-1, r.label)+styleOK.Render(sb.String()))
	}
	return append(out, c.axis(cols))
}

// axis labels the window's two ends (relative to the fault, or to the
// window's end for the live view) and the span of one cell.
func (c gapChart) axis(cols int) string {
	ref := c.to
	if !c.fault.IsZero() {
		ref = c.fault
	}
	lo, hi := relMs(c.from, ref), relMs(c.to, ref)
	cell := fmt.Sprintf("1 cell = %s", shortDur(c.to.Sub(c.from)/time.Duration(cols)))
	pad := max(cols-len(lo)-len(hi)-len(cell), 2)
	return styleDim.Render(strings.Repeat(" ", chartLabel) + lo + strings.Repeat(" ", pad/2) + cell + strings.Repeat(" ", pad-pad/2) + hi)
}

func relMs(t, ref time.Time) string {
	return fmt.Sprintf("%+dms", t.Sub(ref).Milliseconds())
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// gapCharts builds the Traffic tab's charts from the generators: one
// around each fault, the latest first, or with no fault the last few
// seconds up to the newest report (live: it moves with each refresh).
func gapCharts(gens []TrafficFlowSummary) []gapChart {
	var rows []chartRow
	var now time.Time
	for _, g := range gens {
		now = later(now, g.At)
		for _, t := range g.Traces {
			rows = append(rows, chartRow{label: fmt.Sprintf("%s #%d", g.label(), t.ID), trace: t})
		}
	}
	if len(rows) == 0 || now.IsZero() {
		return nil
	}
	faults := faultsOf(gens)
	if len(faults) == 0 {
		return []gapChart{{title: "Arrivals, last " + shortDur(chartLive) + " (█ receiving, blank: a gap of 3ms or more)",
			from: now.Add(-chartLive), to: now, rows: rows}}
	}
	var out []gapChart
	for i := len(faults) - 1; i >= 0; i-- {
		f := faults[i]
		c := gapChart{from: f.At.Add(-chartBefore), fault: f.At, rows: rows}
		end := f.At.Add(f.Gap)
		if f.ToActive >= 0 {
			c.takeover = f.At.Add(f.ToActive)
			end = later(end, c.takeover)
		}
		c.to = earlier(end.Add(chartAfter), now)
		if i+1 < len(faults) {
			c.to = earlier(c.to, faults[i+1].At)
		}
		c.title = fmt.Sprintf("Arrivals around %s (F fault, A takeover; █ receiving, blank: gap)", f.Fault)
		out = append(out, c)
	}
	return out
}

// faultsOf is the lab's faults, once each, in time order: every generator
// lists the same ones; the gap is the longest of any generator.
func faultsOf(gens []TrafficFlowSummary) []TrafficFault {
	var out []TrafficFault
	for _, g := range gens {
		for _, f := range g.Faults {
			known := false
			for i := range out {
				if out[i].At.Equal(f.At) && out[i].Fault == f.Fault {
					out[i].Gap, known = max(out[i].Gap, f.Gap), true
				}
			}
			if !known && !f.At.IsZero() {
				out = append(out, f)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b TrafficFault) int { return a.At.Compare(b.At) })
	return out
}

// label is the generator's own name (the first word of Name), short enough
// to label a flow's line.
func (g TrafficFlowSummary) label() string {
	if f := strings.Fields(g.Name); len(f) > 0 {
		return f[0]
	}
	return g.Kind
}

// chartLines draws the charts of gens in width cells and at most height
// lines: the latest fault's chart first, then as many older ones as fit
// whole.
func chartLines(gens []TrafficFlowSummary, width, height int) []string {
	var out []string
	for i, c := range gapCharts(gens) {
		room := height - len(out) - 1 // a blank line before each chart
		if i > 0 && room < len(c.rows)+3 {
			break
		}
		lines := c.render(width, max(room-3, 1))
		if len(lines) == 0 || room < 4 {
			break
		}
		out = append(append(out, ""), lines...)
	}
	return out
}
