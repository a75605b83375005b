package report

import (
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/scenario"
)

// runPage is what the run template shows.
type runPage struct {
	Rep     *scenario.RunReport
	Verdict string
	Pass    bool
	Faults  []faultSection
	Figures []string // one line of figures per generator
}

type faultSection struct {
	Fig   lab.FaultFigure
	Chart template.HTML // inline SVG from plot, ours: trusted
}

// RunHTML writes the report of a scenario run to w: one self-contained
// HTML page.
func RunHTML(w io.Writer, rep *scenario.RunReport) error {
	pg := runPage{Rep: rep, Pass: rep.Pass, Verdict: "PASS"}
	switch {
	case rep.Error != "":
		pg.Verdict = "ERROR: " + rep.Error
	case !rep.Pass:
		pg.Verdict = "FAIL"
	}
	for _, t := range rep.Traffic {
		pg.Figures = append(pg.Figures, scenario.TrafficSummary(t))
	}
	for _, f := range rep.Faults {
		svg, err := faultChart(f, rep.Traffic)
		if err != nil {
			return fmt.Errorf("report: chart of %s: %w", f.Fault, err)
		}
		pg.Faults = append(pg.Faults, faultSection{Fig: f, Chart: template.HTML(svg)})
	}
	return runTemplate.Execute(w, pg)
}

// WriteRun writes the run's report into dir (created if needed) as
// SCENARIO-YYYYmmdd-HHMMSS.html and returns the file's path.
func WriteRun(dir string, rep *scenario.RunReport) (string, error) {
	return writeFile(dir, rep.Scenario+"-"+rep.Started.Format("20060102-150405")+".html", func(w io.Writer) error { return RunHTML(w, rep) })
}

func writeFile(dir, name string, render func(io.Writer) error) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := render(f); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

var funcs = template.FuncMap{
	"deref": func(p *float64) float64 { return *p },
	"rel":   func(t, start time.Time) string { return fmt.Sprintf("+%.3fs", t.Sub(start).Seconds()) },
	"clock": func(t time.Time) string { return t.Format("15:04:05.000") },
	"secs":  func(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) },
	"ms": func(p *float64) string {
		if p == nil {
			return "no takeover"
		}
		return fmt.Sprintf("%.0f ms", *p)
	},
	"lost": func(t lab.FaultTraffic) string {
		if t.Kind != "udp-probe" && t.Kind != "ping" {
			return "–"
		}
		return fmt.Sprint(t.Lost)
	},
}

// style is the page's only styling, inline: no external asset.
const style = `<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
h1 .pass{color:#2ca02c}h1 .fail{color:#d62728}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:90%}
th{background:#f3f3f3}tr.bad td{background:#fde8e8}.num{text-align:right}code{font-size:90%}
section.fault{margin-bottom:2em}
</style>`

var runTemplate = template.Must(template.New("run").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>falab run {{.Rep.Scenario}}: {{.Verdict}}</title>` + style + `</head><body>
<h1 id="verdict"><span class="{{if .Pass}}pass{{else}}fail{{end}}">{{.Verdict}}</span>: scenario {{.Rep.Scenario}}</h1>
<p>Lab {{.Rep.Lab}}, started {{.Rep.Started.Format "2006-01-02 15:04:05 MST"}}, took {{secs .Rep.Took}}.{{if .Rep.KeptLogs}} Units' logs kept in <code>{{.Rep.KeptLogs}}</code>.{{end}}</p>
{{range .Rep.Failures}}<p class="failure">failed: {{.}}</p>{{end}}
<h2>Figures per fault</h2>
{{if not .Faults}}<p>No fault in this run.</p>{{end}}
{{if .Faults}}<table id="faults"><tr><th>fault</th><th>to Active</th><th>traffic</th><th>kind</th><th class="num">gap</th><th class="num">lost</th><th class="num">survived</th></tr>
{{range .Faults}}{{$f := .Fig}}{{range .Fig.Traffic}}<tr><td>{{clock $f.At}} {{$f.Fault}}</td><td>{{ms $f.ToActiveMs}}{{if $f.NewActive}} ({{$f.NewActive}}){{end}}</td><td>{{.Name}}</td><td>{{.Kind}}</td><td class="num">{{printf "%.1f" .GapMs}} ms</td><td class="num">{{lost .}}</td><td class="num">{{printf "%.0f" .SurvivedPct}}% ({{.Survived}}/{{.Flows}})</td></tr>
{{end}}{{end}}</table>{{end}}
{{range .Faults}}<section class="fault"><h3>{{clock .Fig.At}} {{.Fig.Fault}}</h3>
<figure class="chart">{{.Chart}}</figure></section>
{{end}}
<h2>Steps</h2>
<table id="steps"><tr><th>at</th><th>step</th><th>ok</th><th>checks (expected / observed)</th><th>detail</th></tr>
{{range .Rep.Steps}}<tr{{if not .OK}} class="bad"{{end}}><td>+{{secs .At}}</td><td>{{.Step}}</td><td>{{if .OK}}ok{{else}}FAIL{{end}}</td><td>{{range .Checks}}<div{{if not .OK}} class="bad"{{end}}><code>{{.Check}}</code> {{.Expected}} / {{.Observed}} {{if .OK}}✓{{else}}✗{{end}}</div>{{end}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>
<h2>Whole-run figures</h2>
<ul>{{range .Figures}}<li>{{.}}</li>{{end}}</ul>
<h2>Timeline</h2>
<table id="timeline"><tr><th>time</th><th>since start</th><th>unit</th><th>kind</th><th>event</th></tr>
{{$start := .Rep.Started}}{{range .Rep.Timeline}}<tr><td>{{clock .Time}}</td><td>{{rel .Time $start}}</td><td>{{.Unit}}</td><td>{{.Kind}}</td><td>{{.Msg}}</td></tr>
{{end}}</table>
<p><small>Written by falab. Self-contained: no external asset.</small></p>
</body></html>
`))
