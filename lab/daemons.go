package lab

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/topo"
)

// NodeDir is a node's directory in the lab's state directory: the {dir}
// of its daemons, where their files are written.
func NodeDir(labName, node string) string { return filepath.Join(Dir(labName), node) }

// DaemonLog is where a daemon's output goes.
func DaemonLog(labName, node, daemon string) string {
	return filepath.Join(Dir(labName), node+"-"+daemon+".log")
}

// expandDaemon replaces the placeholders of a daemon's command, env values
// and files: {dir}, {lab} and {node}. Other braces are left alone.
func expandDaemon(s, labName, node string) string {
	return strings.NewReplacer("{dir}", NodeDir(labName, node), "{lab}", labName, "{node}", node).Replace(s)
}

// CheckDaemonPrograms checks that every daemon's program can be run, and
// reports each missing one at its line in the lab file, with the package
// that ships it when the lab file names one. Up calls it before touching
// anything.
func CheckDaemonPrograms(l *labfile.Lab) error {
	var probs labfile.Problems
	for _, h := range l.Hosts {
		for _, d := range h.Daemons {
			prog := expandDaemon(d.Command[0], l.Name, h.Name)
			if _, err := exec.LookPath(prog); err != nil {
				msg := fmt.Sprintf("daemon %s on %s: program %s not found on PATH", d.Name, h.Name, prog)
				if strings.Contains(prog, "/") {
					msg = fmt.Sprintf("daemon %s on %s: program %s is missing or not executable", d.Name, h.Name, prog)
				}
				if d.Package != "" {
					msg += fmt.Sprintf(" (install the Debian package %s: apt-get install %s)", d.Package, d.Package)
				}
				probs = append(probs, labfile.Problem{File: l.File, Line: d.Line, Field: d.Field + ".command", Msg: msg})
			}
		}
	}
	if len(probs) > 0 {
		return probs
	}
	return nil
}

// inNamespace runs fn on a thread in namespace ns; a seam for tests that
// run without root and without namespaces.
var inNamespace = topo.Do

// startDaemons starts every host's daemons, in file order, each once the
// one before is ready, and records each in st as soon as it runs.
func startDaemons(ctx context.Context, l *labfile.Lab, st *State, log *slog.Logger) error {
	for _, h := range l.Hosts {
		for _, d := range h.Daemons {
			p, err := startDaemon(ctx, l, h.Name, d, st)
			if err != nil {
				return fmt.Errorf("daemon %s on %s: %w", d.Name, h.Name, err)
			}
			log.Debug("daemon started", "lab", l.Name, "node", h.Name, "daemon", d.Name, "pid", p.PID)
		}
	}
	return nil
}

// startDaemon writes d's files, starts it in node's namespace (and, with
// PrivateRun, in the node's private /run), records it, and waits until it
// is ready.
func startDaemon(ctx context.Context, l *labfile.Lab, node string, d labfile.Daemon, st *State) (Proc, error) {
	dir := NodeDir(l.Name, node)
	if err := writeDaemonFiles(dir, l.Name, node, d); err != nil {
		return Proc{}, err
	}
	argv := make([]string, len(d.Command))
	for i, a := range d.Command {
		argv[i] = expandDaemon(a, l.Name, node)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = mergeEnv(os.Environ(), daemonEnv(l.Name, node, d)...)
	cmd.Dir = dir
	ns := l.Namespace(node)
	start := func() error { return inNamespace(ns, cmd.Start) }
	if d.PrivateRun {
		holder, ok := privateRunHolder(st, node)
		start = func() error { return startInPrivateRun(ns, RunDir(), holder, ok, cmd.Start) }
	}
	logPath := DaemonLog(l.Name, node, d.Name)
	p, err := startDetached(cmd, "daemon "+node+"/"+d.Name, logPath, start)
	if err != nil {
		return Proc{}, err
	}
	st.Daemons = append(st.Daemons, DaemonProc{Node: node, Name: d.Name, PrivateRun: d.PrivateRun, Proc: p})
	if err := WriteState(st); err != nil {
		return p, err
	}
	return p, waitDaemonReady(ctx, p, d, logPath)
}

// daemonEnv is what a daemon adds to the environment, expanded: the lab
// and node, then its env.
func daemonEnv(labName, node string, d labfile.Daemon) []string {
	env := []string{"FALAB_LAB=" + labName, "FALAB_NODE=" + node}
	for _, kv := range d.Env {
		env = append(env, expandDaemon(kv, labName, node))
	}
	return env
}

// mergeEnv returns base with extra added, a later KEY= replacing an
// earlier one: execve keeps duplicates, and getenv finds the first.
func mergeEnv(base []string, extra ...string) []string {
	out := make([]string, 0, len(base)+len(extra))
	index := map[string]int{}
	for _, kv := range append(base[:len(base):len(base)], extra...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// writeDaemonFiles writes d's files into dir (mode 0600), placeholders
// expanded. The names were checked to stay inside dir.
func writeDaemonFiles(dir, labName, node string, d labfile.Daemon) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range d.Files {
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(expandDaemon(f.Content, labName, node)), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// privateRunHolder finds the running daemon that holds node's private
// /run, if one does.
func privateRunHolder(st *State, node string) (Proc, bool) {
	for _, d := range st.Daemons {
		if d.Node == node && d.PrivateRun && d.Proc.Alive() {
			return d.Proc, true
		}
	}
	return Proc{}, false
}

// startInPrivateRun calls start (which forks the daemon) on a thread in
// namespace ns and in the node's private /run: the mount namespace of
// holder when there is one (join), or a new one with a tmpfs on /run and
// keep (falab's run directory) bound back, so that {dir} and falab's own
// commands work inside.
//
// It is done in Go on a throwaway thread rather than by an `unshare ... sh
// -c 'mount ...'` wrapper so that the recorded PID is the daemon itself
// from its first instruction and no tool beyond the daemon is needed.
func startInPrivateRun(ns, keep string, holder Proc, join bool, start func() error) error {
	return onThrowawayThread(func() error {
		return topo.Do(ns, func() error {
			if join {
				if err := joinMountNamespace(holder); err != nil {
					return err
				}
			} else if err := makePrivateRun(keep); err != nil {
				return err
			}
			return start()
		})
	})
}

// onThrowawayThread runs fn on a locked OS thread that ends with it: for
// work that leaves the thread in another mount namespace than the process.
// That thread is never the main one: Go parks the main thread instead of
// ending it, and /proc/self (which other code reads, e.g. for mountinfo)
// shows the main thread's namespaces.
func onThrowawayThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// While this goroutine holds the main thread, a new one
			// runs on another.
			errc <- onThrowawayThread(fn)
			runtime.UnlockOSThread()
			return
		}
		errc <- fn() // never unlocked: the thread ends with this goroutine
	}()
	return <-errc
}

// makePrivateRun gives this thread a new mount namespace, private all the
// way down (systemd makes / shared, and a shared mount would carry the
// tmpfs back to the host), with an empty tmpfs on /run and dir bound back
// at its own path so that what falab keeps there stays visible.
func makePrivateRun(dir string) error {
	if filepath.Clean(dir) == "/run" {
		return fmt.Errorf("private /run: falab's run directory is /run itself (FALAB_RUN_DIR); expected a directory under it")
	}
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("private /run: unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("private /run: make mounts private: %w", err)
	}
	// Hold dir, as this namespace sees it, before the tmpfs hides it: a
	// bind mount's source must be in the caller's mount namespace.
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("private /run: open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("private /run: mount tmpfs: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("private /run: %w", err)
	}
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", fd), dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("private /run: bind %s back: %w", dir, err)
	}
	return nil
}

// joinMountNamespace moves this (locked) thread into holder's mount
// namespace. The namespace file is opened before holder is checked, so a
// PID reused after the check cannot slip in another namespace.
func joinMountNamespace(holder Proc) error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", holder.PID))
	if err != nil {
		return fmt.Errorf("%s (pid %d) is not running: %w", holder.Name, holder.PID, err)
	}
	defer f.Close()
	if !holder.Alive() {
		return fmt.Errorf("%s (pid %d) is not running", holder.Name, holder.PID)
	}
	// setns into a mount namespace refuses a thread that shares its
	// filesystem context (root, cwd) with others, as Go's threads do.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare filesystem context: %w", err)
	}
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("enter the mount namespace of %s (pid %d): %w", holder.Name, holder.PID, err)
	}
	return nil
}

// daemonPoll is how often up looks at a starting daemon.
const daemonPoll = 20 * time.Millisecond

// waitDaemonReady waits until d's log matches its ready pattern, or its
// ready delay has passed, and fails with the log's tail if the daemon
// exits first or the pattern does not appear in time.
func waitDaemonReady(ctx context.Context, p Proc, d labfile.Daemon, logPath string) error {
	var re *regexp.Regexp
	if d.ReadyLog != "" {
		var err error
		// (?m): ^ and $ match at each line of the output.
		if re, err = regexp.Compile("(?m)" + d.ReadyLog); err != nil {
			return err
		}
	}
	wait := d.ReadyWait
	if re != nil {
		wait = d.ReadyTimeout
	}
	deadline := time.Now().Add(wait)
	for {
		if re != nil {
			if b, err := os.ReadFile(logPath); err == nil && re.Match(b) {
				return nil
			}
		}
		if !p.Alive() {
			return fmt.Errorf("exited during start-up:\n%s", logTail(logPath, 10))
		}
		if time.Now().After(deadline) {
			if re == nil {
				return nil
			}
			return fmt.Errorf("no output line matched %q within %v:\n%s", d.ReadyLog, d.ReadyTimeout, logTail(logPath, 10))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(daemonPoll, time.Until(deadline)+time.Millisecond)):
		}
	}
}
