package lab

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/labs"
)

// daemonLab is the default lab with yaml (client1's daemons) added.
func daemonLab(t *testing.T, yaml string) (*labfile.Lab, []byte) {
	t.Helper()
	base, _ := labs.Get("default")
	const anchor = "    gateway: 198.18.1.1\n  client2:"
	src := strings.Replace(string(base), anchor, "    gateway: 198.18.1.1\n"+yaml+"  client2:", 1)
	l, err := labfile.Load("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return l, []byte(src)
}

func TestExpandDaemon(t *testing.T) {
	t.Setenv("FALAB_RUN_DIR", "/run/x")
	got := expandDaemon("conf={dir}/a.conf lab={lab} node={node} charon { x = {y} }", "vpn", "branch")
	want := "conf=/run/x/vpn/branch/a.conf lab=vpn node=branch charon { x = {y} }"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestMergeEnv(t *testing.T) {
	base := []string{"PATH=/bin", "HOME=/root", "STRONGSWAN_CONF=/etc/x"}
	got := mergeEnv(base, "STRONGSWAN_CONF=/run/y", "NEW=1", "NEW=2")
	want := []string{"PATH=/bin", "HOME=/root", "STRONGSWAN_CONF=/run/y", "NEW=2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if base[2] != "STRONGSWAN_CONF=/etc/x" {
		t.Error("mergeEnv changed its input")
	}
}

// TestCheckDaemonPrograms: a missing program is reported at the daemon's
// line with the package hint; a present one is not.
func TestCheckDaemonPrograms(t *testing.T) {
	l, _ := daemonLab(t, `    daemons:
      - {name: ok, command: [sh, -c, "true"]}
      - {name: ggsn, command: [no-such-falab-program, -c, x], package: osmo-ggsn}
      - {name: abs, command: ["/nonexistent/{node}/prog"]}
`)
	err := CheckDaemonPrograms(l)
	var probs labfile.Problems
	if !errors.As(err, &probs) {
		t.Fatalf("error %T: %v", err, err)
	}
	want := "x.yaml:22: nodes.client1.daemons[1].command: daemon ggsn on client1: program no-such-falab-program not found on PATH (install the Debian package osmo-ggsn: apt-get install osmo-ggsn)\n" +
		"x.yaml:23: nodes.client1.daemons[2].command: daemon abs on client1: program /nonexistent/client1/prog is missing or not executable"
	if err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

// withoutNamespaces makes daemons start in this process's namespace, so
// that the runtime can be tested without root.
func withoutNamespaces(t *testing.T) {
	t.Setenv("FALAB_RUN_DIR", t.TempDir())
	old := inNamespace
	inNamespace = func(ns string, fn func() error) error { return fn() }
	t.Cleanup(func() { inNamespace = old })
}

// TestStartDaemonRecordsAndWaits: files are written (0600, expanded), the
// daemon runs with its env in {dir}, is in state.json before it is ready,
// becomes ready on its log line, and Down kills it by its PID.
func TestStartDaemonRecordsAndWaits(t *testing.T) {
	withoutNamespaces(t)
	l, _ := daemonLab(t, `    daemons:
      - name: svc
        command: [sh, -c, 'cat "$CONF" > seen; echo "svc {node} started"; exec sleep 1000']
        env: {CONF: "{dir}/conf/svc.conf"}
        files: {conf/svc.conf: "lab={lab} dir={dir} { braces }\n"}
        ready: {log: "^svc client1 started$"}
`)
	st := &State{Name: l.Name, Phase: PhaseBuilding}
	if err := WriteState(st); err != nil {
		t.Fatal(err)
	}
	h, _ := l.Host("client1")
	p, err := startDaemon(context.Background(), l, "client1", h.Daemons[0], st)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill(time.Second)
	dir := NodeDir(l.Name, "client1")
	want := "lab=default dir=" + dir + " { braces }\n"
	conf := filepath.Join(dir, "conf", "svc.conf")
	if b, err := os.ReadFile(conf); err != nil || string(b) != want {
		t.Errorf("file = %q, %v; want %q", b, err, want)
	}
	if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	// The daemon ran in {dir} and read the file through its env.
	if b, err := os.ReadFile(filepath.Join(dir, "seen")); err != nil || string(b) != want {
		t.Errorf("daemon saw %q, %v; want %q", b, err, want)
	}
	rec, err := ReadState(l.Name)
	if err != nil {
		t.Fatal(err)
	}
	wantRec := []DaemonProc{{Node: "client1", Name: "svc", Proc: p}}
	if diff := cmp.Diff(wantRec, rec.Daemons); diff != "" {
		t.Errorf("recorded daemons (-want +got):\n%s", diff)
	}
	if !p.Alive() || p.StartTime == 0 {
		t.Fatalf("daemon %+v not alive or without start time", p)
	}
	rep, err := Down(l.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(rep.Killed, []int{p.PID}) || p.Alive() {
		t.Errorf("down killed %v (daemon pid %d, alive %v)", rep.Killed, p.PID, p.Alive())
	}
	if _, err := os.Stat(Dir(l.Name)); !os.IsNotExist(err) {
		t.Errorf("state dir left behind: %v", err)
	}
}

// TestDaemonReadyFailures: a daemon that exits before it is ready, or
// never prints its line, fails up with its log's tail; a wait passes.
func TestDaemonReadyFailures(t *testing.T) {
	withoutNamespaces(t)
	l, _ := daemonLab(t, `    daemons:
      - {name: dies, command: [sh, -c, "echo cannot bind 2123; exit 1"], ready: {log: listening}}
      - {name: mute, command: [sleep, "1000"], ready: {log: listening, timeout: 30ms}}
      - {name: waits, command: [sleep, "1000"], ready: {wait: 10ms}}
      - {name: nowait, command: [sleep, "1000"]}
`)
	h, _ := l.Host("client1")
	tests := []struct{ daemon, wantErr string }{
		{"dies", "exited during start-up:\n  cannot bind 2123"},
		{"mute", `no output line matched "listening" within 30ms:`},
		{"waits", ""},
		{"nowait", ""},
	}
	st := &State{Name: l.Name, Phase: PhaseBuilding}
	for i, tt := range tests {
		p, err := startDaemon(context.Background(), l, "client1", h.Daemons[i], st)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.daemon, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error %v, want it to contain %q", tt.daemon, err, tt.wantErr)
		}
		if len(st.Daemons) != i+1 || st.Daemons[i].Proc.PID != p.PID {
			t.Errorf("%s: not recorded (even a failed daemon must be, for down)", tt.daemon)
		}
		_ = p.Kill(time.Second)
		reap(p.PID)
	}
}

// TestDaemonStatus: a live daemon is listed with its PID, a dead one
// (here a zombie, which kill(pid, 0) would call alive) as dead, with a
// problem naming its log.
func TestDaemonStatus(t *testing.T) {
	t.Setenv("FALAB_RUN_DIR", "/run/x")
	l, _ := daemonLab(t, `    daemons:
      - {name: live, command: [sleep, "1"]}
      - {name: dead, command: [sleep, "1"]}
      - {name: never, command: [sleep, "1"]}
`)
	zombie := exec.Command("true")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	defer zombie.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if s, _, err := procStat(zombie.Process.Pid); err == nil && s == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("child never became a zombie")
		}
	}
	self, _ := StartTimeOf(os.Getpid())
	st := &State{Name: l.Name, Phase: PhaseUp, Daemons: []DaemonProc{
		{Node: "client1", Name: "live", Proc: Proc{PID: os.Getpid(), StartTime: self}},
		{Node: "client1", Name: "dead", Proc: Proc{PID: zombie.Process.Pid}},
	}}
	got, problems := daemonStatus(l, st, "client1", nil)
	want := []DaemonStatus{{Name: "live", PID: os.Getpid(), Alive: true}, {Name: "dead", PID: zombie.Process.Pid}, {Name: "never"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(problems) != 2 || !strings.Contains(problems[0], "daemon dead on client1") || !strings.Contains(problems[0], "/run/x/default/client1-dead.log") {
		t.Errorf("problems = %q", problems)
	}
	if s := (NodeStatus{Daemons: got}).DaemonSummary(); !strings.HasSuffix(s, " DEAD, never not started") {
		t.Errorf("summary = %q", s)
	}
	if d, _ := daemonStatus(l, st, "fw-a", nil); d != nil {
		t.Errorf("a unit has daemons %v", d)
	}
}

// TestThrowawayThreadIsNeverMain: work that changes a thread's mount
// namespace never runs on the main thread, whose namespaces /proc/self
// shows to the whole process. It calls from the main thread, unlocked, so
// that Go would run the new goroutine there (the caller's P runs it next
// once the caller blocks).
func TestThrowawayThreadIsNeverMain(t *testing.T) {
	for range 20 {
		var callerTID, tid int
		var err error
		done := make(chan struct{})
		onMain <- func() {
			defer close(done)
			runtime.UnlockOSThread()
			defer runtime.LockOSThread()
			callerTID = unix.Gettid()
			err = onThrowawayThread(func() error { tid = unix.Gettid(); return nil })
		}
		<-done
		if err != nil {
			t.Fatal(err)
		}
		if callerTID != unix.Getpid() {
			t.Skip("the caller is not on the main thread; the test proves nothing")
		}
		if tid == unix.Getpid() {
			t.Fatal("ran on the main thread")
		}
	}
}
