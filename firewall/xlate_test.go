package firewall

import (
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/firewall/memport"
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
