package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/labs"
	"github.com/falab/falab/topo"
)

// TestTransparentNoStorm: the transparent pair bridges inside one subnet
// and never makes a loop, also in the first seconds when both units start
// together and while the active dies: the switches' frame counters stay
// at traffic levels, never a broadcast storm's.
func TestTransparentNoStorm(t *testing.T) {
	needRoot(t)
	data, _ := labs.Get("transparent")
	file := filepath.Join(t.TempDir(), "tstorm.yaml")
	if err := os.WriteFile(file, []byte(strings.Replace(string(data), "name: transparent", "name: tstorm", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	t.Cleanup(func() { downRecorded(t, runDir) })

	// Sample the switches from the moment the namespaces exist.
	stop := make(chan struct{})
	worst := make(chan uint64, 1)
	go func() {
		var max, last uint64
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				worst <- max
				return
			case <-tick.C:
			}
			var total uint64
			for _, sw := range []string{"falab-tstorm-sw-inside", "falab-tstorm-sw-outside"} {
				ifs, err := topo.Interfaces(sw)
				if err != nil {
					continue
				}
				for _, i := range ifs {
					total += i.Counters.RxPackets
				}
			}
			if last != 0 && total-last > max {
				max = total - last
			}
			last = total
		}
	}()
	mustFalab(t, runDir, "up", file, "--detach")
	// Broadcasts from both sides while the units settle: a loop would
	// multiply them without end.
	for _, h := range []string{"client1", "server1"} {
		startBG(t, runDir, h, "ping", "-b", "-i", "0.01", "-c", "300", "198.18.10.255")
	}
	waitActive(t, runDir, "fw-a")
	if r := inNode(t, runDir, "client1", "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.10.21"); r.code != 0 {
		t.Errorf("client1 -> server1 across the bridge: %s", r.stdout)
	}
	mustFalab(t, runDir, "fault", "kill", "fw-a")
	waitState(t, runDir, "fw-b", "Active")
	if r := inNode(t, runDir, "client1", "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.10.21"); r.code != 0 {
		t.Errorf("client1 -> server1 after the takeover: %s", r.stdout)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	// 2 hosts x 100 broadcasts/s plus pings and hellos: a few hundred
	// frames per 50 ms at most. A loop runs into the tens of thousands.
	const limit = 2000
	if w := <-worst; w > limit {
		t.Errorf("the switches received %d frames in one 50 ms window: a broadcast storm (limit %d)", w, limit)
	} else {
		t.Logf("worst 50 ms window: %d frames on the switches", w)
	}
}

func waitState(t *testing.T, runDir, unit, state string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var sts []struct {
			Unit  string `json:"unit"`
			State string `json:"state"`
		}
		r := falab(t, runDir, "show", "failover", "--json")
		if json.Unmarshal([]byte(r.stdout), &sts) == nil {
			for _, s := range sts {
				if s.Unit == unit && s.State == state {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never reached %s", unit, state)
}
