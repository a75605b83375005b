package report

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/falab/falab/labbench"
)

func fp(v float64) *float64 { return &v }

// The bench report lists every figure and charts each measured one beside
// the kernel's and its target; a figure not measured gets no chart.
func TestBenchHTMLStructure(t *testing.T) {
	rep := labbench.Report{
		Machine: labbench.Machine{CPUs: 2, Kernel: "6.1", LoadStart: "0.5", LoadEnd: "1.0", Started: t0, TookSeconds: 61},
		Figures: []labbench.Figure{
			{ID: "udp-pps", Item: 2, Name: "UDP forwarding", Unit: "kpps", Value: fp(180), Kernel: fp(420), Samples: []float64{170, 180, 190},
				Target: &labbench.Target{Op: ">=", Value: 100}, Verdict: labbench.VerdictMet},
			{ID: "gap-kill", Item: 6, Name: "failover gap, kill", Unit: "ms", Value: fp(160), Target: &labbench.Target{Op: "<", Value: 500}, Verdict: labbench.VerdictMet},
			{ID: "tcp-resume", Item: 7, Name: "TCP resume", Unit: "ms", NA: "iperf3 missing", Verdict: labbench.VerdictNA},
		},
	}
	var b bytes.Buffer
	if err := BenchHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if rows := count(byID(doc, "figures"), "tr"); rows != 4 {
		t.Errorf("figure table has %d rows, want a header and 3", rows)
	}
	if n := len(all(doc, "svg")); n != 2 {
		t.Errorf("%d charts, want 2 (the figure not measured has none)", n)
	}
	udp := text(byID(doc, "chart-udp-pps"))
	for _, want := range []string{"falab", "kernel", "target >= 100", "repetitions (3)"} {
		if !strings.Contains(udp, want) {
			t.Errorf("udp chart lacks %q", want)
		}
	}
	if strings.Contains(text(byID(doc, "chart-gap-kill")), "kernel") {
		t.Error("a chart shows a kernel bar for a figure without one")
	}
	selfContained(t, doc)
}
