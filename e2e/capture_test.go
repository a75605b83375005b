package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/falab/falab/capture"
	"github.com/falab/falab/topo"
)

// TestCaptureFailoverGARP: a capture on client1's link across a failover
// shows the new active announcing the inside address with gratuitous ARPs,
// from the MAC client1 then uses for its gateway, and Wireshark's reader
// opens the file.
func TestCaptureFailoverGARP(t *testing.T) {
	needRoot(t)
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install -y tshark): the check reads the capture with Wireshark's reader")
	}
	// The default lab under another name, so it never meets a user's
	// default lab.
	src, err := os.ReadFile("../labs/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	renamed := strings.Replace(string(src), "\nname: default\n", "\nname: captest\n", 1)
	if renamed == string(src) {
		t.Fatal("labs/default.yaml has no line `name: default` to rename")
	}
	labFile := filepath.Join(t.TempDir(), "captest.yaml")
	if err := os.WriteFile(labFile, []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := upLab(t, labFile)
	waitActive(t, runDir, "fw-a")
	// client1 learns its gateway's MAC now, so the takeover has an ARP
	// cache entry to keep or update.
	if r := inNode(t, runDir, "client1", "ping", "-c", "1", "-W", "2", "198.18.1.1"); r.code != 0 {
		t.Fatalf("client1 ping gateway: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	pcap := filepath.Join(t.TempDir(), "client1-eth0.pcapng")
	stop := startCapture(t, runDir, "client1", "eth0", pcap)
	killed := time.Now()
	mustFalab(t, runDir, "fault", "kill", "fw-a")
	time.Sleep(1500 * time.Millisecond)
	stop()

	// Every gratuitous ARP after the kill is the new active's: fw-a is
	// dead. tshark 4.0 lists falab's form (a request with a zero target
	// MAC) as "ARP Announcement", so ask for the field both forms set.
	out, err := exec.Command(tshark, "-r", pcap, "-Y", "arp.isgratuitous", "-T", "fields",
		"-e", "frame.time_epoch", "-e", "arp.src.hw_mac", "-e", "arp.src.proto_ipv4", "-e", "_ws.col.Info").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", pcap, err)
	}
	var macs []string
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(f) < 3 {
			continue
		}
		ts, err := strconv.ParseFloat(f[0], 64)
		if err != nil || ts < float64(killed.UnixNano())/1e9 || f[2] != "198.18.1.1" {
			continue
		}
		macs = append(macs, f[1])
	}
	t.Logf("gratuitous ARPs for 198.18.1.1 after the kill: %d, from %q", len(macs), macs)
	// The new active repeats its announcement (at 0, 10, 50, 200 ms and
	// 1 s after taking over), so 1.5 s holds several.
	if len(macs) < 2 {
		all, _ := exec.Command(tshark, "-r", pcap).Output()
		t.Fatalf("%d gratuitous ARPs for 198.18.1.1 after the kill, want at least 2; the capture:\n%s", len(macs), tail(string(all), 3000))
	}
	// They announce the MAC client1 now uses for its gateway.
	neigh, err := topo.Neighbors("falab-captest-client1")
	if err != nil {
		t.Fatal(err)
	}
	var gw string
	for _, n := range neigh {
		if n.IP.String() == "198.18.1.1" {
			gw = n.MAC.String()
		}
	}
	for _, m := range macs {
		if m != gw {
			t.Errorf("gratuitous ARP from %s, but client1's ARP cache has 198.18.1.1 at %q", m, gw)
		}
	}
	// And the new active is fw-b.
	var sts []struct {
		Unit  string `json:"unit"`
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(mustFalab(t, runDir, "show", "failover", "--json")), &sts); err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if s.Unit == "fw-b" && s.State != "Active" {
			t.Errorf("fw-b is %s after fw-a was killed, want Active", s.State)
		}
	}
}

// startCapture captures node:ifname to file until the returned stop is
// called. It runs `falab capture NODE IFACE -w FILE` and stops it with
// SIGINT when the binary has that verb; until the CLI has it, it calls
// package capture in-process on the node's namespace.
func startCapture(t *testing.T, runDir, node, ifname, file string) (stop func()) {
	t.Helper()
	if strings.Contains(mustFalab(t, runDir, "help"), "\n  capture ") {
		cmd := exec.Command(falabBin, "capture", node, ifname, "-w", file)
		cmd.Env = envWith(runDir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		// The capture is open once the pcapng header is in the file.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if st, err := os.Stat(file); err == nil && st.Size() > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("falab capture wrote no header in 10s: %s", stderr.String())
			}
		}
		return func() {
			cmd.Process.Signal(syscall.SIGINT)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("falab capture: %v\n%s", err, stderr.String())
			}
		}
	}

	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := capture.Open("falab-captest-"+node, ifname, capture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		stats  capture.Stats
		runErr error
		done   = make(chan struct{})
	)
	go func() {
		defer close(done)
		stats, runErr = c.Run(ctx, f)
	}()
	t.Cleanup(func() { cancel(); <-done; c.Close(); f.Close() })
	return func() {
		cancel()
		<-done
		t.Logf("capture %s:%s: %+v", node, ifname, stats)
		if runErr != nil {
			t.Fatalf("capture: %v", runErr)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
