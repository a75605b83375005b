package e2e

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// TestOffloadsOnSuperFrames: with `offloads: true` every lab veth keeps
// TSO/GSO/GRO/tx-checksum on, so the hosts send 64 KiB super-frames with
// checksums still to do. A real TCP download through the active unit
// (PAT) arrives with every byte verified, and the unit took the
// super-frames whole (its outside interface's frames average far more
// than an MTU) without a drop.
func TestOffloadsOnSuperFrames(t *testing.T) {
	needRoot(t)
	path := renamedDefault(t, "e2egso")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\noffloads: true\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	runDir := upLab(t, path)
	waitActive(t, runDir, "fw-a")

	startBG(t, runDir, "server1", falabBin, "agent", "http", "--role", "server", "--port", "80", "--size", "200000000", "--duration", "60s")
	time.Sleep(300 * time.Millisecond)
	r := inNode(t, runDir, "client1", falabBin, "agent", "http", "--role", "client", "--target", "198.18.2.11", "--rate", "10000000000", "--duration", "10s")
	last := lastJSON(t, r.stdout)
	if last["completed"].(float64) != 1 || last["corrupt"].(float64) != 0 || last["bytes_received"].(float64) != 200000000 {
		t.Errorf("Go HTTP client (verifies every byte): %v (exit %d, %s)", last, r.code, r.stderr)
	}

	var ifs []struct {
		Name      string `json:"name"`
		RxPackets uint64 `json:"rx_packets"`
		RxBytes   uint64 `json:"rx_bytes"`
		Drops     uint64 `json:"drops"`
	}
	if err := json.Unmarshal([]byte(mustFalab(t, runDir, "show", "interface", "--json")), &ifs); err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Drops != 0 {
			t.Errorf("interface %s: %d drops\n%s", i.Name, i.Drops, mustFalab(t, runDir, "show", "asp-drop"))
		}
		if i.Name == "outside" && (i.RxPackets == 0 || i.RxBytes/i.RxPackets < 3000) {
			t.Errorf("outside: %d bytes in %d frames: no super-frames came through whole", i.RxBytes, i.RxPackets)
		}
	}
}
