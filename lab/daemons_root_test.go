package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/topo"
)

// dmnLab is a small lab whose host h1 runs three daemons: two share a
// private /run (the first writes a marker there, the second reads it), the
// third runs plainly. Its name is this test's own.
const dmnLab = `name: dmntest
nodes:
  fw-a: {kind: unit, role: primary}
  fw-b: {kind: unit, role: secondary}
  sw-in: {kind: switch}
  sw-out: {kind: switch}
  h1:
    kind: host
    interfaces: {eth0: {address: 198.18.1.11/24}}
    gateway: 198.18.1.1
    daemons:
      - name: holder
        command: [sh, -c, 'echo secret > /run/dmntest-marker && echo up && exec sleep 1000']
        private_run: true
        env: {DMN_CONF: "{dir}/holder.conf"}
        files: {holder.conf: "node={node}\n"}
        ready: {log: "^up$"}
      - name: joiner
        command: [sh, -c, 'cat /run/dmntest-marker {dir}/holder.conf > {dir}/joiner-saw && echo ok && exec sleep 1000']
        private_run: true
        ready: {log: "^ok$"}
      - name: plain
        command: [sleep, "1000"]
links:
  - endpoints: [h1:eth0, sw-in]
  - endpoints: [fw-a:inside, sw-in]
  - endpoints: [fw-b:inside, sw-in]
  - endpoints: [fw-a:outside, sw-out]
  - endpoints: [fw-b:outside, sw-out]
  - endpoints: [fw-a:failover, fw-b:failover]
firewall:
  interfaces:
    - {name: inside, security_level: 100, address: 198.18.1.1/24, standby_address: 198.18.1.2}
    - {name: outside, security_level: 0, address: 198.18.2.1/24, standby_address: 198.18.2.2}
failover:
  link: {primary_address: 198.19.255.1/30, secondary_address: 198.19.255.2/30}
`

// TestDaemonsInNamespaces brings dmntest up (topology only: no units) and
// checks the daemons' namespaces, the private /run (with falab's run
// directory still visible inside), falab exec, status,
// and that down leaves nothing. Root only.
func TestDaemonsInNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("brings a lab up; not with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, mounts)")
	}
	// The state dir lives under /run, as in real use, so that the private
	// /run's tmpfs hides it and {dir} must be bound back.
	runDir, err := os.MkdirTemp("/run", "falab-dmntest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FALAB_RUN_DIR", runDir)
	t.Cleanup(func() { os.RemoveAll(runDir) })
	l, err := labfile.Load("dmntest.yaml", []byte(dmnLab))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Down(l.Name, nil) })
	st, err := Up(context.Background(), l, []byte(dmnLab), UpOptions{TopologyOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Daemons) != 3 {
		t.Fatalf("recorded daemons: %+v", st.Daemons)
	}
	holder, joiner, plain := st.Daemons[0].Proc, st.Daemons[1].Proc, st.Daemons[2].Proc

	nsIno := inode(t, "/run/netns/"+l.Namespace("h1"))
	for _, p := range []Proc{holder, joiner, plain} {
		if got := inode(t, procNS(p.PID, "net")); got != nsIno {
			t.Errorf("%s: network namespace %d, want h1's %d", p.Name, got, nsIno)
		}
	}
	hostMnt := inode(t, "/proc/self/ns/mnt")
	if m := inode(t, procNS(holder.PID, "mnt")); m == hostMnt {
		t.Error("holder runs in the host's mount namespace (private_run ignored)")
	}
	if inode(t, procNS(joiner.PID, "mnt")) != inode(t, procNS(holder.PID, "mnt")) {
		t.Error("the two private_run daemons of h1 have different mount namespaces")
	}
	if inode(t, procNS(plain.PID, "mnt")) != hostMnt {
		t.Error("a daemon without private_run has a private mount namespace")
	}
	if _, err := os.Stat("/run/dmntest-marker"); !os.IsNotExist(err) {
		t.Errorf("the private /run leaked to the host: stat = %v", err)
	}
	dir := NodeDir(l.Name, "h1")
	if b, err := os.ReadFile(filepath.Join(dir, "joiner-saw")); err != nil || string(b) != "secret\nnode=h1\n" {
		t.Errorf("joiner saw %q, %v; want the marker and holder.conf", b, err)
	}

	// falab exec, run as a child (it replaces the process).
	out, err := execHelper(t, "h1", "cat /run/dmntest-marker; echo $DMN_CONF; readlink /proc/self/ns/net; test -f $FALAB_RUN_DIR/dmntest/state.json && echo state visible")
	if err != nil {
		t.Fatalf("exec: %v\n%s", err, out)
	}
	wantNet, _ := os.Readlink(procNS(holder.PID, "net"))
	if want := "secret\n" + dir + "/holder.conf\n" + wantNet + "\nstate visible\n"; out != want {
		t.Errorf("exec printed %q, want %q", out, want)
	}

	s, err := GetStatus(l.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range s.Nodes {
		if n.Name == "h1" && n.DaemonSummary() != ", holder pid "+itoa(holder.PID)+", joiner pid "+itoa(joiner.PID)+", plain pid "+itoa(plain.PID) {
			t.Errorf("status: %q", n.DaemonSummary())
		}
	}
	if len(s.Problems) != 0 {
		t.Errorf("status problems: %q", s.Problems)
	}

	if _, err := Down(l.Name, nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Proc{holder, joiner, plain} {
		if p.Alive() {
			t.Errorf("%s (pid %d) survived down", p.Name, p.PID)
		}
	}
	if left, _ := topo.List(l.Namespace("")); len(left) != 0 {
		t.Errorf("namespaces left: %v", left)
	}
	if _, err := os.Stat(Dir(l.Name)); !os.IsNotExist(err) {
		t.Errorf("state dir left: %v", err)
	}
}

// TestExecHelper is not a test: TestDaemonsInNamespaces runs it in a
// child to call ExecCommand, which replaces the process.
func TestExecHelper(t *testing.T) {
	node, script := os.Getenv("FALAB_TEST_EXEC_NODE"), os.Getenv("FALAB_TEST_EXEC_SCRIPT")
	if node == "" {
		t.Skip("helper for TestDaemonsInNamespaces")
	}
	err := ExecCommand("dmntest", node, []string{"sh", "-c", script})
	t.Fatalf("ExecCommand returned: %v", err)
}

func execHelper(t *testing.T, node, script string) (string, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestExecHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FALAB_TEST_EXEC_NODE="+node, "FALAB_TEST_EXEC_SCRIPT="+script)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.Output()
	return string(out), err
}

func procNS(pid int, kind string) string { return "/proc/" + itoa(pid) + "/ns/" + kind }

func itoa(i int) string { return strconv.Itoa(i) }

// inode identifies a namespace (or any file) by its inode number.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}
