package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/labs"
	"github.com/falab/falab/topo"
)

// Resolve finds a lab by what the user typed: a built-in lab's name, or a
// lab file's path. It returns the lab and the bytes it was read from.
func Resolve(arg string) (*labfile.Lab, []byte, error) {
	if arg == "" {
		arg = labs.Default
	}
	var data []byte
	var file string
	if b, ok := labs.Get(arg); ok && !strings.ContainsAny(arg, "/.") {
		data, file = b, "builtin:"+arg
	} else {
		b, err := os.ReadFile(arg)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, nil, fmt.Errorf("%s: no such lab file, and no built-in lab of that name (built-in: %s)", arg, strings.Join(labs.Names(), ", "))
			}
			return nil, nil, err
		}
		data, file = b, arg
	}
	l, err := labfile.Load(file, data)
	if err != nil {
		return nil, nil, err
	}
	return l, data, nil
}

// UpOptions tune Up.
type UpOptions struct {
	Logger *slog.Logger
	// Executable is the falab binary the units run (`falab unit ...`);
	// empty means this very binary.
	Executable string
	// TopologyOnly builds the namespaces and links but starts no unit.
	TopologyOnly bool
}

// ErrAlreadyUp says a lab of that name is recorded already.
var ErrAlreadyUp = errors.New("lab is already up")

// Up builds the lab: it records the lab's namespaces in its state
// directory first (so that `falab down` can always undo a crashed up),
// deploys the topology, then starts the units, then the hosts' daemons.
// On failure it undoes what it made and returns the error.
func Up(ctx context.Context, l *labfile.Lab, data []byte, opt UpOptions) (st *State, err error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if prev, err := ReadState(l.Name); err == nil {
		if prev.Phase == PhaseBuilding {
			return nil, fmt.Errorf("lab %s: a previous `falab up` did not finish (it was interrupted); run `falab down %s` first", l.Name, l.Name)
		}
		return nil, fmt.Errorf("%w: %s has been up since %s; `falab down %s` first", ErrAlreadyUp, l.Name, prev.CreatedAt.Format(time.DateTime), l.Name)
	} else if !errors.Is(err, ErrNotRunning) {
		return nil, err
	}
	// A missing program is found before anything is touched.
	if err := CheckDaemonPrograms(l); err != nil {
		return nil, err
	}
	plan := Plan(l)
	names := make([]string, len(plan.Namespaces))
	for i, ns := range plan.Namespaces {
		names[i] = ns.Name
	}
	// Never adopt a namespace someone else made: a clash touches nothing.
	existing, err := topo.List(labfile.NamespacePrefix)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if slices.Contains(existing, n) {
			return nil, fmt.Errorf("namespace %s already exists but no lab %s is recorded in %s; if it is a leftover, `falab down --all` removes it", n, l.Name, RunDir())
		}
	}
	st = &State{Name: l.Name, Source: l.File, Phase: PhaseBuilding, CreatedAt: time.Now(), Namespaces: names, Units: map[string]Proc{}}
	if asFile, err := labfile.Load(l.File, data); err == nil {
		if asFile.Failover.MACMode != l.Failover.MACMode {
			st.MACMode = l.Failover.MACMode
		}
		if asFile.Failover.HTTPReplication != l.Failover.HTTPReplication {
			h := l.Failover.HTTPReplication
			st.HTTPReplication = &h
		}
		if !slices.Equal(asFile.Failover.NoReplicate, l.Failover.NoReplicate) {
			st.NoReplicate = append([]string{}, l.Failover.NoReplicate...)
		}
	}
	if err := WriteState(st); err != nil {
		return nil, fmt.Errorf("record lab %s: %w", l.Name, err)
	}
	defer func() {
		if err != nil {
			log.Info("undoing a failed up", "lab", l.Name, "err", err)
			if _, derr := Down(l.Name, log); derr != nil {
				err = fmt.Errorf("%w (and undoing it failed: %v)", err, derr)
			}
		}
	}()
	if err := os.WriteFile(filepath.Join(Dir(l.Name), "lab.yaml"), data, 0o600); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := topo.Deploy(ctx, plan, log); err != nil {
		return nil, err
	}
	log.Debug("topology deployed", "lab", l.Name, "took", time.Since(start))
	testPause("topology", l.Name)
	if !opt.TopologyOnly {
		if err := startUnits(ctx, l, st, opt); err != nil {
			return nil, err
		}
	}
	// Daemons start once the units forward, so that a daemon that talks
	// at once (an IKE initiator, an SGSN) finds the path through the pair
	// up; daemons that only listen do not mind either way.
	if err := startDaemons(ctx, l, st, log); err != nil {
		return nil, err
	}
	st.Phase = PhaseUp
	if err := WriteState(st); err != nil {
		return nil, err
	}
	return st, nil
}

// DownReport says what Down removed.
type DownReport struct {
	Lab        string   `json:"lab"`
	Namespaces []string `json:"namespaces"`
	Killed     []int    `json:"killed_pids"`
}

// Down removes everything the lab made: its processes (by recorded PID,
// and any process left inside its namespaces), its namespaces (and with
// them every veth and bridge) and its state directory. It is idempotent:
// downing a lab that is not there succeeds with an empty report.
func Down(name string, log *slog.Logger) (DownReport, error) {
	rep := DownReport{Lab: name}
	st, err := ReadState(name)
	var names []string
	switch {
	case err == nil:
		names = st.Namespaces
		for _, p := range st.Units {
			if p.Alive() {
				if err := p.Kill(2 * time.Second); err != nil {
					return rep, err
				}
				rep.Killed = append(rep.Killed, p.PID)
			}
		}
		for _, d := range st.Daemons {
			if p := d.Proc; p.Alive() {
				if err := p.Kill(2 * time.Second); err != nil {
					return rep, err
				}
				rep.Killed = append(rep.Killed, p.PID)
			}
		}
		for _, p := range st.Procs {
			if p.Alive() {
				if err := p.Kill(2 * time.Second); err != nil {
					return rep, err
				}
				rep.Killed = append(rep.Killed, p.PID)
			}
		}
	case errors.Is(err, ErrNotRunning):
		// No record (it was removed by hand): fall back to the lab's
		// namespace prefix, minus any namespace another lab records.
		names, err = unrecordedWithPrefix(labfile.NamespacePrefix + name + "-")
		if err != nil {
			return rep, err
		}
	default:
		// A corrupt record: the prefix is all we can trust.
		names, err = unrecordedWithPrefix(labfile.NamespacePrefix + name + "-")
		if err != nil {
			return rep, err
		}
	}
	present, err := topo.List(labfile.NamespacePrefix)
	if err != nil {
		return rep, err
	}
	var toRemove []string
	for _, n := range names {
		if !slices.Contains(present, n) {
			continue
		}
		toRemove = append(toRemove, n)
		killed, err := killInside(n)
		rep.Killed = append(rep.Killed, killed...)
		if err != nil {
			return rep, err
		}
	}
	if err := topo.Remove(toRemove); err != nil {
		return rep, err
	}
	rep.Namespaces = toRemove
	if err := os.RemoveAll(Dir(name)); err != nil {
		return rep, err
	}
	if log != nil && len(toRemove) > 0 {
		log.Debug("lab removed", "lab", name, "namespaces", len(toRemove), "killed", len(rep.Killed))
	}
	return rep, nil
}

// DownAll removes every recorded lab, then any namespace left with falab's
// prefix (a lab whose record was lost).
func DownAll(log *slog.Logger) ([]DownReport, error) {
	var reps []DownReport
	running, err := Running()
	if err != nil {
		return nil, err
	}
	for _, name := range running {
		rep, err := Down(name, log)
		reps = append(reps, rep)
		if err != nil {
			return reps, fmt.Errorf("down %s: %w", name, err)
		}
	}
	left, err := topo.List(labfile.NamespacePrefix)
	if err != nil {
		return reps, err
	}
	if len(left) > 0 {
		rep := DownReport{Lab: "(unrecorded)"}
		for _, n := range left {
			killed, err := killInside(n)
			rep.Killed = append(rep.Killed, killed...)
			if err != nil {
				return reps, err
			}
		}
		if err := topo.Remove(left); err != nil {
			return reps, err
		}
		rep.Namespaces = left
		reps = append(reps, rep)
	}
	return reps, nil
}

// unrecordedWithPrefix lists namespaces with prefix that no recorded lab
// claims, so that downing lab "a" never touches lab "a-b"'s namespaces.
func unrecordedWithPrefix(prefix string) ([]string, error) {
	all, err := topo.List(prefix)
	if err != nil {
		return nil, err
	}
	claimed := map[string]bool{}
	running, _ := Running()
	for _, r := range running {
		if st, err := ReadState(r); err == nil {
			for _, n := range st.Namespaces {
				claimed[n] = true
			}
		}
	}
	var out []string
	for _, n := range all {
		if !claimed[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// killInside kills, by PID, every process whose network namespace is ns:
// a namespace is only gone when nothing runs in it.
func killInside(ns string) ([]int, error) {
	pids, err := topo.PIDsIn(ns)
	if err != nil {
		return nil, err
	}
	var killed []int
	for _, pid := range pids {
		if pid == os.Getpid() {
			continue
		}
		st, err := StartTimeOf(pid)
		if err != nil {
			continue // already gone
		}
		p := Proc{Name: "process in " + ns, PID: pid, StartTime: st}
		if err := p.Kill(2 * time.Second); err != nil {
			return killed, err
		}
		killed = append(killed, pid)
	}
	return killed, nil
}

// testPause is a seam for the end-to-end tests: with
// FALAB_TEST_PAUSE_AFTER=STEP, up stops for good after STEP (and says so in
// a file), so that a test can kill it halfway, as a crash would.
func testPause(step, name string) {
	if os.Getenv("FALAB_TEST_PAUSE_AFTER") != step {
		return
	}
	_ = os.WriteFile(filepath.Join(Dir(name), "paused"), []byte(step), 0o600)
	select {}
}

// startUnits starts the firewall unit processes; until the unit package
// lands there is none to start.
var startUnits = func(ctx context.Context, l *labfile.Lab, st *State, opt UpOptions) error { return nil }
