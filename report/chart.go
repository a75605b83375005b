package report

import (
	"bytes"
	"fmt"
	"image/color"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/traffic"
)

// palette colours the generators (flows of one generator share a colour).
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

var (
	faultColor    = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	takeoverColor = color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
)

// chartBefore and chartAfter frame a fault's chart: from a little before
// the fault to a little after the later of the takeover and the longest gap.
const (
	chartBefore = 300 * time.Millisecond
	chartAfter  = 500 * time.Millisecond
)

// segment is a stretch [from, to] of a flow, in ms relative to the fault.
type segment struct{ from, to float64 }

// arrivals is where flow f was receiving between lo and hi: from its
// establishment (or lo) to its end (or hi), less its notable gaps. Gaps
// shorter than traffic.NotableGap are not recorded, so a line is "a probe
// or chunk at least every NotableGap".
func arrivals(f traffic.FlowReport, at, lo, hi time.Time) []segment {
	start, end := lo, hi
	if f.Established.IsZero() {
		return nil
	}
	if f.Established.After(start) {
		start = f.Established
	}
	if !f.Ended.IsZero() && f.Ended.Before(end) {
		end = f.Ended
	}
	rel := func(t time.Time) float64 { return float64(t.Sub(at)) / float64(time.Millisecond) }
	var out []segment
	cur := start
	for _, g := range f.Gaps {
		if !g.End().After(cur) || !g.Start.Before(end) {
			continue
		}
		if g.Start.After(cur) {
			out = append(out, segment{rel(cur), rel(g.Start)})
		}
		cur = g.End()
	}
	if end.After(cur) {
		out = append(out, segment{rel(cur), rel(end)})
	}
	return out
}

// faultWindowEnd is the chart's right edge for fault ff.
func faultWindowEnd(ff lab.FaultFigure) time.Time {
	end := ff.At
	if !ff.ActiveAt.IsZero() && ff.ActiveAt.After(end) {
		end = ff.ActiveAt
	}
	for _, t := range ff.Traffic {
		if g := t.GapAt.Add(time.Duration(t.GapMs * float64(time.Millisecond))); g.After(end) {
			end = g
		}
	}
	return end.Add(chartAfter)
}

// faultChart draws every flow of reps around fault ff: one line per flow
// (client side, where the stream is verified) where it was receiving, the
// fault and the takeover as vertical lines. It returns inline SVG.
func faultChart(ff lab.FaultFigure, reps []lab.TrafficReport) (string, error) {
	lo, hi := ff.At.Add(-chartBefore), faultWindowEnd(ff)
	p := plot.New()
	p.Title.Text = "Arrivals around: " + ff.Fault
	p.X.Label.Text = "ms since the fault (line: receiving; break: a gap of 3 ms or more)"
	var names []string
	for gi, r := range reps {
		if r.Client == nil {
			continue
		}
		col := palette[gi%len(palette)]
		for _, f := range r.Client.Detail {
			y := float64(len(names))
			names = append(names, fmt.Sprintf("%s #%d", r.Traffic.Name, f.ID))
			for _, s := range arrivals(f, ff.At, lo, hi) {
				l, err := plotter.NewLine(plotter.XYs{{X: s.from, Y: y}, {X: s.to, Y: y}})
				if err != nil {
					return "", err
				}
				l.Color, l.Width = col, vg.Points(3)
				p.Add(l)
			}
		}
	}
	if len(names) == 0 {
		return "", nil
	}
	p.NominalY(names...)
	p.X.Min, p.X.Max = -float64(chartBefore/time.Millisecond), float64(hi.Sub(ff.At))/float64(time.Millisecond)
	addMarker(p, 0, len(names), faultColor, "fault")
	if ff.ToActiveMs != nil {
		addMarker(p, *ff.ToActiveMs, len(names), takeoverColor, "Active: "+ff.NewActive)
	}
	height := vg.Length(60+14*len(names)) * vg.Points(1)
	return renderSVG(p, 7*vg.Inch, max(height, 2*vg.Inch))
}

// addMarker draws a vertical line at x across rows, labelled in the legend.
func addMarker(p *plot.Plot, x float64, rows int, c color.Color, label string) {
	l, err := plotter.NewLine(plotter.XYs{{X: x, Y: -0.5}, {X: x, Y: float64(rows) - 0.5}})
	if err != nil {
		return
	}
	l.Color, l.Width, l.Dashes = c, vg.Points(1.5), []vg.Length{vg.Points(4), vg.Points(2)}
	p.Add(l)
	p.Legend.Add(label, l)
	p.Legend.Top = true
}

// renderSVG draws p to SVG text ready to inline in HTML (no XML prolog).
func renderSVG(p *plot.Plot, w, h vg.Length) (string, error) {
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", err
	}
	s := b.String()
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	return s, nil
}
