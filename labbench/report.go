package labbench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Verdicts of a figure against its target.
const (
	VerdictMet       = "met"
	VerdictMissed    = "MISSED"
	VerdictNA        = "n/a"
	VerdictReference = "reference"
	VerdictInfo      = "-" // measured, no target of its own
	// VerdictSingle is a figure that would meet its target but was
	// measured once: one sample on a shared machine proves nothing, so
	// the bench does not call it met.
	VerdictSingle = "met once (n=1: not a verdict)"
)

// Target is what a figure should reach: Value Op Target.Value, or, when
// OnRatio, falab's figure divided by the kernel's.
type Target struct {
	Op      string  `json:"op"` // "<", "<=" or ">="
	Value   float64 `json:"value"`
	OnRatio bool    `json:"on_ratio,omitempty"`
	// OnMax applies the target to the worst repetition rather than the
	// median.
	OnMax bool `json:"on_max,omitempty"`
	// OnMin applies the target to the lowest repetition: for a floor
	// such as sessions survived, the worst run.
	OnMin bool `json:"on_min,omitempty"`
}

// met reports whether v meets the target.
func (t Target) met(v float64) bool {
	switch t.Op {
	case "<":
		return v < t.Value
	case "<=":
		return v <= t.Value
	case ">=":
		return v >= t.Value
	}
	return false
}

// Figure is one line of the report: a measured value (the median when
// there are repetitions) beside its target and, where one exists, the Linux
// kernel's figure on the same topology.
type Figure struct {
	ID      string    `json:"id"`
	Item    int       `json:"item"` // the numbered figure of the brief it belongs to
	Name    string    `json:"name"`
	Unit    string    `json:"unit"`
	Value   *float64  `json:"value,omitempty"` // nil: not measured (NA says why)
	Max     *float64  `json:"max,omitempty"`   // worst repetition, when repeated
	Min     *float64  `json:"min,omitempty"`   // best repetition (set by finish)
	N       int       `json:"n"`               // samples behind Value (set by finish)
	Samples []float64 `json:"samples,omitempty"`
	Kernel  *float64  `json:"kernel,omitempty"` // the kernel's figure, same topology
	Ratio   *float64  `json:"ratio,omitempty"`  // Value / Kernel
	Target  *Target   `json:"target,omitempty"`
	Verdict string    `json:"verdict"`
	NA      string    `json:"na,omitempty"`     // why the figure could not be measured
	Detail  string    `json:"detail,omitempty"` // how it was measured, side figures
	// Reference holds quoted figures of another system, not measured here.
	Reference string `json:"reference,omitempty"`
}

// Machine describes where and under what load the figures were taken.
type Machine struct {
	CPUs        int       `json:"cpus"`
	Kernel      string    `json:"kernel"`
	LoadStart   string    `json:"load_average_start"` // 1, 5, 15 min
	LoadEnd     string    `json:"load_average_end"`
	Started     time.Time `json:"started"`
	TookSeconds float64   `json:"took_seconds"`
	Quick       bool      `json:"quick"`
}

// Report is everything `falab bench` measured. It is a plain value: safe
// to read from many goroutines, not to change while others read it.
type Report struct {
	Machine Machine  `json:"machine"`
	Figures []Figure `json:"figures"`
}

// FigureIDs lists the id of every figure a full Run reports, in the
// report's order.
var FigureIDs = []string{
	"lab-up", "lab-down",
	"udp-pps",
	"tcp-gbps", "tcp-gbps-kernel-offloads-on",
	"conn-rate",
	"mem-per-conn", "mem-per-conn-standby",
	"gap-crash", "gap-freeze",
	"tcp-resume-c2s", "tcp-survived-c2s", "tcp-resume-s2c", "tcp-survived-s2c", "tcp-resume-both", "tcp-survived-both",
	"bulk-sync",
	"repl-lag-p99",
	"lp-conn-rate", "lp-tcp", "lp-repl-lag-p99",
	"lp-gap-crash", "lp-gap-freeze",
	"lp-tcp-resume-c2s", "lp-tcp-survived-c2s", "lp-tcp-resume-s2c", "lp-tcp-survived-s2c", "lp-tcp-resume-both", "lp-tcp-survived-both",
	"lp-drop-tcp-resume-c2s", "lp-drop-tcp-survived-c2s", "lp-drop-tcp-resume-s2c", "lp-drop-tcp-survived-s2c", "lp-drop-tcp-resume-both", "lp-drop-tcp-survived-both",
	"transparent-pps",
}

// Figure returns the figure with that id.
func (r *Report) Figure(id string) (Figure, bool) {
	for _, f := range r.Figures {
		if f.ID == id {
			return f, true
		}
	}
	return Figure{}, false
}

func ptr(v float64) *float64 { return &v }

// measured makes a measured figure; finish fills in the verdict.
func measured(item int, id, name, unit string, v float64, t *Target, detail string) Figure {
	return Figure{ID: id, Item: item, Name: name, Unit: unit, Value: ptr(v), Target: t, Detail: detail}
}

// notMeasured makes an n/a figure that says why.
func notMeasured(item int, id, name, unit string, t *Target, why error) Figure {
	return Figure{ID: id, Item: item, Name: name, Unit: unit, Target: t, NA: why.Error()}
}

// repeated makes a figure from repetitions: the median as the value and the
// worst as Max.
func repeated(item int, id, name, unit string, samples []float64, t *Target, detail string) Figure {
	f := measured(item, id, name, unit, median(samples), t, detail)
	f.Max = ptr(slices.Max(samples))
	f.Samples = samples
	return f
}

// withKernel sets the kernel's figure and the ratio.
func (f Figure) withKernel(k float64) Figure {
	f.Kernel = ptr(k)
	if f.Value != nil && k > 0 {
		f.Ratio = ptr(*f.Value / k)
	}
	return f
}

// finish counts the samples, fills Min and Max, and computes the verdict:
// a target is met only by two samples or more.
func (f *Figure) finish() {
	switch {
	case len(f.Samples) > 0:
		f.N = len(f.Samples)
		f.Min, f.Max = ptr(slices.Min(f.Samples)), ptr(slices.Max(f.Samples))
	case f.Value != nil:
		f.N = 1
		f.Min, f.Max = ptr(*f.Value), ptr(*f.Value)
	}
	switch {
	case f.Reference != "":
		f.Verdict = VerdictReference
	case f.Value == nil:
		f.Verdict = VerdictNA
	case f.Target == nil:
		f.Verdict = VerdictInfo
	case f.Target.OnRatio && f.Ratio == nil:
		f.Verdict = VerdictNA
	default:
		v := *f.Value
		if f.Target.OnRatio {
			v = *f.Ratio
		} else if f.Target.OnMax && f.Max != nil {
			v = *f.Max
		} else if f.Target.OnMin && f.Min != nil {
			v = *f.Min
		}
		f.Verdict = VerdictMissed
		switch {
		case f.Target.met(v) && f.N >= 2:
			f.Verdict = VerdictMet
		case f.Target.met(v):
			f.Verdict = VerdictSingle
		}
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// loadAverage reads the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func newMachine(quick bool) Machine {
	return Machine{CPUs: runtime.NumCPU(), Kernel: kernelRelease(), LoadStart: loadAverage(), Started: time.Now(), Quick: quick}
}

// formatValue prints v in unit with three significant figures, large
// rates with k/M.
func formatValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	switch unit {
	case "pps", "conn/s":
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.3gM %s", v/1e6, unit)
		case v >= 1e3:
			return fmt.Sprintf("%.3gk %s", v/1e3, unit)
		}
	case "%":
		return fmt.Sprintf("%.4g%%", v)
	}
	if math.Abs(v) >= 100 {
		return fmt.Sprintf("%.0f %s", v, unit) // %.3g would print 1234 as 1.23e+03
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}

// formatTarget prints a target, such as "< 1 s" or "ratio >= 0.5".
func formatTarget(t *Target, unit string) string {
	if t == nil {
		return "-"
	}
	s := t.Op + " " + formatValue(t.Value, unit)
	if t.OnRatio {
		s = "ratio " + t.Op + " " + fmt.Sprintf("%.2g", t.Value)
	}
	if t.OnMax {
		s += " (max)"
	}
	if t.OnMin {
		s += " (min)"
	}
	return s
}

// WriteTable prints the report as one table, each figure beside its target
// and the kernel's figure, with the machine and its load on top.
func (r *Report) WriteTable(w io.Writer) error {
	m := r.Machine
	mode := "full"
	if m.Quick {
		mode = "quick"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "falab bench (%s run, %s, took %.0f s)\n", mode, m.Started.Format(time.DateTime), m.TookSeconds)
	fmt.Fprintf(&b, "machine: %d CPUs, Linux %s; load average (1 5 15 min) at start %s, at end %s\n", m.CPUs, m.Kernel, m.LoadStart, m.LoadEnd)
	b.WriteString("NOTE: this machine is shared with other work running at the same time: every figure is noisy.\n")
	b.WriteString("falab labs run with TSO/GSO/GRO/tx-checksum offloads OFF (AF_PACKET data plane); the kernel baseline is the\n")
	b.WriteString("same lab with fw-a's kernel forwarding (ip_forward=1, nftables masquerade), offloads OFF unless the row says ON.\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tfigure\tfalab\tkernel\tratio\ttarget\tverdict")
	for _, f := range r.Figures {
		val, kern, ratio := "-", "-", "-"
		switch {
		case f.Reference != "":
			val = "reference (not measured here)"
		case f.Value == nil:
			val = "n/a"
		case f.N > 1 && f.Min != nil && f.Max != nil:
			val = fmt.Sprintf("n=%d min %s, median %s, max %s", f.N, formatValue(*f.Min, f.Unit), formatValue(*f.Value, f.Unit), formatValue(*f.Max, f.Unit))
		default:
			val = fmt.Sprintf("n=%d %s", max(f.N, 1), formatValue(*f.Value, f.Unit))
		}
		if f.Kernel != nil {
			kern = formatValue(*f.Kernel, f.Unit)
		}
		if f.Ratio != nil {
			ratio = fmt.Sprintf("%.2f", *f.Ratio)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Item, f.Name, val, kern, ratio, formatTarget(f.Target, f.Unit), f.Verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\nnotes:\n")
	for _, f := range r.Figures {
		switch {
		case f.Reference != "":
			fmt.Fprintf(&b, "  %-18s reference (not measured here): %s\n", f.ID, f.Reference)
		case f.NA != "":
			fmt.Fprintf(&b, "  %-18s n/a: %s\n", f.ID, f.NA)
		}
		if f.Detail != "" {
			fmt.Fprintf(&b, "  %-18s %s\n", f.ID, f.Detail)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
