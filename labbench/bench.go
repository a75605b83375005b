package labbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/labfile"
	"github.com/falab/falab/labs"
)

// Options tune Run.
type Options struct {
	// Quick runs fewer repetitions and shorter measurements (a CI smoke
	// run); its figures are rougher.
	Quick bool
	// JSON prints the report as JSON instead of the table.
	JSON bool
	// Logger receives progress and the reasons of n/a figures; nil
	// discards.
	Logger *slog.Logger
	// Executable is the falab binary the units run; empty means this very
	// binary (as for `falab bench`).
	Executable string
	// Only, when set, runs just the measurements with these item numbers
	// (1-10 of the brief, 11 the transparent pair); item 1 is measured
	// whenever any lab comes up.
	Only []int
}

// Run measures every figure, prints the report (a table, or JSON with
// opts.JSON) to out and returns it. A figure that cannot be measured is in
// the report as n/a with the reason; Run returns an error only when it
// could not run at all or ctx was cancelled. Every lab it brings up is torn
// down before it returns.
func Run(ctx context.Context, opts Options, out io.Writer) (Report, error) {
	b, err := newBench(opts)
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(b.tmp)
	rep := Report{Machine: newMachine(opts.Quick)}
	steps := []struct {
		items []int
		name  string
		run   func(context.Context) []Figure
	}{
		{[]int{2, 3, 4}, "data plane, falab and kernel", b.dataPlane},
		{[]int{6}, "failover gaps", b.failoverGaps},
		{[]int{7}, "tcp resume", b.tcpResume},
		{[]int{8, 9}, "replication", b.replication},
		{[]int{5}, "memory per connection", b.memoryPerConn},
		{[]int{11}, "transparent pair", b.transparent},
		{[]int{10}, "Linux pair", b.linuxPair},
	}
	var figs []Figure
	for _, s := range steps {
		if !b.wants(s.items...) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		b.log.Info("bench: measuring", "step", s.name)
		start := time.Now()
		figs = append(figs, s.run(ctx)...)
		b.log.Info("bench: measured", "step", s.name, "took", time.Since(start).Round(time.Millisecond))
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.Figures = append(b.upDownFigures(), figs...)
	order(rep.Figures)
	for i := range rep.Figures {
		rep.Figures[i].finish()
	}
	rep.Machine.LoadEnd = loadAverage()
	rep.Machine.TookSeconds = time.Since(rep.Machine.Started).Seconds()
	if opts.JSON {
		return rep, rep.WriteJSON(out)
	}
	return rep, rep.WriteTable(out)
}

// order sorts figures by item, keeping the order within an item (falab's
// figure before its variants).
func order(figs []Figure) {
	// Insertion sort: stable and the list is short.
	for i := 1; i < len(figs); i++ {
		for j := i; j > 0 && figs[j].Item < figs[j-1].Item; j-- {
			figs[j], figs[j-1] = figs[j-1], figs[j]
		}
	}
}

// bench is one run's shared state. It is used by one goroutine.
type bench struct {
	opts Options
	log  *slog.Logger
	tmp  string // lab files written for this run
	seq  int    // labs brought up so far, for unique names

	// ups and downs are the times of lab.Up and lab.Down of every full
	// (units running) lab of the run.
	ups, downs []float64
	upErr      error
}

func newBench(opts Options) (*bench, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("falab bench needs root: it creates network namespaces, veth links and raw packet sockets")
	}
	tmp, err := os.MkdirTemp("", "falab-bench-")
	if err != nil {
		return nil, err
	}
	return &bench{opts: opts, log: log, tmp: tmp}, nil
}

func (b *bench) wants(items ...int) bool {
	if len(b.opts.Only) == 0 {
		return true
	}
	for _, i := range items {
		for _, o := range b.opts.Only {
			if i == o {
				return true
			}
		}
	}
	return false
}

// reps is how many repetitions a repeated measurement makes.
func (b *bench) reps(full int) int {
	if b.opts.Quick {
		return 1
	}
	return full
}

// pick returns quick in a quick run, full otherwise.
func pick[T any](b *bench, quick, full T) T {
	if b.opts.Quick {
		return quick
	}
	return full
}

// labFile writes a copy of the default lab named name and returns its path.
func (b *bench) labFile(name string) (string, error) { return b.labFileOf(labs.Default, name) }

// labFileOf writes a copy of the built-in lab base renamed to name.
func (b *bench) labFileOf(base, name string) (string, error) {
	data, ok := labs.Get(base)
	if !ok {
		return "", fmt.Errorf("the built-in %s lab is missing from this binary", base)
	}
	re := regexp.MustCompile(`(?m)^name: ` + regexp.QuoteMeta(base) + `$`)
	if !re.Match(data) {
		return "", fmt.Errorf("the built-in %s lab has no `name: %s` line to rename", base, base)
	}
	data = re.ReplaceAll(data, []byte("name: "+name))
	path := filepath.Join(b.tmp, name+".yaml")
	return path, os.WriteFile(path, data, 0o600)
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// benchLab is a lab this run brought up.
type benchLab struct {
	*labfile.Lab
	topologyOnly bool
}

// up brings up a copy of the default lab under a unique name (tag says
// what it is for) and returns it with the function that tears it down,
// which the caller must defer. Full labs' up and down times feed figure 1.
func (b *bench) up(ctx context.Context, tag string, topologyOnly bool) (*benchLab, func(), error) {
	return b.upOf(ctx, labs.Default, tag, topologyOnly)
}

// upOf is up for a copy of the built-in lab base.
func (b *bench) upOf(ctx context.Context, base, tag string, topologyOnly bool) (*benchLab, func(), error) {
	return b.upLab(ctx, base, tag, topologyOnly, false)
}

// upOffloads is up for a copy of the default lab with `offloads: true`:
// offloads on on every veth, the units forwarding GSO super-frames whole.
func (b *bench) upOffloads(ctx context.Context, tag string) (*benchLab, func(), error) {
	return b.upLab(ctx, labs.Default, tag, false, true)
}

func (b *bench) upLab(ctx context.Context, base, tag string, topologyOnly, offloads bool) (*benchLab, func(), error) {
	b.seq++
	// Lab names are at most 20 characters: lb, the pid, the tag, a count.
	name := fmt.Sprintf("lb%d-%s%d", os.Getpid()%100000, tag, b.seq)
	path, err := b.labFileOf(base, name)
	if err != nil {
		return nil, nil, err
	}
	if offloads {
		if err := appendFile(path, "\noffloads: true\n"); err != nil {
			return nil, nil, err
		}
	}
	l, data, err := lab.Resolve(path)
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	_, err = lab.Up(ctx, l, data, lab.UpOptions{Logger: b.log, Executable: b.opts.Executable, TopologyOnly: topologyOnly})
	took := time.Since(start)
	if err != nil {
		if !topologyOnly {
			b.upErr = err
		}
		// Up undoes a failed up itself; make sure of it all the same.
		_, _ = lab.Down(name, b.log)
		return nil, nil, fmt.Errorf("lab up %s: %w", name, err)
	}
	b.log.Debug("bench: lab up", "lab", name, "took", took)
	down := func() {
		start := time.Now()
		b.log.Debug("bench: lab down", "lab", name)
		if _, err := lab.Down(name, b.log); err != nil {
			b.log.Error("bench: lab down failed; run `falab down "+name+"`", "lab", name, "err", err)
			return
		}
		if !topologyOnly {
			b.downs = append(b.downs, ms(time.Since(start)))
		}
	}
	if !topologyOnly {
		b.ups = append(b.ups, ms(took))
	}
	return &benchLab{Lab: l, topologyOnly: topologyOnly}, down, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// upDownFigures reports figure 1 from every full lab the run brought up.
func (b *bench) upDownFigures() []Figure {
	const item = 1
	upT := &Target{Op: "<", Value: 1000, OnMax: false}
	downT := &Target{Op: "<", Value: 500}
	if len(b.ups) == 0 {
		why := b.upErr
		if why == nil {
			why = errors.New("no lab with units was brought up in this run")
		}
		return []Figure{
			notMeasured(item, "lab-up", "lab up (default lab, lab.Up)", "ms", upT, why),
			notMeasured(item, "lab-down", "lab down (lab.Down)", "ms", downT, why),
		}
	}
	up := repeated(item, "lab-up", "lab up (default lab, lab.Up)", "ms", b.ups, upT,
		fmt.Sprintf("lab.Up of the default lab (8 namespaces, 9 links, 2 unit processes until their APIs answer), %d labs of this run", len(b.ups)))
	if len(b.downs) == 0 {
		return []Figure{up, notMeasured(item, "lab-down", "lab down (lab.Down)", "ms", downT, errors.New("no lab.Down succeeded"))}
	}
	down := repeated(item, "lab-down", "lab down (lab.Down)", "ms", b.downs, downT,
		fmt.Sprintf("lab.Down (kill units and agents, remove namespaces), %d labs", len(b.downs)))
	return []Figure{up, down}
}

// errText flattens an error for a one-line n/a reason.
func errText(err error) string {
	return string(bytes.ReplaceAll([]byte(err.Error()), []byte("\n"), []byte(" | ")))
}
