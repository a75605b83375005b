package e2e

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/falab/falab/topo"
)

// TestDataPlane: with the default lab up, the hosts' own programs work
// through the active unit as through a NAT router with a stateful policy.
func TestDataPlane(t *testing.T) {
	needRoot(t)
	runDir := upLab(t, "default")
	waitActive(t, runDir, "fw-a")

	// HTTP servers on both servers (falab's agent: a real net/http server)
	// and on client2 (reachable from outside through its static NAT).
	for _, h := range []struct{ node, port string }{{"server1", "80"}, {"server2", "80"}, {"client2", "8080"}, {"client2", "9090"}} {
		startBG(t, runDir, h.node, falabBin, "agent", "http", "--role", "server", "--port", h.port, "--size", "100000", "--duration", "60s")
	}
	time.Sleep(300 * time.Millisecond)

	t.Run("curl and a Go client inside to outside", func(t *testing.T) {
		for _, c := range []string{"client1", "client2"} {
			for _, s := range []string{"198.18.2.11", "198.18.2.12"} {
				r := inNode(t, runDir, c, "curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", "http://"+s+"/")
				if r.code != 0 || r.stdout != "200 100000" {
					t.Errorf("%s curl %s: exit %d %q %s", c, s, r.code, r.stdout, r.stderr)
				}
			}
		}
		// The Go client verifies every byte of the body.
		r := inNode(t, runDir, "client1", falabBin, "agent", "http", "--role", "client", "--target", "198.18.2.11", "--rate", "100000000", "--duration", "5s")
		last := lastJSON(t, r.stdout)
		if last["completed"].(float64) != 1 || last["corrupt"].(float64) != 0 {
			t.Errorf("Go HTTP client: %v (exit %d, %s)", last, r.code, r.stderr)
		}
	})

	t.Run("ping", func(t *testing.T) {
		for _, c := range []string{"client1", "client2"} {
			for _, dst := range []string{"198.18.2.11", "198.18.2.12", "198.18.1.1"} {
				if r := inNode(t, runDir, c, "ping", "-c", "2", "-i", "0.2", "-W", "2", dst); r.code != 0 {
					t.Errorf("%s ping %s: exit %d\n%s", c, dst, r.code, r.stdout)
				}
			}
		}
	})

	t.Run("UDP, and servers see the PAT address", func(t *testing.T) {
		startBG(t, runDir, "server1", falabBin, "agent", "udp-probe", "--role", "server", "--duration", "30s")
		time.Sleep(200 * time.Millisecond)
		r := inNode(t, runDir, "client1", falabBin, "agent", "udp-probe", "--role", "client", "--target", "198.18.2.11", "--interval", "5ms", "--duration", "1s")
		last := lastJSON(t, r.stdout)
		if last["received"].(float64) < 100 {
			t.Errorf("udp-probe: %v", last)
		}
		// The TCP server's report names the source it saw.
		var out strings.Builder
		srv := exec.Command(falabBin, "exec", "server1", "--", falabBin, "agent", "tcp-stream", "--role", "server", "--port", "7001", "--duration", "2s")
		srv.Env = envWith(runDir)
		srv.Stdout = &out
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		inNode(t, runDir, "client1", falabBin, "agent", "tcp-stream", "--role", "client", "--target", "198.18.2.11:7001", "--flows", "2", "--duration", "700ms")
		srv.Wait()
		if !strings.Contains(out.String(), `"remote":"198.18.2.1:`) {
			t.Errorf("server1 did not see client1 as the PAT address 198.18.2.1:\n%s", tail(out.String(), 600))
		}
	})

	t.Run("outside to inside needs static NAT and an access list", func(t *testing.T) {
		// Permitted: tcp 8080 to client2 through its static NAT.
		r := inNode(t, runDir, "server1", "curl", "-sS", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", "http://198.18.2.112:8080/")
		if r.code != 0 || r.stdout != "200" {
			t.Errorf("server1 -> client2 static 8080: exit %d %q %s", r.code, r.stdout, r.stderr)
		}
		// The same host on a port the access list does not permit.
		if r := inNode(t, runDir, "server1", "curl", "-sS", "-m", "2", "-o", "/dev/null", "http://198.18.2.112:9090/"); r.code == 0 {
			t.Errorf("server1 -> client2 static 9090 was allowed")
		}
		// client1 has no static NAT: unreachable from outside.
		if r := inNode(t, runDir, "server1", "curl", "-sS", "-m", "2", "-o", "/dev/null", "http://198.18.1.11:8080/"); r.code == 0 {
			t.Errorf("server1 -> client1 (no static NAT) was allowed")
		}
		drops := showDrops(t, runDir)
		if drops["acl-deny"] == 0 && drops["security-level"] == 0 && drops["no-route"] == 0 {
			t.Errorf("refused connections were not counted: %v", drops)
		}
	})

	t.Run("bare ACK, RST and FIN from outside are dropped and counted", func(t *testing.T) {
		before := showDrops(t, runDir)["no-connection"]
		for _, flags := range []uint8{0x10, 0x04, 0x11} { // ACK, RST, FIN+ACK
			sendRawTCP(t, "falab-default-server1", netip.MustParseAddr("198.18.2.11"), netip.MustParseAddr("198.18.2.112"), 40000, 8080, flags)
		}
		deadline := time.Now().Add(2 * time.Second)
		for {
			after := showDrops(t, runDir)["no-connection"]
			if after >= before+3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no-connection drops went from %d to %d, want +3", before, after)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func envWith(runDir string) []string {
	return append(exec.Command("true").Environ(), "FALAB_RUN_DIR="+runDir)
}

// startBG runs a command in a node in the background for the test's life.
func startBG(t *testing.T, runDir, node string, argv ...string) {
	t.Helper()
	cmd := exec.Command(falabBin, append([]string{"exec", node, "--"}, argv...)...)
	cmd.Env = envWith(runDir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

func waitActive(t *testing.T, runDir, unit string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var sts []struct {
			Unit  string `json:"unit"`
			State string `json:"state"`
		}
		r := falab(t, runDir, "show", "failover", "--json")
		if json.Unmarshal([]byte(r.stdout), &sts) == nil {
			ok := 0
			for _, s := range sts {
				if (s.Unit == unit && s.State == "Active") || (s.Unit != unit && s.State == "Standby Ready") {
					ok++
				}
			}
			if ok == 2 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became active with a ready standby", unit)
}

func showDrops(t *testing.T, runDir string) map[string]uint64 {
	t.Helper()
	var d map[string]uint64
	r := mustFalab(t, runDir, "show", "asp-drop", "--unit", "fw-a", "--json")
	if err := json.Unmarshal([]byte(r), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func lastJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("last report: %v\n%s", err, tail(out, 500))
	}
	return m
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// sendRawTCP sends one TCP segment with the given flags from inside ns,
// as an attacker's forged packet would arrive: no connection behind it.
func sendRawTCP(t *testing.T, ns string, src, dst netip.Addr, sport, dport uint16, flags uint8) {
	t.Helper()
	var fd int
	err := topo.Do(ns, func() error {
		var err error
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_TCP)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	seg := make([]byte, 20)
	binary.BigEndian.PutUint16(seg[0:], sport)
	binary.BigEndian.PutUint16(seg[2:], dport)
	binary.BigEndian.PutUint32(seg[4:], 12345)
	binary.BigEndian.PutUint32(seg[8:], 67890)
	seg[12] = 5 << 4
	seg[13] = flags
	binary.BigEndian.PutUint16(seg[14:], 8192)
	s, d := src.As4(), dst.As4()
	var sum uint32
	pseudo := append(append(append([]byte{}, s[:]...), d[:]...), 0, 6, 0, 20)
	for _, b := range [][]byte{pseudo, seg} {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(seg[16:], ^uint16(sum))
	if err := syscall.Sendto(fd, seg, 0, &syscall.SockaddrInet4{Addr: d}); err != nil {
		t.Fatalf("send %s: %v", fmt.Sprint(flags), err)
	}
}
