package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDefaultLabUpPingDown: the default lab comes up, hosts reach each
// other through their switches, and down leaves nothing behind.
func TestDefaultLabUpPingDown(t *testing.T) {
	needRoot(t)
	runDir := upLab(t, "default")

	var st []struct {
		Name  string `json:"name"`
		Nodes []struct {
			Name    string `json:"name"`
			Present bool   `json:"present"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(mustFalab(t, runDir, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Name != "default" || len(st[0].Nodes) != 8 {
		t.Fatalf("status: %+v", st)
	}
	for _, n := range st[0].Nodes {
		if !n.Present {
			t.Errorf("node %s missing", n.Name)
		}
	}

	for _, p := range []struct{ from, to string }{
		{"client1", "198.18.1.12"}, // client2, through sw-inside
		{"server1", "198.18.2.12"}, // server2, through sw-outside
	} {
		if r := inNode(t, runDir, p.from, "ping", "-c", "3", "-i", "0.2", "-W", "2", p.to); r.code != 0 {
			t.Errorf("%s ping %s: exit %d\n%s%s", p.from, p.to, r.code, r.stdout, r.stderr)
		}
	}

	// The unit's data interfaces belong to the userspace firewall: no
	// kernel IPv4, IPv6 off, forwarding off; the failover link has its
	// address.
	r := inNode(t, runDir, "fw-a", "ip", "-o", "-4", "addr", "show")
	if r.code != 0 {
		t.Fatalf("ip addr in fw-a: %s", r.stderr)
	}
	if strings.Contains(r.stdout, " inside ") || strings.Contains(r.stdout, " outside ") {
		t.Errorf("fw-a data interfaces have kernel IPv4:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "failover") || !strings.Contains(r.stdout, "198.19.255.1/30") {
		t.Errorf("fw-a failover link has no address:\n%s", r.stdout)
	}
	if r := inNode(t, runDir, "fw-a", "cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(r.stdout) != "0" {
		t.Errorf("fw-a ip_forward = %q, want 0", r.stdout)
	}

	mustFalab(t, runDir, "down", "default")
	if left := namespacesWithPrefix(t, "falab-default-"); len(left) > 0 {
		t.Errorf("after down, namespaces remain: %v", left)
	}
	if _, err := os.Stat(filepath.Join(runDir, "default")); !os.IsNotExist(err) {
		t.Errorf("after down, state dir remains (err=%v)", err)
	}
	// Nothing leaked into the host's namespace: no veth or bridge of ours.
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"client1-eth0", "fw-a-inside", "br0", "failover"} {
		if strings.Contains(string(out), " "+name+"@") || strings.Contains(string(out), " "+name+":") {
			t.Errorf("host namespace has %s after down:\n%s", name, out)
		}
	}
	// Idempotent.
	mustFalab(t, runDir, "down", "default")
}

// TestDownAllAfterKilledUp: an up killed halfway (after the topology,
// before the lab is recorded as up) is cleaned completely by down --all.
func TestDownAllAfterKilledUp(t *testing.T) {
	needRoot(t)
	if others := namespacesWithPrefix(t, "falab-"); len(others) > 0 {
		t.Skipf("falab namespaces of another lab are present (%v): down --all would remove them", others)
	}
	runDir := t.TempDir()
	t.Cleanup(func() { falab(t, runDir, "down", "--all") })

	cmd := exec.Command(falabBin, "up", "default", "--detach")
	cmd.Env = append(os.Environ(), "FALAB_RUN_DIR="+runDir, "FALAB_TEST_PAUSE_AFTER=topology")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the topology stands and up has paused, then kill it.
	paused := filepath.Join(runDir, "default", "paused")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(paused); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("up never reached its pause point")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if left := namespacesWithPrefix(t, "falab-default-"); len(left) != 8 {
		t.Fatalf("the killed up should have left 8 namespaces, found %v", left)
	}
	// A second up refuses to build over the half-built lab, touching nothing.
	if r := falab(t, runDir, "up", "default", "--detach"); r.code == 0 || !strings.Contains(r.stderr, "did not finish") {
		t.Errorf("up over a half-built lab: exit %d, stderr %q", r.code, r.stderr)
	}
	mustFalab(t, runDir, "down", "--all")
	if left := namespacesWithPrefix(t, "falab-"); len(left) > 0 {
		t.Errorf("after down --all, namespaces remain: %v", left)
	}
}

// TestNeedsRoot: without root, one clear line and exit status 2.
func TestNeedsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run falab as another user")
	}
	if testing.Short() {
		t.Skip("skipping in -short mode: runs the falab binary, which -short does not build")
	}
	cmd := exec.Command(falabBin, "up", "--detach")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, output %q", err, out)
	}
	want := "falab up: needs root (sudo): it creates network namespaces, veth links and raw packet sockets\n"
	if string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

// TestBadLabFileTouchesNothing: a lab file with a mistake is refused with
// file, line and field, and nothing is created.
func TestBadLabFileTouchesNothing(t *testing.T) {
	needRoot(t)
	runDir := t.TempDir()
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	src := "name: badlab\nnodes:\n  h1: {kind: hots}\n"
	if err := os.WriteFile(bad, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := falab(t, runDir, "up", bad, "--detach")
	if r.code != 2 || !strings.Contains(r.stderr, bad+`:3: nodes.h1.kind: "hots" is not a node kind (expected host, switch or unit)`) {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if left := namespacesWithPrefix(t, "falab-badlab-"); len(left) > 0 {
		t.Errorf("a bad lab file created namespaces: %v", left)
	}
	if _, err := os.Stat(filepath.Join(runDir, "badlab")); !os.IsNotExist(err) {
		t.Errorf("a bad lab file created a state dir")
	}
}
