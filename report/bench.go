package report

import (
	"fmt"
	"html/template"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/falab/falab/labbench"
)

var (
	falabColor  = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	kernelColor = color.RGBA{0x7f, 0x7f, 0x7f, 0xff}
	targetColor = color.RGBA{0xd6, 0x27, 0x28, 0xff}
)

// benchPage is what the bench template shows.
type benchPage struct {
	Rep     labbench.Report
	Figures []benchFigure
}

type benchFigure struct {
	F     labbench.Figure
	Chart template.HTML // inline SVG from plot, ours: trusted
}

// BenchHTML writes the benchmark's report to w: one self-contained page,
// each measured figure charted beside the kernel's (where one exists) and
// its target, with the repetitions as dots.
func BenchHTML(w io.Writer, rep labbench.Report) error {
	pg := benchPage{Rep: rep}
	for _, f := range rep.Figures {
		svg, err := figureChart(f)
		if err != nil {
			return fmt.Errorf("report: chart of %s: %w", f.ID, err)
		}
		pg.Figures = append(pg.Figures, benchFigure{F: f, Chart: template.HTML(svg)})
	}
	return benchTemplate.Execute(w, pg)
}

// WriteBench writes the benchmark's report into dir as
// bench-YYYYmmdd-HHMMSS.html and returns the file's path.
func WriteBench(dir string, rep labbench.Report) (string, error) {
	return writeFile(dir, "bench-"+rep.Machine.Started.Format("20060102-150405")+".html", func(w io.Writer) error { return BenchHTML(w, rep) })
}

// figureChart draws one figure: falab's bar, the kernel's bar, the target
// as a dashed line, the samples as dots. "" for a figure not measured.
func figureChart(f labbench.Figure) (string, error) {
	if f.Value == nil {
		return "", nil
	}
	p := plot.New()
	p.Title.Text = f.Name
	p.X.Label.Text = f.Unit
	p.X.Min = 0
	rows := []string{"falab"}
	if err := addBar(p, 0, *f.Value, falabColor); err != nil {
		return "", err
	}
	if f.Kernel != nil {
		rows = append(rows, "kernel")
		if err := addBar(p, 1, *f.Kernel, kernelColor); err != nil {
			return "", err
		}
	}
	if len(f.Samples) > 1 {
		pts := make(plotter.XYs, len(f.Samples))
		for i, s := range f.Samples {
			pts[i] = plotter.XY{X: s, Y: 0}
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return "", err
		}
		sc.Color, sc.Radius = color.Black, vg.Points(2)
		p.Add(sc)
		p.Legend.Add(fmt.Sprintf("repetitions (%d)", len(f.Samples)), sc)
	}
	if t := f.Target; t != nil && !t.OnRatio {
		addMarker(p, t.Value, len(rows), targetColor, "target "+t.Op+" "+fmt.Sprint(t.Value))
	}
	p.NominalY(rows...)
	return renderSVG(p, 6*vg.Inch, vg.Length(70+40*len(rows))*vg.Points(1))
}

// addBar draws a horizontal bar of length v on row y.
func addBar(p *plot.Plot, y int, v float64, c color.Color) error {
	bar, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(16))
	if err != nil {
		return err
	}
	bar.Horizontal, bar.Color, bar.LineStyle.Width = true, c, 0
	bar.XMin = float64(y)
	p.Add(bar)
	return nil
}

var benchTemplate = template.Must(template.New("bench").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>falab bench</title>` + style + `</head><body>
<h1 id="verdict">falab bench</h1>
<p id="machine">{{.Rep.Machine.CPUs}} CPUs, kernel {{.Rep.Machine.Kernel}}, load {{.Rep.Machine.LoadStart}} → {{.Rep.Machine.LoadEnd}}, started {{.Rep.Machine.Started.Format "2006-01-02 15:04:05 MST"}}, took {{printf "%.0f" .Rep.Machine.TookSeconds}} s{{if .Rep.Machine.Quick}} (quick){{end}}.</p>
<table id="figures"><tr><th>#</th><th>figure</th><th class="num">falab</th><th class="num">kernel</th><th>target</th><th>verdict</th><th>detail</th></tr>
{{range .Figures}}{{$f := .F}}<tr{{if eq $f.Verdict "MISSED"}} class="bad"{{end}}><td>{{$f.Item}}</td><td>{{$f.Name}}</td><td class="num">{{if $f.Value}}{{printf "%.3g" (deref $f.Value)}} {{$f.Unit}}{{else}}n/a{{end}}</td><td class="num">{{if $f.Kernel}}{{printf "%.3g" (deref $f.Kernel)}}{{end}}</td><td>{{with $f.Target}}{{.Op}} {{.Value}}{{if .OnRatio}} × kernel{{end}}{{end}}</td><td>{{$f.Verdict}}</td><td>{{$f.NA}}{{$f.Detail}}</td></tr>
{{end}}</table>
{{range .Figures}}{{if .Chart}}<figure class="chart" id="chart-{{.F.ID}}">{{.Chart}}</figure>{{end}}
{{end}}
<p><small>Written by falab. Self-contained: no external asset.</small></p>
</body></html>
`))
