package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpuTicks returns a process's user+system CPU time in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st, nil
}

// BenchmarkTUICPU measures the TUI's CPU share at its 10 refreshes a
// second, attached to a lab with 20 live TCP streams, over 10 s.
func BenchmarkTUICPU(b *testing.B) {
	needRoot(b)
	const name = "tuicpu"
	runDir := upLab(b, labCopyB(b, name))
	mustFalab(b, runDir, "traffic", "start", "--lab", name, "--flows", "20")
	sock := "falab-tuicpu-" + strconv.Itoa(os.Getpid())
	cmd := fmt.Sprintf("FALAB_RUN_DIR=%s exec %s tui %s", runDir, falabBin, name)
	if out, err := exec.Command("tmux", "-L", sock, "new-session", "-d", "-x", "120", "-y", "40", cmd).CombinedOutput(); err != nil {
		b.Fatalf("tmux: %v %s", err, out)
	}
	b.Cleanup(func() { exec.Command("tmux", "-L", sock, "kill-server").Run() })
	pidText, err := exec.Command("tmux", "-L", sock, "display", "-p", "#{pane_pid}").Output()
	if err != nil {
		b.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidText)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command("tmux", "-L", sock, "capture-pane", "-p").Output()
		if regexp.MustCompile(`Standby Ready`).Match(out) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("TUI never showed the units:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	const window = 10 * time.Second
	t0, err := cpuTicks(pid)
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(window)
	t1, err := cpuTicks(pid)
	if err != nil {
		b.Fatal(err)
	}
	share := float64(t1-t0) / 100 / window.Seconds() * 100 // USER_HZ is 100
	b.ReportMetric(share, "%cpu")
	fmt.Printf("TUI CPU share at 10 refreshes/s with 20 live streams: %.1f%% of one core (over %v)\n", share, window)
}

func labCopyB(b *testing.B, name string) string {
	data, err := os.ReadFile("../labs/default.yaml")
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Replace(string(data), "name: default", "name: "+name, 1)
	path := b.TempDir() + "/" + name + ".yaml"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}
