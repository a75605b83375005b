package labbench

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/labs"
)

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		fig  Figure
		want string
	}{
		{"below an upper bound", repeated(1, "x", "x", "ms", []float64{40, 41}, &Target{Op: "<", Value: 1000}, ""), VerdictMet},
		{"below an upper bound once", measured(1, "x", "x", "ms", 40, &Target{Op: "<", Value: 1000}, ""), VerdictSingle},
		{"one repetition is one sample", repeated(1, "x", "x", "ms", []float64{40}, &Target{Op: "<", Value: 1000}, ""), VerdictSingle},
		{"at an exclusive upper bound", measured(1, "x", "x", "ms", 1000, &Target{Op: "<", Value: 1000}, ""), VerdictMissed},
		{"at an inclusive upper bound", repeated(5, "x", "x", "B/conn", []float64{256, 256, 250}, &Target{Op: "<=", Value: 256}, ""), VerdictMet},
		{"above an inclusive upper bound", measured(5, "x", "x", "B/conn", 257, &Target{Op: "<=", Value: 256}, ""), VerdictMissed},
		{"below a lower bound", measured(4, "x", "x", "conn/s", 9e4, &Target{Op: ">=", Value: 1e5}, ""), VerdictMissed},
		{"ratio met", repeated(2, "x", "x", "pps", []float64{300, 310, 290}, &Target{Op: ">=", Value: 0.5, OnRatio: true}, "").withKernel(500), VerdictMet},
		{"ratio met once", measured(2, "x", "x", "pps", 300, &Target{Op: ">=", Value: 0.5, OnRatio: true}, "").withKernel(500), VerdictSingle},
		{"ratio missed", measured(2, "x", "x", "pps", 200, &Target{Op: ">=", Value: 0.5, OnRatio: true}, "").withKernel(500), VerdictMissed},
		{"ratio without a kernel figure", measured(2, "x", "x", "pps", 200, &Target{Op: ">=", Value: 0.5, OnRatio: true}, ""), VerdictNA},
		{"median meets, max does not (target on max)", repeated(6, "x", "x", "ms", []float64{5, 6, 30}, &Target{Op: "<", Value: 10, OnMax: true}, ""), VerdictMissed},
		{"one run of three loses a session (target on min)", repeated(7, "x", "x", "%", []float64{100, 90, 100}, &Target{Op: ">=", Value: 100, OnMin: true}, ""), VerdictMissed},
		{"every run keeps every session (target on min)", repeated(7, "x", "x", "%", []float64{100, 100, 100}, &Target{Op: ">=", Value: 100, OnMin: true}, ""), VerdictMet},
		{"median meets (target on median)", repeated(6, "x", "x", "ms", []float64{5, 6, 30}, &Target{Op: "<", Value: 10}, ""), VerdictMet},
		{"no target", measured(7, "x", "x", "ms", 20, nil, ""), VerdictInfo},
		{"not measured", notMeasured(3, "x", "x", "Gbit/s", &Target{Op: ">=", Value: 0.5}, errors.New("iperf3 is not installed")), VerdictNA},
		{"reference", Figure{ID: "r", Item: 10, Reference: "2.7-3.3 s"}, VerdictReference},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fig
			f.finish()
			if f.Verdict != tc.want {
				t.Errorf("verdict %q, want %q", f.Verdict, tc.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{9, 1, 5}, 5},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{46.8, "ms", "46.8 ms"},
		{1234.5, "ms", "1234 ms"},
		{304000, "pps", "304k pps"},
		{1.25e6, "pps", "1.25M pps"},
		{14200, "conn/s", "14.2k conn/s"},
		{100, "%", "100%"},
		{2.318, "Gbit/s", "2.32 Gbit/s"},
	} {
		if got := formatValue(tc.v, tc.unit); got != tc.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
	for _, tc := range []struct {
		t    *Target
		want string
	}{
		{nil, "-"},
		{&Target{Op: "<", Value: 1000}, "< 1000 ms"},
		{&Target{Op: ">=", Value: 0.5, OnRatio: true}, "ratio >= 0.5"},
		{&Target{Op: "<", Value: 10, OnMax: true}, "< 10 ms (max)"},
		{&Target{Op: ">=", Value: 100, OnMin: true}, ">= 100 ms (min)"},
	} {
		if got := formatTarget(tc.t, "ms"); got != tc.want {
			t.Errorf("formatTarget(%+v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

// TestTable checks that the printed table carries the machine's CPU count
// and load (the figures are noisy on a shared machine), every figure with
// its kernel figure, ratio and target, and every n/a with its reason.
func TestTable(t *testing.T) {
	r := Report{
		Machine: Machine{CPUs: 2, Kernel: "6.1", LoadStart: "0.50 0.40 0.30", LoadEnd: "1.00 0.50 0.30", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), TookSeconds: 61},
		Figures: []Figure{
			measured(2, "udp-pps", "UDP forwarding", "pps", 300_000, &Target{Op: ">=", Value: 0.5, OnRatio: true}, "how").withKernel(400_000),
			repeated(5, "mem", "memory", "B/conn", []float64{250, 240, 255}, &Target{Op: "<=", Value: 256}, ""),
			notMeasured(3, "tcp-gbps", "TCP bulk", "Gbit/s", &Target{Op: ">=", Value: 0.5, OnRatio: true}, errors.New("iperf3 is not installed")),
			{ID: "ref", Item: 10, Name: "quoted", Unit: "ms", Reference: "2.7-3.3 s with 1 s adverts"},
		},
	}
	for i := range r.Figures {
		r.Figures[i].finish()
	}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"machine: 2 CPUs",
		"load average (1 5 15 min) at start 0.50 0.40 0.30",
		"noisy",
		"n=1 300k pps", "400k pps", "0.75", "ratio >= 0.5", "met once (n=1: not a verdict)",
		"n=3 min 240 B/conn, median 250 B/conn, max 255 B/conn",
		"n/a: iperf3 is not installed",
		"reference (not measured here)", "2.7-3.3 s with 1 s adverts",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var j bytes.Buffer
	if err := r.WriteJSON(&j); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(j.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, back); d != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", d)
	}
}

func TestUpDownWithoutLabsIsNA(t *testing.T) {
	b := &bench{}
	figs := b.upDownFigures()
	var got []string
	for _, f := range figs {
		f.finish()
		got = append(got, f.ID+" "+f.Verdict)
		if f.NA == "" {
			t.Errorf("%s: n/a without a reason", f.ID)
		}
	}
	if d := cmp.Diff([]string{"lab-up n/a", "lab-down n/a"}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// TestLabFile checks the bench's copy of the default lab: renamed, never
// "default", and otherwise the same lab.
func TestLabFile(t *testing.T) {
	b := &bench{tmp: t.TempDir()}
	path, err := b.labFile("lb1-test1")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := labfile.Load(path, data)
	if err != nil {
		t.Fatalf("the renamed lab does not load: %v", err)
	}
	if l.Name != "lb1-test1" {
		t.Errorf("lab name %q, want lb1-test1", l.Name)
	}
	orig, _ := labs.Get(labs.Default)
	back := strings.Replace(string(data), "name: lb1-test1\n", "name: default\n", 1)
	if d := cmp.Diff(string(orig), back); d != "" {
		t.Errorf("the copy differs from the default lab beyond its name (-default +copy):\n%s", d)
	}
}

func TestOrderKeepsItemsStable(t *testing.T) {
	figs := []Figure{{ID: "c", Item: 2}, {ID: "a", Item: 1}, {ID: "d", Item: 2}, {ID: "b", Item: 1}}
	order(figs)
	var got []string
	for _, f := range figs {
		got = append(got, f.ID)
	}
	if d := cmp.Diff([]string{"a", "b", "c", "d"}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
