package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// renamedDefault writes the default lab under another name, so it never
// meets a user's default lab.
func renamedDefault(t *testing.T, name string) string {
	t.Helper()
	src, err := os.ReadFile("../labs/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	renamed := strings.Replace(string(src), "\nname: default\n", "\nname: "+name+"\n", 1)
	if renamed == string(src) {
		t.Fatal("labs/default.yaml has no line `name: default` to rename")
	}
	p := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(p, []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBoxToTheUnit: each unit's own stack (box0) carries its current
// addresses; the kernel answers ping to them, an ordinary UDP socket in
// the unit on port 500 is reachable through the data plane, and after a
// takeover the new active's kernel owns the active addresses.
func TestBoxToTheUnit(t *testing.T) {
	needRoot(t)
	runDir := upLab(t, renamedDefault(t, "boxtest"))
	waitActive(t, runDir, "fw-a")

	addrs := func(unit string) string {
		return inNode(t, runDir, unit, "ip", "-4", "-o", "addr", "show", "dev", "box0").stdout
	}
	if a := addrs("fw-a"); !strings.Contains(a, "198.18.1.1/32") || !strings.Contains(a, "198.18.2.1/32") {
		t.Fatalf("fw-a's box0 lacks the active addresses:\n%s", a)
	}
	if a := addrs("fw-b"); !strings.Contains(a, "198.18.1.2/32") || strings.Contains(a, "198.18.1.1/32") {
		t.Fatalf("fw-b's box0 should carry the standby addresses only:\n%s", a)
	}
	for _, dst := range []string{"198.18.1.1", "198.18.1.2"} {
		if r := inNode(t, runDir, "client1", "ping", "-c", "2", "-i", "0.2", "-W", "2", dst); r.code != 0 {
			t.Errorf("client1 ping %s: exit %d\n%s", dst, r.code, r.stdout)
		}
	}
	// A Go UDP socket in the active unit on the IKE port answers the
	// client through the data plane and the unit's kernel.
	startBG(t, runDir, "fw-a", falabBin, "agent", "udp-probe", "--role", "server", "--port", "500", "--duration", "30s")
	time.Sleep(300 * time.Millisecond)
	r := inNode(t, runDir, "client1", falabBin, "agent", "udp-probe", "--role", "client", "--target", "198.18.1.1", "--port", "500", "--interval", "10ms", "--duration", "1s")
	if last := lastJSON(t, r.stdout); last["received"].(float64) < 50 {
		t.Errorf("udp-probe to the unit's port 500: %v (exit %d %s)", last, r.code, r.stderr)
	}

	mustFalab(t, runDir, "fault", "kill", "fw-a")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(addrs("fw-b"), "198.18.1.1/32") {
		if time.Now().After(deadline) {
			t.Fatalf("fw-b's box0 never took the active addresses:\n%s", addrs("fw-b"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := inNode(t, runDir, "client1", "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.18.1.1"); r.code != 0 {
		t.Errorf("client1 ping 198.18.1.1 after takeover: exit %d\n%s", r.code, r.stdout)
	}
	if a := addrs("fw-b"); strings.Contains(a, "198.18.1.2/32") {
		t.Errorf("fw-b kept its standby address after the takeover:\n%s", a)
	}
}
