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
	"github.com/falab/falab/gtp/gtpclient"
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
	nsS, nsG, vethG := gsnNamespaces(t)

	var mu sync.Mutex
	var changes []gtp.Change
	in := gtp.New(gtp.Config{OnChange: func(c gtp.Change) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
	}})
	tally := capture(t, nsG, vethG, in)

	dir := t.TempDir()
	startGGSN(t, nsG, dir)

	// sgsnemu can hang after --timelimit; the shell wraps it in timeout,
	// here the context kills it by PID (ip netns exec execs it in place,
	// so the PID is sgsnemu's and no orphan is left behind).
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	// stdbuf: sgsnemu's stdout is a pipe here, and a killed sgsnemu would
	// lose its block-buffered output.
	sgsn := exec.CommandContext(ctx, "ip", "netns", "exec", nsS, "stdbuf", "-oL",
		"sgsnemu", "--listen", "198.18.10.1", "--remote", "198.18.10.2", "--apn", "internet",
		"--imsi", "001010123456789", "--nsapi", "5", "--statedir", dir, "--pidfile", filepath.Join(dir, "sgsnemu.pid"),
		"--pinghost", "198.19.200.0", "--pingrate", "2", "--pingcount", "20", "--timelimit", "15")
	var out bytes.Buffer
	sgsn.Stdout, sgsn.Stderr = &out, &out
	if err := sgsn.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sgsn.Process.Kill(); sgsn.Wait() })
	update := updateAfterPings(t, nsS, in)
	werr := sgsn.Wait() // killed at the deadline if it hangs after --timelimit
	t.Logf("sgsnemu (%v):\n%s", werr, out.String())
	// The pings before the Update came back. After it osmo-ggsn answers
	// sgsnemu's next G-PDU from the old SGSN address with an Error
	// Indication, and sgsnemu exits without a Delete: the new SGSN ends
	// the context.
	if n := strings.Count(out.String(), " bytes from 198.19.200.0"); n < 6 {
		t.Errorf("sgsnemu: %d ping replies, want at least the 6 before the Update", n)
	}
	del := deleteFromNewSGSN(t, nsS, update.ctx)
	if !del.Accepted() {
		t.Errorf("osmo-ggsn answered the new SGSN's Delete with cause %d", del.Cause)
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
		t.Errorf("%d G-PDUs passed, want at least 6 pings and 6 replies", u.passed)
	}
	errInd := 0
	for _, l := range tally.log {
		if strings.Contains(l, " type 26 ") && strings.Contains(l, ": none ") {
			errInd++
		}
	}
	if errInd == 0 {
		t.Errorf("no Error Indication seen for the old SGSN's G-PDUs after the Update")
	}
	mu.Lock()
	defer mu.Unlock()
	if !update.Accepted() {
		t.Errorf("osmo-ggsn answered the Update with cause %d", update.Cause)
	}
	if len(changes) != 3 || changes[0].Op != gtp.OpUpsert || changes[1].Op != gtp.OpUpsert || changes[2].Op != gtp.OpDelete {
		t.Fatalf("changes %+v, want commit, update, delete", changes)
	}
	if u := changes[1].Record; u.SGSNControl != newSGSN.Addr().As4() || u.SGSNData != newSGSN.Addr().As4() || u.SGSNDataTEID != newSGSNDataTEID {
		t.Errorf("update moved the context to %+v", u)
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

// The "new SGSN" the Update moves the context to: another address in the
// SGSN's namespace. It keeps sgsnemu's control TEID so that sgsnemu's own
// Delete at the end still matches its context at the GGSN.
var newSGSN = netip.MustParseAddrPort("198.18.10.3:2123")

const newSGSNDataTEID = 0x2002

// updateAfterPings waits until the inspector has passed 6 of sgsnemu's
// pings and their replies, then sends an Update PDP Context Request from newSGSN
// with gtpclient, as sgsnemu never does, and returns osmo-ggsn's answer.
type updated struct {
	gtpclient.Result
	ctx gtp.ContextInfo // the context before the Update
}

func updateAfterPings(t *testing.T, ns string, in *gtp.Inspector) updated {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var ctx gtp.ContextInfo
	for {
		if cs := in.Contexts(time.Now()); len(cs) == 1 && cs[0].Upstream+cs[0].Downstream >= 12 {
			ctx = cs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no context with 12 G-PDUs within 10s: %+v", in.Contexts(time.Now()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	ipCmd(t, "-n", ns, "addr", "add", newSGSN.Addr().String()+"/24", "dev", fmt.Sprintf("gtpits%d", os.Getpid()))
	var r gtpclient.Result
	err := topo.Do(ns, func() error {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var err error
		r, err = gtpclient.SendUpdate(c, gtpclient.Update{
			Local: newSGSN, GGSN: netip.AddrPortFrom(netip.AddrFrom4(ctx.GGSNControl), gtp.ControlPort),
			GGSNControlTEID: ctx.GGSNControlTEID, NSAPI: ctx.TID.NSAPI,
			SGSNControlTEID: ctx.SGSNControlTEID, SGSNDataTEID: newSGSNDataTEID, Seq: 4242,
		})
		return err
	})
	if err != nil {
		t.Fatalf("Update PDP Context: %v", err)
	}
	return updated{r, ctx}
}

// deleteFromNewSGSN ends the moved context from newSGSN with gtpclient.
func deleteFromNewSGSN(t *testing.T, ns string, ctx gtp.ContextInfo) gtpclient.Result {
	t.Helper()
	var r gtpclient.Result
	err := topo.Do(ns, func() error {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var err error
		r, err = gtpclient.SendDelete(c, gtpclient.Delete{
			Local: newSGSN, GGSN: netip.AddrPortFrom(netip.AddrFrom4(ctx.GGSNControl), gtp.ControlPort),
			GGSNControlTEID: ctx.GGSNControlTEID, NSAPI: ctx.TID.NSAPI, Seq: 4243,
		})
		return err
	})
	if err != nil {
		t.Fatalf("Delete PDP Context: %v", err)
	}
	return r
}

// sgsnemuIMSI is what sgsnemu 1.9.0 puts on the wire for --imsi
// 001010123456789: it encodes the digits shifted (osmo-ggsn logs the
// context as "PDP(101012345678900:5)" too). The inspector keys by the
// bytes as sent, so both GSNs and the firewall agree.
const sgsnemuIMSI = "101012345678900"

// gsnNamespaces makes the SGSN's and the GGSN's namespaces, joined by a
// veth pair on 198.18.10.0/24, removed when the test ends. It returns the
// namespaces and the GGSN's end of the veth.
func gsnNamespaces(t *testing.T) (nsS, nsG, vethG string) {
	pid := os.Getpid()
	// topo insists on its prefix; "gtpit" marks this test's namespaces.
	nsS = fmt.Sprintf("%sgtpit-%d-sgsn", topo.NamePrefix, pid)
	nsG = fmt.Sprintf("%sgtpit-%d-ggsn", topo.NamePrefix, pid)
	vethS := fmt.Sprintf("gtpits%d", pid)
	vethG = fmt.Sprintf("gtpitg%d", pid)
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
	return nsS, nsG, vethG
}

// startGGSN runs osmo-ggsn with testdata/osmo-ggsn.cfg in ns until the
// test ends, and gives it time to open its tun device and socket.
func startGGSN(t *testing.T, ns, dir string) {
	cfg, err := os.ReadFile("testdata/osmo-ggsn.cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "osmo-ggsn.cfg")
	if err := os.WriteFile(cfgPath, bytes.ReplaceAll(cfg, []byte("STATE_DIR"), []byte(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	var ggsnLog bytes.Buffer
	ggsn := exec.Command("ip", "netns", "exec", ns, "osmo-ggsn", "-c", cfgPath)
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
}

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
