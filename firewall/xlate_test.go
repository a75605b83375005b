package firewall

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/firewall/memport"
	"github.com/google/go-cmp/cmp"
)

// patBenchConfig is labConfig with the inside /24 split over four PAT
// rules, each with its own mapped address, so that a benchmark can create
// four pools' worth (4 x 64512) of UDP connections before exhausting them.
func patBenchConfig() Config {
	cfg := labConfig()
	cfg.NAT = cfg.NAT[:1]
	for q := range 4 {
		cfg.NAT = append(cfg.NAT, NATRule{Kind: NATDynamicPAT, RealInterface: "inside",
			Real:            netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(64 * q)}), 26),
			MappedInterface: "outside", Mapped: netip.AddrFrom4([4]byte{198, 19, 2, byte(100 + q)})})
	}
	return cfg
}

// benchHost returns the i-th of 160 inside hosts spread over the four
// quarters of the inside /24, avoiding the unit's and the static host's
// addresses.
func benchHost(i int) [4]byte {
	return [4]byte{198, 18, 1, byte(64*(i%4) + 10 + (i/4)%40)}
}

// newConnFrame rewrites frame (a UDP frame from client to farServer) to come
// from src:sport, keeping every checksum valid.
func newConnFrame(frame []byte, src [4]byte, sport uint16) {
	ip := header.IPv4(frame[header.EthernetLen:])
	u := header.UDP(ip[header.IPv4MinimumSize:])
	old := ip.SourceAddress()
	ip.SetSourceAddressWithChecksumUpdate(src)
	u.UpdateChecksumForAddress(old, src)
	u.SetSourcePortWithChecksumUpdate(sport)
}

// BenchmarkNewConnectionParallel measures new-connection setup (policy, a
// PAT allocation, insertion, the change records) from all cores at once:
// every packet is a new UDP flow from a distinct (host, port), so each
// takes one new PAT xlate. The four pools hold 258048 ports; the run fails
// rather than measure drops if it needs more (use -benchtime 200000x).
func BenchmarkNewConnectionParallel(b *testing.B) {
	l := resolvedLab(b, patBenchConfig())
	l.fw.onChange = func(Change) {}
	for _, it := range l.fw.ifs {
		it.port = memport.NewDiscard()
	}
	tmpl := udpFrame(client.mac, fwInsideMAC, client.ip, farServer, 1024, 53, "")
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		frame := make([]byte, len(tmpl))
		for pb.Next() {
			i := int(next.Add(1) - 1)
			copy(frame, tmpl)
			newConnFrame(frame, benchHost(i), uint16(1024+i/160))
			l.fw.HandleFrame(ifInside, frame)
		}
	})
	b.StopTimer()
	if d := l.fw.Drops(); len(d) != 0 {
		b.Fatalf("drops %v after %d connections: the pools are exhausted, lower -benchtime", d, next.Load())
	}
	b.ReportMetric(float64(l.fw.XlateCount()), "xlates")
}

// fillPATPool fills the UDP pool of the lab's inside PAT rule (mapped to
// the outside address, ports 1024-65535) with xlates of many hosts, none
// of them client, the way a standby's bulk sync would.
func fillPATPool(tb testing.TB, l *lab) {
	tb.Helper()
	now := l.fw.now()
	for j := range 65535 - 1024 + 1 {
		rec := XlateRecord{Kind: NATDynamicPAT, Proto: header.ProtocolUDP,
			Real: [4]byte{198, 18, 1, byte(100 + j%100)}, RealPort: uint16(1024 + j/100),
			Mapped: outsideIP, MappedPort: uint16(1024 + j),
			RealInterface: "inside", MappedInterface: "outside", Created: now}
		if err := l.fw.ApplyChange(Change{Table: TableXlate, Op: OpUpsert, Xlate: rec}); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkNewConnectionPoolFull measures what a new flow costs once the
// PAT pool is exhausted: every packet, from all cores, is a new flow
// that finds no port and is dropped.
func BenchmarkNewConnectionPoolFull(b *testing.B) {
	l := resolvedLab(b, labConfig())
	fillPATPool(b, l)
	l.fw.onChange = func(Change) {}
	for _, it := range l.fw.ifs {
		it.port = memport.NewDiscard()
	}
	tmpl := udpFrame(client.mac, fwInsideMAC, client.ip, farServer, 1024, 53, "")
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		frame := make([]byte, len(tmpl))
		for pb.Next() {
			i := int(next.Add(1) - 1)
			copy(frame, tmpl)
			newConnFrame(frame, client.ip, uint16(1024+i%60000))
			l.fw.HandleFrame(ifInside, frame)
		}
	})
	b.StopTimer()
	if got := l.fw.Drops()[DropNATExhausted]; got != uint64(next.Load()) {
		b.Fatalf("%d nat-exhausted drops for %d packets", got, next.Load())
	}
}

// udpOut sends a new UDP flow from h's port sport to the server and
// returns the mapped source it left with ("" if it was dropped).
func (l *lab) udpOut(h host, sport uint16) string {
	out := l.in(ifInside, udpFrame(h.mac, fwInsideMAC, h.ip, server.ip, sport, 53, "q"))
	if len(out[ifOutside]) != 1 {
		return ""
	}
	return decode(l.t, out[ifOutside][0]).Src
}

// expireAll idles every connection and PAT xlate out.
func (l *lab) expireAll() {
	l.clk.Advance(l.fw.timeouts.UDP + time.Second)
	for range numConnShards/sweepShardsPerCall + 1 {
		l.fw.Maintain()
	}
	l.clk.Advance(l.fw.timeouts.PATXlate + time.Second)
	l.fw.Maintain()
}

func TestPATFullPoolFailsWithoutScanning(t *testing.T) {
	l := resolvedLab(t, labConfig())
	fillPATPool(t, l)
	before := l.fw.xlates.probes.Load()
	if got := l.udpOut(client, 40000); got != "" {
		t.Fatalf("a flow left as %s with the pool full", got)
	}
	// The old allocator looked at all 64512 ports here.
	if n := l.fw.xlates.probes.Load() - before; n > 2*maxPoolProbes {
		t.Errorf("a failed allocation looked at %d bitmap words, want at most %d", n, 2*maxPoolProbes)
	}
	if d := cmp.Diff(map[string]uint64{"nat-exhausted": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

func TestPortPoolFindFree(t *testing.T) {
	var p portPool
	var probes uint64
	for port := 1024; port <= 65535; port++ {
		if port != 1500 && port != 65535 {
			p.set(uint16(port))
		}
	}
	for _, tc := range []struct {
		from, to uint16
		want     uint16
		ok       bool
	}{
		{1024, 65535, 1500, true},
		{1501, 65535, 65535, true},
		{1501, 65534, 0, false},
		{1024, 1499, 0, false},
		{1500, 1500, 1500, true},
		{0, 10, 0, true},
		{2000, 1000, 0, false},
	} {
		probes = 0
		got, ok := p.findFree(tc.from, tc.to, &probes)
		if got != tc.want || ok != tc.ok {
			t.Errorf("findFree(%d, %d) = %d, %v; want %d, %v", tc.from, tc.to, got, ok, tc.want, tc.ok)
		}
		if probes > maxPoolProbes {
			t.Errorf("findFree(%d, %d) looked at %d words, want at most %d", tc.from, tc.to, probes, maxPoolProbes)
		}
	}
	p.clear(40000)
	if got, ok := p.findFree(1501, 65534, &probes); !ok || got != 40000 {
		t.Errorf("after clearing 40000: findFree = %d, %v", got, ok)
	}
	if p.n != 65535-1024+1-2-1 {
		t.Errorf("n = %d", p.n)
	}
}

func TestPATHostQuota(t *testing.T) {
	cfg := labConfig()
	cfg.Limits.PATPortsPerHost = 3
	l := resolvedLab(t, cfg)
	for i := range 3 {
		if l.udpOut(client, 6000+uint16(i)) == "" {
			t.Fatalf("flow %d of client dropped within its quota: %v", i, l.drops())
		}
	}
	if got := l.udpOut(client, 6003); got != "" {
		t.Fatalf("a fourth port for client (%s) beyond its quota of 3", got)
	}
	// A flow on a port the host already holds needs no new one.
	if l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, farServer, 6000, 53, "q"))[ifOutside] == nil {
		t.Errorf("a new flow reusing client's xlate was dropped")
	}
	if l.udpOut(client2, 6003) == "" {
		t.Errorf("client2 got no port while client is at its quota")
	}
	if d := cmp.Diff(map[string]uint64{"nat-host-quota": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	l.expireAll()
	if l.udpOut(client, 6003) == "" {
		t.Errorf("client still refused after its xlates idled out")
	}
}

func TestPATReleasedPortsAreReused(t *testing.T) {
	cfg := labConfig()
	cfg.NAT[1].PortLow, cfg.NAT[1].PortHigh = 2000, 2001
	l := resolvedLab(t, cfg)
	for round := range 3 {
		got := map[string]bool{}
		for i := range 2 {
			m := l.udpOut(client, 6000+uint16(10*round+i))
			if m == "" {
				t.Fatalf("round %d: flow %d dropped: %v", round, i, l.drops())
			}
			got[m] = true
		}
		want := map[string]bool{ap(outsideIP, 2000): true, ap(outsideIP, 2001): true}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("round %d: mapped sources (-want +got):\n%s", round, d)
		}
		if m := l.udpOut(client, 6009); m != "" {
			t.Fatalf("round %d: a third flow left as %s from a pool of two", round, m)
		}
		l.expireAll()
		if n := l.fw.XlateCount(); n != 1 {
			t.Fatalf("round %d: %d xlates after expiry, want the static one", round, n)
		}
	}
}

// TestPATStandbyHoldsThePortsOfAppliedRecords checks that the standby's
// pool is built from the replicated records alone: it holds the same
// xlates (equal digests), a port that an applied record took is not handed
// out again after takeover, and an applied deletion frees it.
func TestPATStandbyHoldsThePortsOfAppliedRecords(t *testing.T) {
	cfg := labConfig()
	cfg.NAT[1].PortLow, cfg.NAT[1].PortHigh = 3000, 3002
	a := resolvedLab(t, cfg)
	b := resolvedLab(t, cfg)
	b.fw.SetActive(false)
	a.changes = nil
	a.udpOut(client, 3000) // keeps its real port
	a.udpOut(client, 5000) // takes the next free one
	for _, c := range a.changes {
		if err := b.fw.ApplyChange(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, tb := range Tables {
		if da, db := a.fw.Digest(tb), b.fw.Digest(tb); da != db {
			t.Errorf("%s digest: active %#x, standby %#x", tb, da, db)
		}
	}
	b.fw.SetActive(true)
	b.changes = nil
	if got, want := b.udpOut(client2, 3000), ap(outsideIP, 3002); got != want {
		t.Errorf("after takeover a new flow left as %q, want %q, the one port no replicated xlate holds", got, want)
	}
	if got := b.udpOut(client2, 3001); got != "" {
		t.Errorf("a fourth port (%s) from a pool of three", got)
	}
	// The old active's deletions free the ports on the new one.
	a.changes = nil
	a.expireAll()
	for _, c := range a.changes {
		if err := b.fw.ApplyChange(c); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.udpOut(client2, 3001); got == "" {
		t.Errorf("no port after the replicated xlates were deleted: %v", b.drops())
	}
}

// TestPATHostQuotaCountsPortsInUse: the quota bounds the ports a host's
// connections use, not the idle xlates waiting out timeout pat-xlate. A
// client that opens and closes connections one after another is never
// refused (counting idle xlates capped a busy client at quota/pat-xlate new
// connections a second).
func TestPATHostQuotaCountsPortsInUse(t *testing.T) {
	cfg := labConfig()
	cfg.Limits.PATPortsPerHost = 3
	cfg.Timeouts.UDP = time.Second
	l := resolvedLab(t, cfg)
	for i := range 12 {
		if l.udpOut(client, 7000+uint16(i)) == "" {
			t.Fatalf("flow %d refused: %v", i, l.drops())
		}
		// The connection ends; its xlate idles (pat-xlate is 30 s).
		l.clk.Advance(2 * time.Second)
		for range numConnShards/sweepShardsPerCall + 1 {
			l.fw.Maintain()
		}
	}
	if got := l.fw.XlateCount(); got < 4 {
		t.Errorf("%d xlates: the idle ones should still hold their ports", got)
	}
	if d := l.drops(); len(d) != 0 {
		t.Errorf("drops %v, want none", d)
	}
}

// closeByFINs ends client h's flow from sport to the server (port 443,
// opened by syn and handshake) the ordinary way: the client's FIN, the
// server's ACK and FIN, the client's last ACK. The flow is then in
// TIME_WAIT.
func (l *lab) closeByFINs(h host, sport uint16) {
	l.in(ifInside, l.tcpFrame(h.mac, fwInsideMAC, h.ip, server.ip, sport, 443, FIN|ACK, ""))
	l.in(ifOutside, l.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 443, sport, ACK, ""))
	l.in(ifOutside, l.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 443, sport, FIN|ACK, ""))
	l.in(ifInside, l.tcpFrame(h.mac, fwInsideMAC, h.ip, server.ip, sport, 443, ACK, ""))
}

// hostQuotaUse returns how many PAT xlates in use the quota counts for h.
func (l *lab) hostQuotaUse(h host) int {
	s := l.fw.xlates.shardOf(h.ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.perHost[h.ip])
}

// TestPATQuotaSparesTimeWait: connections closed by the FIN exchange wait
// in TIME_WAIT without counting against their host's PAT quota, so a host
// that closes its connections properly is not capped at quota/time-wait
// new connections a second; live connections still count. A standby fed
// the same records counts the same.
func TestPATQuotaSparesTimeWait(t *testing.T) {
	cfg := labConfig()
	cfg.Limits.PATPortsPerHost = 3
	l := resolvedLab(t, cfg)
	standby := newLab(t, labConfig())
	l.fw.onChange = func(c Change) {
		if err := standby.fw.ApplyChange(c); err != nil {
			t.Errorf("standby: apply %s %s: %v", c.Table, c.Op, err)
		}
	}
	for p := uint16(7000); p < 7010; p++ {
		if !l.syn(client, p) {
			t.Fatalf("SYN from port %d dropped with every earlier flow in TIME_WAIT: %v (quota use %d)", p, l.drops(), l.hostQuotaUse(client))
		}
		l.handshake(client, p)
		l.closeByFINs(client, p)
	}
	states := l.connStates()
	if len(states) != 10 || !strings.HasSuffix(states[0], "TIME_WAIT") {
		t.Fatalf("connections %v, want 10 in TIME_WAIT", states)
	}
	if got := l.hostQuotaUse(client); got != 0 {
		t.Errorf("quota use %d with every connection in TIME_WAIT, want 0", got)
	}
	if got := l.fw.XlateCount(); got != 10+1 { // and the static one
		t.Errorf("%d xlates, want 11: a TIME_WAIT flow's port stays reserved", got)
	}
	// Live connections still count.
	for p := uint16(8000); p < 8003; p++ {
		if !l.syn(client, p) {
			t.Fatalf("SYN from port %d dropped within the quota: %v", p, l.drops())
		}
		l.handshake(client, p)
	}
	if l.syn(client, 8003) {
		t.Errorf("a fourth live connection of client was forwarded beyond its quota of 3")
	}
	if got, want := standby.hostQuotaUse(client), l.hostQuotaUse(client); got != want {
		t.Errorf("standby counts %d ports in use for client, active %d", got, want)
	}
	// A bulk sync of TIME_WAIT connections counts as the stream did.
	fresh := newLab(t, labConfig())
	bulk(t, l.fw, fresh.fw)
	if got, want := fresh.hostQuotaUse(client), l.hostQuotaUse(client); got != want {
		t.Errorf("after a bulk sync the standby counts %d ports in use for client, active %d", got, want)
	}
}

// TestTimeWaitParkedOnce: two connections from one client port share its
// PAT xlate; the one that closes parks its reference on entering TIME_WAIT
// and, when it expires, releases it as parked, so the other still holds
// the port and the quota still counts it.
func TestTimeWaitParkedOnce(t *testing.T) {
	l := resolvedLab(t, labConfig())
	for _, dport := range []uint16{443, 8443} {
		l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 9000, dport, SYN, ""))
		l.in(ifOutside, l.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, dport, 9000, SYN|ACK, ""))
		l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 9000, dport, ACK, ""))
	}
	l.closeByFINs(client, 9000) // the one to 443
	l.clk.Advance(31 * time.Second)
	l.sweepAll() // the TIME_WAIT connection expires; the other is live
	if d := cmp.Diff([]string{"tcp 198.18.1.10:9000 ESTABLISHED"}, l.connStates()); d != "" {
		t.Fatalf("connections (-want +got):\n%s", d)
	}
	if got := l.hostQuotaUse(client); got != 1 {
		t.Errorf("quota use %d with one live connection on the shared xlate, want 1", got)
	}
	l.expireAll()
	if got := l.fw.XlateCount(); got != 2 { // the shared one and the static one
		t.Errorf("%d xlates; the live connection's must stay", got)
	}
}
