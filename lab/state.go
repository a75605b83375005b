package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultRunDir holds one directory per running lab. FALAB_RUN_DIR
// overrides it (tests use their own).
const DefaultRunDir = "/run/falab"

// RunDir is where running labs are recorded.
func RunDir() string {
	if d := os.Getenv("FALAB_RUN_DIR"); d != "" {
		return d
	}
	return DefaultRunDir
}

// Phases of a lab's life, recorded in its state so that `down` knows a
// half-built lab from a running one.
const (
	PhaseBuilding = "building"
	PhaseUp       = "up"
)

// State is what a lab's state directory records: enough for any falab
// command, from any directory, to find the lab and to remove everything it
// made, even after a crash.
type State struct {
	Name       string          `json:"name"`
	Source     string          `json:"source"` // the lab file as given, or builtin:NAME
	Phase      string          `json:"phase"`
	CreatedAt  time.Time       `json:"created_at"`
	Namespaces []string        `json:"namespaces"` // recorded before any is made
	Units      map[string]Proc `json:"units,omitempty"`
	Procs      []Proc          `json:"procs,omitempty"` // other processes falab started (traffic, servers)
	Daemons    []DaemonProc    `json:"daemons,omitempty"`
	// Failover settings a scenario put over the lab file's, so that every
	// command sees the lab as it runs, not as the file says.
	MACMode         string `json:"mac_mode,omitempty"`
	HTTPReplication *bool  `json:"http_replication,omitempty"`
	// NoReplicate is the scenario's failover.replicate override (the engine
	// tables not replicated); nil: the lab file's.
	NoReplicate []string `json:"no_replicate,omitempty"`
}

// Proc is a process falab started. StartTime (clock ticks after boot, from
// /proc/PID/stat) tells it apart from a later process that reuses the PID.
type Proc struct {
	Name      string `json:"name"`
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// DaemonProc is a host daemon falab started (labfile.Daemon), recorded as
// soon as it runs so that `down` kills it by PID even after a crash.
type DaemonProc struct {
	Node string `json:"node"`
	Name string `json:"name"`
	// PrivateRun: the daemon holds the node's private /run (its mount
	// namespace), which `falab exec` enters.
	PrivateRun bool `json:"private_run,omitempty"`
	Proc       Proc `json:"proc"`
}

// Dir is the state directory of the lab called name.
func Dir(name string) string { return filepath.Join(RunDir(), name) }

func statePath(name string) string { return filepath.Join(Dir(name), "state.json") }

// ErrNotRunning says no lab of that name is recorded.
var ErrNotRunning = errors.New("lab is not running")

// ReadState reads a lab's recorded state.
func ReadState(name string) (*State, error) {
	b, err := os.ReadFile(statePath(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, ErrNotRunning)
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: corrupt state (%v); falab down %s removes it", statePath(name), err, name)
	}
	return &s, nil
}

// WriteState records s atomically (write, fsync, rename), so that a crash
// leaves the old record or the new one, never half of one.
func WriteState(s *State) error {
	dir := Dir(s.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(s.Name) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(s.Name))
}

// Running lists the labs recorded in the run directory, sorted.
func Running() ([]string, error) {
	ents, err := os.ReadDir(RunDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// procStat reads a process's state letter and start time from
// /proc/PID/stat. A zombie ('Z') or a missing process is dead: PID 1 on
// some machines does not reap orphans promptly, so kill(pid, 0) would lie.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name is in parentheses and may hold spaces: skip past
	// the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(s[i+2:])
	// fields[0] is state (field 3); starttime is field 22 => fields[19].
	if len(fields) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	return fields[0][0], start, err
}

// StartTimeOf returns pid's start time, for recording a new process.
func StartTimeOf(pid int) (uint64, error) {
	_, st, err := procStat(pid)
	return st, err
}

// Alive reports whether the recorded process still runs: same PID, same
// start time, and not a zombie.
func (p Proc) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	state, start, err := procStat(p.PID)
	if err != nil || state == 'Z' || state == 'X' {
		return false
	}
	return p.StartTime == 0 || start == p.StartTime
}

// Stopped reports whether the recorded process is alive but stopped
// (SIGSTOP: state T or t), e.g. a unit frozen by `falab fault freeze`.
func (p Proc) Stopped() bool {
	if !p.Alive() {
		return false
	}
	state, _, err := procStat(p.PID)
	return err == nil && (state == 'T' || state == 't')
}

// Signal sends sig to the process if it is still the one recorded.
func (p Proc) Signal(sig syscall.Signal) error {
	if !p.Alive() {
		return fmt.Errorf("%s (pid %d) is not running", p.Name, p.PID)
	}
	return syscall.Kill(p.PID, sig)
}

// Kill ends the process with SIGKILL and waits (up to timeout) until it is
// dead or a zombie; by PID only, never by name.
func (p Proc) Kill(timeout time.Duration) error {
	if !p.Alive() {
		return nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s (pid %d): %w", p.Name, p.PID, err)
	}
	deadline := time.Now().Add(timeout)
	for p.Alive() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) still alive %v after SIGKILL", p.Name, p.PID, timeout)
		}
		reap(p.PID)
		time.Sleep(2 * time.Millisecond)
	}
	reap(p.PID)
	return nil
}

// reap collects pid if it is our child, so that it does not linger as a
// zombie when the lab was started by this very process.
func reap(pid int) {
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
}
