package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/falab/falab/labs"
)

// TestSeparateStateLink: with a state link named in the lab file, the state
// stream runs over it (not the failover link) and sessions survive a crash.
func TestSeparateStateLink(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	data, _ := labs.Get("default")
	lab := strings.Replace(string(data), "name: default", "name: statelink", 1)
	lab = strings.Replace(lab, "  - endpoints: [fw-a:failover, fw-b:failover]\n",
		"  - endpoints: [fw-a:failover, fw-b:failover]\n  - endpoints: [fw-a:state, fw-b:state]\n", 1)
	lab = strings.Replace(lab, "    secondary_address: 198.19.255.2/30\n",
		"    secondary_address: 198.19.255.2/30\n  state_link:\n    interface: state\n    primary_address: 198.19.254.1/30\n    secondary_address: 198.19.254.2/30\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "statelink.yaml"), []byte(lab), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, _ := labs.Scenario("crash")
	scenario := strings.Replace(string(sc), "lab: default", "lab: statelink.yaml", 1)
	file := filepath.Join(dir, "crash-statelink.yaml")
	if err := os.WriteFile(file, []byte(scenario), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	t.Cleanup(func() { downRecorded(t, runDir) })
	r := falab(t, runDir, "run", file)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", r.code, tail(r.stdout, 3000), r.stderr)
	}
	// The standby connected for state from its state-link address.
	if !strings.Contains(r.stdout, "standby fw-b connected for state (198.19.254.2:") {
		t.Errorf("the state stream did not run over the state link:\n%s", tail(r.stdout, 3000))
	}
}
