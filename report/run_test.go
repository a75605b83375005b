package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/scenario"
	"github.com/falab/falab/traffic"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// sampleRun is a crash run: 2 streams and a probe, a kill at +1 s, fw-b
// Active 160 ms later.
func sampleRun() *scenario.RunReport {
	stream := func(id uint32, gapAt, gapMs int) traffic.FlowReport {
		return traffic.FlowReport{ID: id, State: traffic.StateCompleted, Established: at(10), Ended: at(3000),
			Gaps: []traffic.Gap{{Start: at(20), Ms: 78}, {Start: at(gapAt), Ms: float64(gapMs)}}}
	}
	reps := []lab.TrafficReport{
		{Traffic: lab.Traffic{Name: "streams", Kind: "tcp-stream", Client: "client1", Server: "server1"},
			Client: &traffic.Report{Kind: "tcp-stream", Role: "client", Flows: 2, Completed: 2, Final: true,
				Detail: []traffic.FlowReport{stream(1, 995, 170), stream(2, 998, 165)}}},
		{Traffic: lab.Traffic{Name: "probe", Kind: "udp-probe", Client: "client2", Server: "server2"},
			Client: &traffic.Report{Kind: "udp-probe", Role: "client", Flows: 1, Completed: 1, Final: true, Sent: 3000, Lost: 150,
				Detail: []traffic.FlowReport{{ID: 0, State: traffic.StateCompleted, Established: at(5), Ended: at(3000),
					Gaps:     []traffic.Gap{{Start: at(996), Ms: 168}},
					LossRuns: []traffic.LossRun{{First: at(997), Last: at(1150), Lost: 150}}}}}},
	}
	timeline := []api.Event{
		{Time: at(1000), Unit: "lab", Kind: "fault", Msg: "kill fw-a (SIGKILL)"},
		{Time: at(1160), Unit: "fw-b", Kind: "transition", Msg: "Just Active -> Active: peer failed"},
	}
	rep := &scenario.RunReport{Scenario: "crash", Lab: "default", Pass: true, Started: t0, Took: 4 * time.Second,
		Timeline: timeline, Traffic: reps,
		Steps: []scenario.StepResult{{At: time.Second, Step: "expect traffic streams", OK: true, Checks: []scenario.Check{
			{Check: "traffic.streams.survived", Expected: ">=100%", Observed: "100%", OK: true}}}}}
	rep.Faults = lab.FaultFigures(timeline, reps)
	return rep
}

// The run report is one HTML document with the verdict, the per-fault
// table, one inline SVG chart per fault (a line per flow, the fault and the
// takeover marked), the structured checks and the timeline, and links to
// nothing outside itself.
func TestRunHTMLStructure(t *testing.T) {
	var b bytes.Buffer
	if err := RunHTML(&b, sampleRun()); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if v := text(byID(doc, "verdict")); !strings.Contains(v, "PASS") || !strings.Contains(v, "crash") {
		t.Errorf("verdict %q, want PASS: scenario crash", v)
	}
	if rows := count(byID(doc, "faults"), "tr"); rows != 1+2 {
		t.Errorf("fault table has %d rows, want a header and one per generator (3)", rows)
	}
	faults := text(byID(doc, "faults"))
	for _, want := range []string{"160 ms (fw-b)", "170.0 ms", "168.0 ms", "150", "100% (2/2)"} {
		if !strings.Contains(faults, want) {
			t.Errorf("fault table lacks %q:\n%s", want, faults)
		}
	}
	if strings.Contains(faults, "78.0") {
		t.Error("the 78 ms start-up gap is in the per-fault table")
	}
	svgs := all(doc, "svg")
	if len(svgs) != 1 {
		t.Fatalf("%d charts, want one per fault (1)", len(svgs))
	}
	chart := text(svgs[0])
	for _, want := range []string{"streams #1", "streams #2", "probe #0", "fault", "Active: fw-b"} {
		if !strings.Contains(chart, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if !strings.Contains(text(byID(doc, "steps")), "traffic.streams.survived >=100% / 100%") {
		t.Errorf("steps lack the structured check: %s", text(byID(doc, "steps")))
	}
	if rows := count(byID(doc, "timeline"), "tr"); rows != 3 {
		t.Errorf("timeline has %d rows, want 3", rows)
	}
	selfContained(t, doc)
}

// selfContained fails on any element that would load something: scripts,
// stylesheets, images or frames by URL.
func selfContained(t *testing.T, doc *html.Node) {
	t.Helper()
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if (a.Key == "src" || a.Key == "href" || a.Key == "xlink:href") && !strings.HasPrefix(a.Val, "#") {
					t.Errorf("<%s %s=%q>: an external asset", n.Data, a.Key, a.Val)
				}
			}
			if n.Data == "link" || n.Data == "script" || n.Data == "iframe" {
				t.Errorf("<%s> in a self-contained report", n.Data)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
}

func all(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	if n == nil {
		return nil
	}
	if n.Type == html.ElementNode && n.Data == tag {
		out = append(out, n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		out = append(out, all(c, tag)...)
	}
	return out
}

func count(n *html.Node, tag string) int { return len(all(n, tag)) }

func byID(n *html.Node, id string) *html.Node {
	if n.Type == html.ElementNode {
		for _, a := range n.Attr {
			if a.Key == "id" && a.Val == id {
				return n
			}
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f := byID(c, id); f != nil {
			return f
		}
	}
	return nil
}

func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(text(c))
		if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "text") {
			b.WriteString(" ")
		}
	}
	return b.String()
}
