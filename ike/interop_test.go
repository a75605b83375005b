package ike_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/falab/falab/esp"
	"github.com/falab/falab/ike"
	"github.com/falab/falab/topo"
)

// Interop against strongSwan: charon initiates to this package's responder
// across a veth between two namespaces. Setup facts (issue 13): charon runs
// under `ip netns exec` with a private tmpfs on /run, its own
// STRONGSWAN_CONF, load_modular = no with an explicit plugin list that has
// kdf and kernel-libipsec and not ha, and install_routes = yes.

const (
	charonPath   = "/usr/lib/ipsec/charon"
	ssAddr       = "198.18.200.1"
	responderIP  = "198.18.200.2"
	interopPSK   = "falab-interop-psk"
	interopPkgs  = "strongswan-charon strongswan-swanctl libstrongswan-standard-plugins libcharon-extra-plugins"
	charonPlugin = "random nonce openssl aes sha1 sha2 hmac gmp gcm kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici updown"
)

func skipUnlessInterop(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping in -short mode: creates network namespaces and runs strongSwan's charon")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root for network namespaces")
	}
	if _, err := os.Stat(charonPath); err != nil {
		t.Skipf("skipping: %s missing; install %s", charonPath, interopPkgs)
	}
	if _, err := exec.LookPath("swanctl"); err != nil {
		t.Skipf("skipping: swanctl missing; install %s", interopPkgs)
	}
}

// swanPair is the wiring: namespace ss runs charon, namespace rs this
// package's responder on UDP 500 and 4500.
type swanPair struct {
	t      *testing.T
	ss, rs string
	dir    string
	charon *exec.Cmd
}

func newSwanPair(t *testing.T) *swanPair {
	id := fmt.Sprintf("%d-%d", os.Getpid()%100000, time.Now().UnixNano()%100000)
	p := &swanPair{t: t, ss: "falab-ikeit-" + id + "-ss", rs: "falab-ikeit-" + id + "-rs", dir: t.TempDir()}
	t.Cleanup(func() {
		for _, ns := range []string{p.ss, p.rs} {
			if err := topo.RemoveNamespace(ns); err != nil {
				t.Errorf("remove %s: %v", ns, err)
			}
		}
	})
	plan := topo.Plan{
		Namespaces: []topo.Namespace{{Name: p.ss}, {Name: p.rs}},
		Links: []topo.Link{{
			A: topo.Endpoint{Namespace: p.ss, Ifname: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix(ssAddr + "/24")}},
			B: topo.Endpoint{Namespace: p.rs, Ifname: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix(responderIP + "/24")}},
		}},
	}
	if err := topo.Deploy(context.Background(), plan, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	// An address inside the branch's protected network, for the source
	// of the route strongSwan installs towards the tunnel.
	if out, err := exec.Command("ip", "netns", "exec", p.ss, "ip", "addr", "add", "10.2.0.1/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("address on lo: %v\n%s", err, out)
	}
	return p
}

// listenIn opens a UDP socket inside namespace ns. The socket stays in ns
// whatever thread later uses it.
func listenIn(ns string, ap netip.AddrPort) (*net.UDPConn, error) {
	runtime.LockOSThread()
	origin, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer origin.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	c, lerr := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(ap))
	if err := netns.Set(origin); err != nil {
		return nil, errors.Join(lerr, err) // the thread stays locked and dies
	}
	runtime.UnlockOSThread()
	return c, lerr
}

func (p *swanPair) writeConf(name, text string) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// startCharon runs charon in namespace ss and waits for its vici socket.
func (p *swanPair) startCharon() {
	t := p.t
	conf := p.writeConf("strongswan.conf", fmt.Sprintf(`charon {
  load_modular = no
  load = %s
  install_routes = yes
  retransmit_timeout = 1.0
  retransmit_tries = 3
  plugins {
    vici {
      socket = unix://%s/charon.vici
    }
  }
  filelog {
    test {
      path = %s/charon.log
      default = 1
      ike = 2
      flush_line = yes
    }
  }
}
swanctl {
  load = random openssl pem pkcs1 x509 pubkey
}
`, charonPlugin, p.dir, p.dir))
	out, err := os.Create(filepath.Join(p.dir, "charon.out"))
	if err != nil {
		t.Fatal(err)
	}
	p.charon = exec.Command("ip", "netns", "exec", p.ss, "sh", "-c", "mount -t tmpfs tmpfs /run && exec "+charonPath)
	p.charon.Env = append(os.Environ(), "STRONGSWAN_CONF="+conf)
	p.charon.Stdout, p.charon.Stderr = out, out
	if err := p.charon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// By PID only: sh exec'd charon, so the child is charon itself.
		p.charon.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.charon.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.charon.Process.Kill()
			<-done
		}
		out.Close()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(p.dir, "charon.log"))
			t.Logf("charon log:\n%s", log)
		}
	})
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(p.dir, "charon.vici")); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(p.dir, "charon.out"))
	t.Fatalf("charon did not open its vici socket:\n%s", b)
}

// swanctl runs swanctl against our charon and returns its output.
func (p *swanPair) swanctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// --uri is an option of the command, so it goes after it.
	args = append([]string{args[0], "--uri", "unix://" + p.dir + "/charon.vici"}, args[1:]...)
	cmd := exec.CommandContext(ctx, "swanctl", args...)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(p.dir, "strongswan.conf"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *swanPair) mustSwanctl(args ...string) string {
	p.t.Helper()
	out, err := p.swanctl(args...)
	if err != nil {
		p.t.Fatalf("swanctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// server feeds datagrams from UDP 500 and 4500 to the current responder,
// which the test may swap (the failover). It counts what it answered.
type server struct {
	mu        sync.Mutex
	cur       *ike.Responder
	exchanges map[ike.ExchangeType]int
	retrans   int
	events    []ike.Event
	errs      []error
	esp       int // ESP packets decapsulated
	espOut    int // echo replies encapsulated
	espErrs   []error
	keepalive int
	dropNext  bool // lose the next reply, as a unit that dies right after answering
	lost      int
	children  map[uint32]*espChild // by our inbound SPI
}

// espChild is the data plane of one child SA: libipsec's ESP-in-UDP is
// decapsulated, an ICMP echo request inside is answered through the tunnel.
type espChild struct {
	rec ike.ChildRecord
	in  *esp.Inbound
	out *esp.Outbound
}

func (s *server) serve(c *net.UDPConn, natT bool) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		data := buf[:n]
		if natT {
			switch {
			case n == 1 && data[0] == 0xff:
				s.mu.Lock()
				s.keepalive++
				s.mu.Unlock()
				continue
			case !esp.IsIKE(data):
				if reply := s.echo(data); reply != nil {
					c.WriteToUDPAddrPort(reply, from)
				}
				continue
			}
			data = data[4:]
		}
		local := netip.AddrPortFrom(netip.MustParseAddr(responderIP), uint16(c.LocalAddr().(*net.UDPAddr).Port))
		s.mu.Lock()
		res := s.cur.Handle(ike.Packet{Data: append([]byte(nil), data...), Local: local, Remote: from})
		if m, err := ike.ParseHeader(data); err == nil && res.Reply != nil {
			s.exchanges[m.Exchange]++
		}
		if res.Retransmit {
			s.retrans++
		}
		s.events = append(s.events, res.Events...)
		for _, ev := range res.Events {
			s.installChild(ev)
		}
		if res.Err != nil {
			s.errs = append(s.errs, res.Err)
		}
		lose := s.dropNext && res.Reply != nil
		if lose {
			s.dropNext = false
			s.lost++
		}
		s.mu.Unlock()
		if res.Reply != nil && !lose {
			out := res.Reply
			if natT {
				out = append([]byte{0, 0, 0, 0}, out...)
			}
			c.WriteToUDPAddrPort(out, from)
		}
	}
}

func (s *server) count(ex ike.ExchangeType) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exchanges[ex]
}

func responderConfig() ike.Config {
	return ike.Config{
		PSK:     []byte(interopPSK),
		LocalID: ike.Identity{Type: ike.IDIPv4, Data: netip.MustParseAddr(responderIP).AsSlice()},
		IKESuites: []ike.Suite{
			{Encr: ike.EncrAESGCM16, KeyBits: 256, PRF: ike.PRFHMACSHA256, DH: ike.DHCurve25519},
			{Encr: ike.EncrAESCBC, KeyBits: 256, Integ: ike.IntegSHA256, PRF: ike.PRFHMACSHA256, DH: ike.DHMODP2048},
			{Encr: ike.EncrAESGCM16, KeyBits: 128, PRF: ike.PRFHMACSHA256, DH: ike.DHECP256},
		},
		ChildSuites: []ike.ChildSuite{{Encr: ike.EncrAESGCM16, KeyBits: 128}, {Encr: ike.EncrAESGCM16, KeyBits: 256}},
		LocalNets:   []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")},
		RemoteNets:  []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")},
	}
}

var (
	reIKE   = regexp.MustCompile(`(?m)^(\w+): #\d+, ESTABLISHED, IKEv2, ([0-9a-f]{16})_i\*? ([0-9a-f]{16})_r`)
	reChild = regexp.MustCompile(`(?m)^\s+net: #\d+, reqid \d+, INSTALLED, (\S+), ESP:(\S+)`)
	reIn    = regexp.MustCompile(`(?m)^\s+in\s+([0-9a-f]{8})`)
	reOut   = regexp.MustCompile(`(?m)^\s+out\s+([0-9a-f]{8})`)
	reAlgs  = regexp.MustCompile(`(?m)^\s+(AES\S+)$`)
)

// sasOf parses `swanctl --list-sas` for the IKE SPIs, the child's SPIs
// (strongSwan's in = our out) and the algorithms.
type swanSA struct {
	spir, childIn, childOut, ikeAlgs, espAlgs, mode string
}

func (p *swanPair) listSAs() swanSA {
	p.t.Helper()
	out := p.mustSwanctl("--list-sas")
	var s swanSA
	if m := reIKE.FindStringSubmatch(out); m != nil {
		s.spir = m[3]
	}
	if loc := reChild.FindStringSubmatchIndex(out); loc != nil {
		s.mode, s.espAlgs = out[loc[2]:loc[3]], out[loc[4]:loc[5]]
		child := out[loc[1]:] // the INSTALLED child's lines, not a rekeyed one's
		if m := reIn.FindStringSubmatch(child); m != nil {
			s.childIn = m[1]
		}
		if m := reOut.FindStringSubmatch(child); m != nil {
			s.childOut = m[1]
		}
	}
	if m := reAlgs.FindStringSubmatch(out); m != nil {
		s.ikeAlgs = m[1]
	}
	p.t.Logf("swanctl --list-sas:\n%s", out)
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 150; i++ {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestInteropStrongSwan: strongSwan initiates an IKE SA and a child to
// responder A; A answers a DPD; A's records are imported into responder B,
// which then answers DPDs, a child rekey (with PFS), an IKE SA rekey and
// the final Delete, all as strongSwan sees them.
func TestInteropStrongSwan(t *testing.T) {
	skipUnlessInterop(t)
	for _, tc := range []struct{ ike, esp string }{
		{"aes256gcm16-prfsha256-x25519", "aes128gcm16-x25519"},
		{"aes256-sha256-modp2048", "aes256gcm16"},
	} {
		t.Run(tc.ike, func(t *testing.T) { interop(t, tc.ike, tc.esp) })
	}
}

func interop(t *testing.T, ikeProposal, espProposal string) {
	p := newSwanPair(t)
	a, b := ike.NewResponder(responderConfig()), ike.NewResponder(responderConfig())
	srv := &server{cur: a, exchanges: map[ike.ExchangeType]int{}, children: map[uint32]*espChild{}}
	for _, port := range []uint16{500, 4500} {
		c, err := listenIn(p.rs, netip.AddrPortFrom(netip.MustParseAddr(responderIP), port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go srv.serve(c, port == 4500)
	}
	p.startCharon()
	p.writeConf("swanctl.conf", fmt.Sprintf(`connections {
  lab {
    version = 2
    local_addrs = %s
    remote_addrs = %s
    proposals = %s
    dpd_delay = 2s
    rekey_time = 0
    local {
      auth = psk
      id = branch
    }
    remote {
      auth = psk
      id = %s
    }
    children {
      net {
        local_ts = 10.2.0.0/16
        remote_ts = 10.1.0.0/16
        esp_proposals = %s
        rekey_time = 0
      }
    }
  }
}
secrets {
  ike-lab {
    id-a = branch
    id-b = %s
    secret = "%s"
  }
}
`, ssAddr, responderIP, ikeProposal, responderIP, espProposal, responderIP, interopPSK))
	p.mustSwanctl("--load-all", "--file", filepath.Join(p.dir, "swanctl.conf"))
	p.mustSwanctl("--initiate", "--child", "net", "--timeout", "20")
	first := p.listSAs()
	if first.spir == "" || first.childIn == "" {
		t.Fatalf("strongSwan shows no established IKE SA with an installed child")
	}
	srv.mu.Lock()
	spis := a.SAs()
	srv.mu.Unlock()
	if len(spis) != 1 || fmt.Sprintf("%016x", spis[0]) != first.spir {
		t.Fatalf("our SPIr %x, strongSwan's %s", spis, first.spir)
	}
	t.Logf("negotiated: IKE %s, ESP %s (%s)", first.ikeAlgs, first.espAlgs, first.mode)
	checkChildSPIs(t, a, spis[0], first)
	if err := p.ping(); err != nil {
		t.Errorf("ping through the tunnel (responder A): %v", err)
	}

	waitFor(t, "a DPD answered by A", func() bool { return srv.count(ike.ExchangeInformational) >= 1 })

	// Failover: A answers one more DPD but the answer is lost (A dies
	// right after replicating); B takes over from A's records, as a
	// standby would, and must answer strongSwan's retransmission with
	// A's cached response.
	srv.mu.Lock()
	srv.dropNext = true
	srv.mu.Unlock()
	waitFor(t, "A's lost answer", func() bool { srv.mu.Lock(); defer srv.mu.Unlock(); return srv.lost == 1 })
	srv.mu.Lock()
	for _, spi := range a.SAs() {
		if err := b.Import(a.SA(spi).Export()); err != nil {
			t.Fatal(err)
		}
	}
	srv.cur = b
	if err := srv.takeOverLeases(); err != nil {
		t.Fatal(err)
	}
	before := srv.exchanges[ike.ExchangeInformational]
	srv.mu.Unlock()
	waitFor(t, "B answering the retransmission", func() bool { srv.mu.Lock(); defer srv.mu.Unlock(); return srv.retrans >= 1 })
	if err := p.ping(); err != nil {
		t.Errorf("ping through the tunnel after the takeover: %v", err)
	}
	waitFor(t, "a DPD answered by B", func() bool { return srv.count(ike.ExchangeInformational) > before })

	p.mustSwanctl("--rekey", "--child", "net")
	waitFor(t, "the child rekey and the old child's Delete", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		n := 0
		for _, e := range srv.events {
			if e.Kind == ike.EventChildDown {
				n++
			}
		}
		return srv.exchanges[ike.ExchangeCreateChildSA] >= 1 && n >= 1
	})
	rekeyed := p.listSAs()
	if rekeyed.spir != first.spir || rekeyed.childIn == first.childIn || rekeyed.childIn == "" {
		t.Fatalf("after child rekey: IKE %s (was %s), child in %s (was %s)", rekeyed.spir, first.spir, rekeyed.childIn, first.childIn)
	}
	srv.mu.Lock()
	checkChildSPIs(t, b, spis[0], rekeyed)
	srv.mu.Unlock()
	if err := p.ping(); err != nil {
		t.Errorf("ping through the rekeyed child: %v", err)
	}

	p.mustSwanctl("--rekey", "--ike", "lab")
	waitFor(t, "the IKE rekey", func() bool { return srv.count(ike.ExchangeCreateChildSA) >= 2 })
	waitFor(t, "strongSwan on the new IKE SA", func() bool {
		s := p.listSAs()
		return s.spir != "" && s.spir != first.spir
	})
	srv.mu.Lock()
	before = srv.exchanges[ike.ExchangeInformational]
	srv.mu.Unlock()
	waitFor(t, "a DPD on the new IKE SA", func() bool { return srv.count(ike.ExchangeInformational) > before })

	p.mustSwanctl("--terminate", "--ike", "lab", "--timeout", "10")
	waitFor(t, "the IKE SA deleted at B", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(b.SAs()) == 0
	})
	srv.mu.Lock()
	defer srv.mu.Unlock()
	t.Logf("exchanges answered %v, retransmits %d, keepalives %d, ESP in %d, ESP out %d, dropped IKE %v, ESP errors %v",
		srv.exchanges, srv.retrans, srv.keepalive, srv.esp, srv.espOut, srv.errs, srv.espErrs)
	if log, _ := os.ReadFile(filepath.Join(p.dir, "charon.log")); bytes.Contains(log, []byte("retransmit")) {
		t.Logf("charon retransmitted a request (see log)")
	}
}

// checkChildSPIs: the child strongSwan has installed is the one responder
// r reports (strongSwan's inbound SPI is our outbound one).
func checkChildSPIs(t *testing.T, r *ike.Responder, spir uint64, s swanSA) {
	t.Helper()
	cs := r.SA(spir).Children()
	if len(cs) != 1 || fmt.Sprintf("%08x", cs[0].OutSPI) != s.childIn || fmt.Sprintf("%08x", cs[0].InSPI) != s.childOut {
		t.Fatalf("our children %+v, strongSwan's in %s out %s", cs, s.childIn, s.childOut)
	}
}

// installChild follows the responder's child events with ESP SAs.
// Caller holds s.mu.
func (s *server) installChild(ev ike.Event) {
	switch ev.Kind {
	case ike.EventChildUp, ike.EventChildRekeyed:
		c := ev.Child
		in, err := esp.NewInbound(c.InSPI, c.InKey, c.InSalt, 1024)
		if err != nil {
			s.espErrs = append(s.espErrs, err)
			return
		}
		out, err := esp.NewOutbound(c.OutSPI, c.OutKey, c.OutSalt, 1)
		if err != nil {
			s.espErrs = append(s.espErrs, err)
			return
		}
		out.Grant(1000)
		s.children[c.InSPI] = &espChild{rec: c, in: in, out: out}
	case ike.EventChildDown:
		delete(s.children, ev.Child.InSPI)
	}
}

// takeOverLeases is the failover of the data plane, as a new active would
// do it: each outbound SA restarts at its acknowledged lease limit (so
// sequence numbers and GCM nonces only move forward) and each inbound SA
// starts from the synced top of its replay window.
func (s *server) takeOverLeases() error {
	for spi, c := range s.children {
		r := c.rec
		out, err := esp.NewOutbound(r.OutSPI, r.OutKey, r.OutSalt, c.out.Limit())
		if err != nil {
			return err
		}
		out.Grant(c.out.Limit() + 1000)
		in, err := esp.NewInbound(r.InSPI, r.InKey, r.InSalt, 1024)
		if err != nil {
			return err
		}
		in.Window().Advance(c.in.Window().Top())
		s.children[spi] = &espChild{rec: r, in: in, out: out}
	}
	return nil
}

// echo decapsulates an ESP packet and, if it holds an ICMP echo request,
// returns the encapsulated echo reply.
func (s *server) echo(pkt []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(pkt) < 8 {
		return nil
	}
	c := s.children[uint32(pkt[0])<<24|uint32(pkt[1])<<16|uint32(pkt[2])<<8|uint32(pkt[3])]
	if c == nil {
		s.espErrs = append(s.espErrs, fmt.Errorf("ESP for unknown SPI %x", pkt[:4]))
		return nil
	}
	inner, err := c.in.Decap(nil, pkt)
	if err != nil {
		s.espErrs = append(s.espErrs, err)
		return nil
	}
	s.esp++
	ihl := int(inner[0]&0x0f) * 4
	if len(inner) < ihl+8 || inner[9] != 1 || inner[ihl] != 8 {
		return nil
	}
	reply := append([]byte(nil), inner...)
	copy(reply[12:16], inner[16:20]) // swapping the addresses keeps the header checksum
	copy(reply[16:20], inner[12:16])
	icmp := reply[ihl:]
	icmp[0], icmp[2], icmp[3] = 0, 0, 0
	sum := checksum(icmp)
	icmp[2], icmp[3] = byte(sum>>8), byte(sum)
	out, err := c.out.Encap(nil, reply)
	if err != nil {
		s.espErrs = append(s.espErrs, err)
		return nil
	}
	s.espOut++
	return out
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// ping sends echo requests from the branch's protected address to ours
// through strongSwan's tunnel.
func (p *swanPair) ping() error {
	out, err := exec.Command("ip", "netns", "exec", p.ss, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", "10.2.0.1", "10.1.0.1").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v\n%s", err, out)
	}
	return nil
}
