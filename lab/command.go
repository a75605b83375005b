package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Command is a third-party program (sgsnemu, sipp, swanctl, curl) a
// scenario runs on a host, in the background, to check its exit status and
// its output: the proof that a feature works against software falab did
// not write.
type Command struct {
	Name string   // unique in the lab run
	Node string   // the host it runs on
	Argv []string // the program and its arguments
}

// CommandResult is what a finished (or still running) command left.
type CommandResult struct {
	Running bool
	Exit    int    // the exit status; -1 while running or when unknown
	Output  string // stdout and stderr, interleaved, at most the last 256 KiB
}

// commandOutputLimit bounds the output a result carries.
const commandOutputLimit = 256 << 10

func commandPath(labName, name, what string) string {
	return filepath.Join(Dir(labName), "cmd-"+name+"."+what)
}

// StartCommand starts c inside its node's namespace, output to the state
// dir, and records it in the lab's state so that `falab down` kills it
// (by PID) even if the caller dies. The command runs under sh, which
// writes its exit status to a file when it ends: the process is detached,
// so its status cannot be waited for.
func StartCommand(labName string, c Command) error {
	if len(c.Argv) == 0 {
		return fmt.Errorf("command %s: empty argv", c.Name)
	}
	if _, err := exec.LookPath(c.Argv[0]); err != nil {
		return fmt.Errorf("command %s on %s: %w", c.Name, c.Node, err)
	}
	st, l, err := LoadRunning(labName)
	if err != nil {
		return err
	}
	if _, ok := l.Host(c.Node); !ok {
		return fmt.Errorf("command %s: lab %s has no host %q", c.Name, labName, c.Node)
	}
	exitPath := commandPath(labName, c.Name, "exit")
	_ = os.Remove(exitPath)
	script := `f=$1; shift; "$@"; echo $? > "$f"`
	args := append([]string{"-c", script, "sh", exitPath}, c.Argv...)
	p, err := spawnIn(l.Namespace(c.Node), "command "+c.Name, commandPath(labName, c.Name, "log"), "/bin/sh", args...)
	if err != nil {
		return fmt.Errorf("command %s: %w", c.Name, err)
	}
	st.Procs = append(st.Procs, p)
	return WriteState(st)
}

// CommandStatus reads what command name has left so far.
func CommandStatus(labName, name string) (CommandResult, error) {
	res := CommandResult{Exit: -1, Running: true}
	out, err := os.ReadFile(commandPath(labName, name, "log"))
	if err != nil {
		return res, fmt.Errorf("command %s: %w", name, err)
	}
	if len(out) > commandOutputLimit {
		out = out[len(out)-commandOutputLimit:]
	}
	res.Output = string(out)
	b, err := os.ReadFile(commandPath(labName, name, "exit"))
	if errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, err
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return res, fmt.Errorf("command %s: exit file holds %q", name, b)
	}
	res.Running, res.Exit = false, code
	return res, nil
}

// WaitCommand waits until command name ends or within passes.
func WaitCommand(labName, name string, within time.Duration) (CommandResult, error) {
	deadline := time.Now().Add(within)
	for {
		res, err := CommandStatus(labName, name)
		if err != nil || !res.Running || time.Now().After(deadline) {
			return res, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
