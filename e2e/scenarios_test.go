package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/falab/falab/labs"
)

// TestBuiltinScenarios plays every built-in scenario headless: each builds
// the lab, runs traffic, injects its fault, checks its expectations and
// tears the lab down.
func TestBuiltinScenarios(t *testing.T) {
	needRoot(t)
	for _, name := range labs.Scenarios() {
		if name == "chaos" {
			// 100 faults take minutes; chaos-short plays the same
			// step with 20. `falab run chaos` is the long form.
			continue
		}
		t.Run(name, func(t *testing.T) {
			if strings.HasPrefix(name, "vpn") {
				if _, err := os.Stat("/usr/lib/ipsec/charon"); err != nil {
					t.Skip("strongSwan missing: apt-get install strongswan-charon strongswan-swanctl libstrongswan-standard-plugins libcharon-extra-plugins (.ci/run does)")
				}
			}
			needScenarioTools(t, name)
			runDir := t.TempDir()
			t.Cleanup(func() { downRecorded(t, runDir) })
			r := falab(t, runDir, "run", name, "--json")
			var rep struct {
				Pass     bool     `json:"pass"`
				Failures []string `json:"failures"`
				Error    string   `json:"error"`
				Steps    []struct {
					Step   string `json:"step"`
					OK     bool   `json:"ok"`
					Detail string `json:"detail"`
				} `json:"steps"`
				Timeline []struct {
					Time string `json:"time"`
					Unit string `json:"unit"`
					Kind string `json:"kind"`
					Msg  string `json:"msg"`
				} `json:"timeline"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("exit %d, report not JSON: %v\nstdout:\n%s\nstderr:\n%s", r.code, err, r.stdout, r.stderr)
			}
			if r.code != 0 || !rep.Pass {
				var steps []string
				for _, s := range rep.Steps {
					steps = append(steps, s.Step+" ok="+map[bool]string{true: "yes", false: "NO"}[s.OK]+" "+s.Detail)
				}
				var timeline []string
				for _, e := range rep.Timeline {
					timeline = append(timeline, e.Time+" "+e.Unit+" "+e.Kind+" "+e.Msg)
				}
				t.Fatalf("scenario %s: exit %d, failures %q, error %q\nsteps:\n  %s\ntimeline:\n  %s", name, r.code, rep.Failures, rep.Error, strings.Join(steps, "\n  "), strings.Join(timeline, "\n  "))
			}
			if left := namespacesWithPrefix(t, "falab-default-"); len(left) > 0 {
				t.Errorf("scenario left namespaces: %v", left)
			}
		})
	}
}

// TestBrokenExpectationFails: a scenario whose expectation cannot hold
// exits 1 and says which expectation failed and why.
func TestBrokenExpectationFails(t *testing.T) {
	needRoot(t)
	runDir := t.TempDir()
	t.Cleanup(func() { downRecorded(t, runDir) })
	file := filepath.Join(t.TempDir(), "broken.yaml")
	src := `name: broken
lab: default
steps:
  - wait_for: {active: fw-a, standby_ready: fw-b, within: 10s}
  - fault: {kill: fw-a}
  # Wrong on purpose: the killed unit cannot stay active.
  - expect: {active: fw-a, within: 300ms}
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := falab(t, runDir, "run", file)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	want := "failed: expect active fw-a, within 300ms: fw-a is Down, not Active"
	if !strings.Contains(r.stdout, want) {
		t.Errorf("output lacks %q:\n%s", want, r.stdout)
	}
	if left := namespacesWithPrefix(t, "falab-default-"); len(left) > 0 {
		t.Errorf("a failed scenario left namespaces: %v", left)
	}
}

// TestScenarioMistakeRejectedBeforeBuilding: a scenario with a mistake is
// refused with file, line and field, exit 2, and nothing is built.
func TestScenarioMistakeRejectedBeforeBuilding(t *testing.T) {
	needRoot(t)
	runDir := t.TempDir()
	file := filepath.Join(t.TempDir(), "typo.yaml")
	src := "name: typo\nlab: default\nsteps:\n  - fault: {kill: fw-c}\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := falab(t, runDir, "run", file)
	want := file + `:4: steps[0].fault.kill: unknown unit "fw-c" (expected fw-a or fw-b)`
	if r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Errorf("exit %d, stderr %q, want exit 2 and %q", r.code, r.stderr, want)
	}
	if left := namespacesWithPrefix(t, "falab-default-"); len(left) > 0 {
		t.Errorf("a rejected scenario built namespaces: %v", left)
	}
}

// TestInterruptedRunLeavesNothing: Ctrl-C in the middle of a scenario
// tears the lab down: no namespace, no process.
func TestInterruptedRunLeavesNothing(t *testing.T) {
	needRoot(t)
	runDir := t.TempDir()
	t.Cleanup(func() { downRecorded(t, runDir) })
	cmd := exec.Command(falabBin, "run", "crash")
	cmd.Env = append(os.Environ(), "FALAB_RUN_DIR="+runDir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until traffic runs, then interrupt.
	deadline := time.Now().Add(20 * time.Second)
	var pids []int
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(runDir, "default", "state.json")); err == nil && strings.Contains(string(b), "traffic streams client") {
			var st struct {
				Units map[string]struct{ PID int } `json:"units"`
				Procs []struct{ PID int }          `json:"procs"`
			}
			if json.Unmarshal(b, &st) == nil {
				for _, u := range st.Units {
					pids = append(pids, u.PID)
				}
				for _, p := range st.Procs {
					pids = append(pids, p.PID)
				}
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(pids) == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the scenario never started its traffic")
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("interrupted run: %v, want exit status 2", err)
	}
	if left := namespacesWithPrefix(t, "falab-default-"); len(left) > 0 {
		t.Errorf("an interrupted run left namespaces: %v", left)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d of the interrupted run is still alive", pid)
		}
	}
}

// alive judges a process from /proc/PID/stat: a zombie is dead.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

func itoa(n int) string { return strconv.Itoa(n) }

// scenarioTools are the third-party programs a built-in scenario runs.
var scenarioTools = map[string][]string{
	"sip-crash":              {"sipp"},
	"sip-crash-unreplicated": {"sipp"},
	"softphone":              {"sipp"}, // lab voice's UAS daemon
	"uauth":                  {"curl", "ping", "/usr/bin/python3"},
}

// needScenarioTools skips a scenario whose programs are missing, except in
// CI, whose .ci/run installs them (sip-tester for sipp).
func needScenarioTools(t *testing.T, name string) {
	for _, tool := range scenarioTools[name] {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("scenario %s needs %s (.ci/run installs it)", name, tool)
			}
			t.Skipf("scenario %s needs %s (.ci/run installs it)", name, tool)
		}
	}
}
