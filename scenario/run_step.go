package scenario

// The run step: a third-party client (sgsnemu, sipp, swanctl, curl) run on
// a host in the background, and the expectations on its exit status and
// output, and on the lines a daemon wrote to its log. These are how a
// scenario takes its verdict from software falab did not write.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/labfile"
)

// RunSpec starts a program on a host in the background; a later expect
// (run: NAME) checks how it ended.
type RunSpec struct {
	Name string   `yaml:"name"`
	Node string   `yaml:"node"`
	Argv []string `yaml:"argv"`
	// Wait, if set, waits up to that long for the program to end before
	// the scenario goes on (it fails if the program is still running).
	Wait *labfile.Duration `yaml:"wait"`
}

// RunExpect checks a run step's program.
type RunExpect struct {
	// Exit is the exit status the program must have ended with (with
	// within: it is waited for).
	Exit *int `yaml:"exit"`
	// Running: true, the program must still run; false, it must have
	// ended (any status).
	Running *bool `yaml:"running"`
	// Output is a regular expression its output must match; NotOutput
	// one it must not.
	Output    string `yaml:"output"`
	NotOutput string `yaml:"not_output"`
}

// LogExpect counts the lines of a file in the lab's state dir (a daemon's
// log, e.g. ggsn-osmo-ggsn.log) that match Pattern.
type LogExpect struct {
	File    string `yaml:"file"`
	Pattern string `yaml:"pattern"`
	Min     *int   `yaml:"min"`
	Max     *int   `yaml:"max"`
}

// run starts a run step's program.
func (r *runner) run(rs *RunSpec) (desc, detail string, err error) {
	desc = fmt.Sprintf("run %s on %s: %s", rs.Name, rs.Node, strings.Join(rs.Argv, " "))
	if err := lab.StartCommand(r.name, lab.Command{Name: rs.Name, Node: rs.Node, Argv: rs.Argv}); err != nil {
		return desc, "", err
	}
	if rs.Wait == nil {
		return desc, "started", nil
	}
	res, err := lab.WaitCommand(r.name, rs.Name, rs.Wait.D(0))
	if err != nil {
		return desc, "", err
	}
	if res.Running {
		return desc, "", fmt.Errorf("%s still running after %v: %w", rs.Name, rs.Wait.D(0), errScenarioFailed)
	}
	return desc, fmt.Sprintf("exit %d", res.Exit), nil
}

// checkRuns checks the run expectations; a program that has not ended
// fails an Exit check (expect's within retries until it has).
func (r *runner) checkRuns(e *ExpectSpec) []string {
	var problems []string
	for _, name := range keys(e.Run) {
		x := e.Run[name]
		res, err := lab.CommandStatus(r.name, name)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		problems = append(problems, runProblems(name, x, res)...)
	}
	for _, le := range e.Log {
		if p := r.checkLog(le); p != "" {
			problems = append(problems, p)
		}
	}
	return problems
}

func runProblems(name string, x *RunExpect, res lab.CommandResult) []string {
	var problems []string
	if x.Running != nil && *x.Running != res.Running {
		problems = append(problems, fmt.Sprintf("run %s: running is %v, expected %v", name, res.Running, *x.Running))
	}
	if x.Exit != nil {
		switch {
		case res.Running:
			problems = append(problems, fmt.Sprintf("run %s: still running, expected exit %d", name, *x.Exit))
		case res.Exit != *x.Exit:
			problems = append(problems, fmt.Sprintf("run %s: exit %d, expected %d; output ends:\n%s", name, res.Exit, *x.Exit, tail(res.Output, 15)))
		}
	}
	if x.Output != "" && !regexp.MustCompile(x.Output).MatchString(res.Output) {
		problems = append(problems, fmt.Sprintf("run %s: output does not match %q; it ends:\n%s", name, x.Output, tail(res.Output, 15)))
	}
	if x.NotOutput != "" {
		if m := regexp.MustCompile(x.NotOutput).FindString(res.Output); m != "" {
			problems = append(problems, fmt.Sprintf("run %s: output has %q (matches %q)", name, m, x.NotOutput))
		}
	}
	return problems
}

func (r *runner) checkLog(le *LogExpect) string {
	b, err := os.ReadFile(filepath.Join(lab.Dir(r.name), le.File))
	if err != nil {
		return fmt.Sprintf("log %s: %v", le.File, err)
	}
	re := regexp.MustCompile(le.Pattern)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if re.MatchString(line) {
			n++
		}
	}
	if le.Min != nil && n < *le.Min {
		return fmt.Sprintf("log %s: %d lines match %q, expected at least %d", le.File, n, le.Pattern, *le.Min)
	}
	if le.Max != nil && n > *le.Max {
		return fmt.Sprintf("log %s: %d lines match %q, expected at most %d", le.File, n, le.Pattern, *le.Max)
	}
	return ""
}

// tail returns the last n lines of s, indented.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// validateRun checks a run step.
func (v *validator) run(sc *Scenario, f string, rs *RunSpec, runs map[string]bool) {
	if rs.Name == "" {
		v.errf(f+".name", "a run step needs a name (expect run: NAME checks it)")
	} else if runs[rs.Name] {
		v.errf(f+".name", "run %q is started twice", rs.Name)
	}
	runs[rs.Name] = true
	v.hostRef(sc, f+".node", rs.Node)
	if len(rs.Argv) == 0 || rs.Argv[0] == "" {
		v.errf(f+".argv", "needs the program and its arguments")
	}
}

// validateRunExpect checks the regular expressions and names of run and
// log expectations.
func (v *validator) runExpect(f string, e *ExpectSpec, runs map[string]bool) {
	for _, name := range keys(e.Run) {
		x := e.Run[name]
		ff := f + ".run." + name
		if !runs[name] {
			v.errf(ff, "unknown run %q (started so far: %s)", name, strings.Join(keys(runs), ", "))
		}
		if x == nil {
			v.errf(ff, "empty run expectation")
			continue
		}
		for field, re := range map[string]string{"output": x.Output, "not_output": x.NotOutput} {
			if _, err := regexp.Compile(re); err != nil {
				v.errf(ff+"."+field, "bad regular expression: %v", err)
			}
		}
	}
	for i, le := range e.Log {
		ff := fmt.Sprintf("%s.log[%d]", f, i)
		if le == nil || le.File == "" || filepath.IsAbs(le.File) || strings.Contains(le.File, "..") {
			v.errf(ff+".file", "needs a file name in the lab's state dir (no / prefix, no ..)")
			continue
		}
		if _, err := regexp.Compile(le.Pattern); err != nil || le.Pattern == "" {
			v.errf(ff+".pattern", "needs a regular expression (%v)", err)
		}
		if le.Min == nil && le.Max == nil {
			v.errf(ff, "needs min or max")
		}
	}
}
