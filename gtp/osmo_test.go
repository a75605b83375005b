package gtp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/falab/falab/gtp"
	"github.com/falab/falab/topo"
)

// TestOsmoGSNs runs the real GSNs, osmo-ggsn and sgsnemu, in two namespaces
// joined by a veth pair, captures every IPv4 packet on the GGSN's side of
// the veth with an AF_PACKET socket and shows the GTP in it to an
// Inspector. The inspector must pass everything, commit the context
// sgsnemu creates (with the GGSN's TEIDs and the MS address osmo-ggsn
// assigned), pass the pings in both directions as G-PDUs of that context,
// and remove it on sgsnemu's Delete. It observes; it does not forward.
//
// It needs root and the Debian package osmo-ggsn, and creates namespaces,
// so it is skipped under -short.
func TestOsmoGSNs(t *testing.T) {
	if testing.Short() {
		t.Skip("creates namespaces and runs osmo-ggsn: not under -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (namespaces, AF_PACKET)")
	}
	for _, bin := range []string{"osmo-ggsn", "sgsnemu", "ip", "timeout"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (apt-get install osmo-ggsn)", bin)
		}
	}
	pid := os.Getpid()
	// topo insists on its prefix; "gtpit" marks this test's namespaces.
	nsS := fmt.Sprintf("%sgtpit-%d-sgsn", topo.NamePrefix, pid)
	nsG := fmt.Sprintf("%sgtpit-%d-ggsn", topo.NamePrefix, pid)
	vethS, vethG := fmt.Sprintf("gtpits%d", pid), fmt.Sprintf("gtpitg%d", pid)
	for _, ns := range []string{nsS, nsG} {
		if _, err := topo.CreateNamespace(ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := topo.RemoveNamespace(ns); err != nil {
				t.Errorf("remove %s: %v", ns, err)
			}
		})
	}
	ipCmd(t, "link", "add", vethS, "netns", nsS, "type", "veth", "peer", "name", vethG, "netns", nsG)
	ipCmd(t, "-n", nsS, "addr", "add", "198.18.10.1/24", "dev", vethS)
	ipCmd(t, "-n", nsG, "addr", "add", "198.18.10.2/24", "dev", vethG)
	for _, l := range [][2]string{{nsS, vethS}, {nsG, vethG}, {nsS, "lo"}, {nsG, "lo"}} {
		ipCmd(t, "-n", l[0], "link", "set", l[1], "up")
	}

	var mu sync.Mutex
	var changes []gtp.Change
	in := gtp.New(gtp.Config{OnChange: func(c gtp.Change) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
	}})
	tally := capture(t, nsG, vethG, in)

	dir := t.TempDir()
	cfg, err := os.ReadFile("testdata/osmo-ggsn.cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "osmo-ggsn.cfg")
	if err := os.WriteFile(cfgPath, bytes.ReplaceAll(cfg, []byte("STATE_DIR"), []byte(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	var ggsnLog bytes.Buffer
	ggsn := exec.Command("ip", "netns", "exec", nsG, "osmo-ggsn", "-c", cfgPath)
	ggsn.Stdout, ggsn.Stderr = &ggsnLog, &ggsnLog
	if err := ggsn.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ggsn.Process.Kill() // by PID: ip netns exec execs osmo-ggsn in place
		ggsn.Wait()
		t.Logf("osmo-ggsn log:\n%s", ggsnLog.String())
	})
	time.Sleep(2 * time.Second) // osmo-ggsn opens its tun and socket

	// sgsnemu can hang after --timelimit: timeout ends it.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sgsn := exec.CommandContext(ctx, "ip", "netns", "exec", nsS, "timeout", "12",
		"sgsnemu", "--listen", "198.18.10.1", "--remote", "198.18.10.2", "--apn", "internet",
		"--imsi", "001010123456789", "--nsapi", "5", "--statedir", dir, "--pidfile", filepath.Join(dir, "sgsnemu.pid"),
		"--pinghost", "198.19.200.0", "--pingrate", "2", "--pingcount", "6", "--timelimit", "6")
	out, _ := sgsn.CombinedOutput() // exit status 124 from timeout is expected
	t.Logf("sgsnemu:\n%s", out)
	if !strings.Contains(string(out), "6 packets received") {
		t.Errorf("sgsnemu's pings did not all come back")
	}
	time.Sleep(500 * time.Millisecond)
	tally.stop()

	c, u := tally.result()
	t.Logf("GTP seen:\n%s", strings.Join(tally.log, "\n"))
	t.Logf("control: %+v", c)
	t.Logf("user: %+v", u)
	if c.dropped+u.dropped != 0 {
		t.Errorf("inspector dropped real GSN traffic: control %+v user %+v", c, u)
	}
	if u.passed < 12 {
		t.Errorf("%d G-PDUs passed, want the 6 pings and 6 replies", u.passed)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 2 || changes[0].Op != gtp.OpUpsert || changes[1].Op != gtp.OpDelete {
		t.Fatalf("changes %+v, want commit then delete", changes)
	}
	r := changes[0].Record
	if r.SGSNData != [4]byte{198, 18, 10, 1} || r.GGSNData != [4]byte{198, 18, 10, 2} || r.MS != [4]byte{198, 19, 200, 1} ||
		r.TID.NSAPI != 5 || r.GGSNDataTEID == 0 || r.TID.IMSIString() != sgsnemuIMSI {
		t.Errorf("committed %+v", r)
	}
	if in.Len() != 0 || in.Digest() != 0 {
		t.Errorf("context left after sgsnemu's Delete")
	}
}

// sgsnemuIMSI is what sgsnemu 1.9.0 puts on the wire for --imsi
// 001010123456789: it encodes the digits shifted (osmo-ggsn logs the
// context as "PDP(101012345678900:5)" too). The inspector keys by the
// bytes as sent, so both GSNs and the firewall agree.
const sgsnemuIMSI = "101012345678900"

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

type counts struct{ passed, dropped int }

type tap struct {
	log  []string // every GTP message and its verdict, for the test log
	fd   int
	wg   sync.WaitGroup
	mu   sync.Mutex
	c, u counts
	done chan struct{}
}

func (p *tap) stop() { close(p.done); p.wg.Wait(); unix.Close(p.fd) }

func (p *tap) result() (counts, counts) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.c, p.u
}

// capture opens an AF_PACKET socket on ifname inside ns and feeds each UDP datagram to or from port 2123 or 2152 to
// the inspector.
func capture(t *testing.T, ns, ifname string, in *gtp.Inspector) *tap {
	p := &tap{done: make(chan struct{})}
	// ETH_P_ALL: a socket bound to ETH_P_IP only sees packets received,
	// not those the namespace sends.
	err := topo.Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		ifi, err := netInterfaceIndex(ifname)
		if err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		p.fd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("capture on %s: %v", ifname, err)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 65536)
		for {
			select {
			case <-p.done:
				return
			default:
			}
			n, _, err := unix.Recvfrom(p.fd, buf, 0)
			if err != nil {
				continue
			}
			p.inspect(in, buf[:n])
		}
	}()
	return p
}

func (p *tap) inspect(in *gtp.Inspector, b []byte) {
	if len(b) < 20 || b[0]>>4 != 4 || b[9] != unix.IPPROTO_UDP {
		return
	}
	ihl := int(b[0]&0x0f) * 4
	if len(b) < ihl+8 {
		return
	}
	udp := b[ihl:]
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[12:16])), binary.BigEndian.Uint16(udp[0:]))
	dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[16:20])), binary.BigEndian.Uint16(udp[2:]))
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen < 8 || ulen > len(udp) {
		return
	}
	payload := udp[8:ulen]
	p.mu.Lock()
	defer p.mu.Unlock()
	var v gtp.Verdict
	switch {
	case dst.Port() == gtp.ControlPort || src.Port() == gtp.ControlPort:
		v = in.Control(src, dst, payload, time.Now())
		tallyVerdict(&p.c, v)
	case dst.Port() == gtp.UserPort:
		v = in.User(src, dst, payload)
		tallyVerdict(&p.u, v)
	default:
		return
	}
	p.log = append(p.log, fmt.Sprintf("%v -> %v type %d len %d: %v % x", src, dst, payload[1], len(payload), v.Drop, payload[:min(len(payload), 24)]))
}

func tallyVerdict(c *counts, v gtp.Verdict) {
	if v.Pass() {
		c.passed++
	} else {
		c.dropped++
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// netInterfaceIndex returns ifname's index in the calling thread's
// namespace (net.InterfaceByName asks netlink from this thread).
func netInterfaceIndex(ifname string) (int, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return 0, err
	}
	return ifi.Index, nil
}
