package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestShowFailoverWithAFrozenUnit: `falab show failover` asks both units at
// once, each within a second, and names a frozen unit as frozen instead of
// hanging on it (it once took 40 s, then called the unit not running). The
// thawed unit, replaced meanwhile, rejoins as the standby.
func TestShowFailoverWithAFrozenUnit(t *testing.T) {
	needRoot(t)
	runDir := upLab(t, "default")
	mustFalab(t, runDir, "fault", "freeze", "fw-a")
	thawed := false
	t.Cleanup(func() {
		if !thawed {
			falab(t, runDir, "fault", "thaw", "fw-a")
		}
	})
	start := time.Now()
	r := falab(t, runDir, "show", "failover")
	took := time.Since(start)
	t.Logf("show failover with fw-a frozen took %v", took.Round(time.Millisecond))
	out := r.stdout + r.stderr
	if !strings.Contains(out, "fw-a: not answering: process") || !strings.Contains(out, "stopped (frozen") {
		t.Errorf("show failover does not name fw-a as frozen:\n%s", out)
	}
	if !strings.Contains(r.stdout, "This host: fw-b") {
		t.Errorf("show failover lost the unit that answers:\n%s", out)
	}
	mustFalab(t, runDir, "fault", "thaw", "fw-a")
	thawed = true
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := falab(t, runDir, "show", "failover")
		if strings.Contains(r.stdout, "fw-a - Standby Ready") && strings.Contains(r.stdout, "fw-b - Active") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the thaw, fw-a is not the standby of fw-b:\n%s%s", r.stdout, r.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
