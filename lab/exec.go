package lab

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/falab/falab/topo"
)

// ExecCommand replaces this process with argv running in node of the lab
// (the only running lab when labName is empty), as `falab exec` and `falab
// shell` do. The command gets FALAB_LAB, FALAB_NODE and the env of the
// node's daemons, and, when the node has a private /run (a private_run
// daemon), runs in that mount namespace too, so that a control tool
// (swanctl) finds its daemon's socket. It returns only on failure.
func ExecCommand(labName, node string, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("no command to run")
	}
	name, err := Pick(labName)
	if err != nil {
		return err
	}
	ns, err := NodeNamespace(name, node)
	if err != nil {
		return err
	}
	st, l, err := LoadRunning(name)
	if err != nil {
		return err
	}
	env := []string{"FALAB_LAB=" + name, "FALAB_NODE=" + node}
	if h, ok := l.Host(node); ok {
		for _, d := range h.Daemons {
			env = append(env, daemonEnv(name, node, d)[2:]...)
		}
	}
	holder, ok := privateRunHolder(st, node)
	if !ok {
		for _, d := range st.Daemons {
			if d.Node == node && d.PrivateRun {
				fmt.Fprintf(os.Stderr, "falab: daemon %s on %s is not running; %s runs without its private /run\n", d.Name, node, argv[0])
				break
			}
		}
		return ExecIn(ns, argv, env...)
	}
	return execInPrivateRun(ns, holder, argv, mergeEnv(os.Environ(), env...))
}

// execInPrivateRun replaces this process with argv in namespace ns and in
// holder's mount namespace. The current directory is kept where it exists
// there (entering a mount namespace moves a thread to its root).
func execInPrivateRun(ns string, holder Proc, argv, env []string) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	cwd, _ := os.Getwd()
	return onThrowawayThread(func() error {
		return topo.Do(ns, func() error {
			if err := joinMountNamespace(holder); err != nil {
				return err
			}
			if cwd != "" {
				_ = unix.Chdir(cwd)
			}
			return syscall.Exec(path, argv, env)
		})
	})
}
