package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCaptureFollowActive: `falab capture --follow-active outside` across a
// kill of the active writes one pcapng with both units' outside interfaces,
// in which tshark finds the gratuitous ARP of the new active (fw-b) after
// the kill and a comment marking its role change; and a capture on the
// standby says why it sees little.
func TestCaptureFollowActive(t *testing.T) {
	needRoot(t)
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install -y tshark): the check reads the capture with Wireshark's reader")
	}
	src, err := os.ReadFile("../labs/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	renamed := strings.Replace(string(src), "\nname: default\n", "\nname: capfollow\n", 1)
	labFile := filepath.Join(t.TempDir(), "capfollow.yaml")
	if err := os.WriteFile(labFile, []byte(renamed), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := upLab(t, labFile)
	waitActive(t, runDir, "fw-a")

	// The standby in virtual-MAC mode: the hint says why it is quiet.
	hint := exec.Command(falabBin, "capture", "fw-b", "outside", "--duration", "200ms", "-w", filepath.Join(t.TempDir(), "standby.pcapng"))
	hint.Env = envWith(runDir)
	out, err := hint.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hint: fw-b is Standby Ready in virtual-MAC mode") {
		t.Errorf("capture on the standby: %v, no hint:\n%s", err, out)
	}

	pcap := filepath.Join(t.TempDir(), "follow.pcapng")
	cmd := exec.Command(falabBin, "capture", "--follow-active", "outside", "-w", pcap)
	cmd.Env = envWith(runDir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, err := os.Stat(pcap); err == nil && st.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pcapng header in 10s: %s", stderr.String())
		}
	}
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	mustFalab(t, runDir, "fault", "kill", "fw-a")
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("falab capture --follow-active: %v\n%s", err, stderr.String())
	}
	t.Logf("falab capture: %s", stderr.String())

	rows := func(filter string, fields ...string) [][]string {
		args := []string{"-r", pcap, "-Y", filter, "-T", "fields"}
		for _, f := range fields {
			args = append(args, "-e", f)
		}
		out, err := exec.Command(tshark, args...).Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
		}
		var rs [][]string
		for line := range strings.Lines(string(out)) {
			rs = append(rs, strings.Split(strings.TrimRight(line, "\n"), "\t"))
		}
		return rs
	}
	ifaces := map[string]int{}
	for _, r := range rows("frame", "frame.interface_name") {
		ifaces[r[0]]++
	}
	if ifaces["fw-a:outside"] == 0 || ifaces["fw-b:outside"] == 0 {
		t.Errorf("frames per interface %v, want some on both fw-a:outside and fw-b:outside", ifaces)
	}
	var garps int
	for _, r := range rows(`arp.isgratuitous && frame.interface_name == "fw-b:outside"`, "frame.time_epoch", "frame.p2p_dir") {
		if ts, err := strconv.ParseFloat(r[0], 64); err == nil && ts >= float64(killed.UnixNano())/1e9 {
			garps++
		}
	}
	if garps == 0 {
		all, _ := exec.Command(tshark, "-r", pcap).Output()
		t.Fatalf("no gratuitous ARP on fw-b:outside after the kill; the capture:\n%s", tail(string(all), 3000))
	}
	comments := rows(`frame.comment contains "-> Active"`, "frame.interface_name", "frame.comment")
	if len(comments) == 0 || comments[0][0] != "fw-b:outside" {
		t.Errorf("comments on role changes %q, want fw-b's change to Active on fw-b:outside", comments)
	}
	t.Logf("frames per interface %v; %d gratuitous ARPs from fw-b after the kill; comments %q", ifaces, garps, comments)
}
