package labbench

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/falab/falab/firewall"
	"github.com/falab/falab/firewall/header"
)

// The memory figure is the data plane's own: an in-process firewall (the
// same package the units run), fed synthetic SYNs through HandleFrame, so
// that the heap it measures holds nothing but the tables. No port is
// attached: each SYN makes its connection and xlate, and then, with nowhere
// to go, is dropped at egress (no-port). That keeps test fakes out of the
// binary and sends nothing anywhere.

var (
	memInsideMAC  = [6]byte{0x02, 0xfa, 0, 0, 1, 1}
	memOutsideMAC = [6]byte{0x02, 0xfa, 0, 0, 2, 1}
	memClientMAC  = [6]byte{0x02, 0xaa, 0, 0, 1, 10}
	memRouterIP   = [4]byte{198, 18, 2, 254}
)

// memConfig is the default lab's shape: inside hosts behind PAT on the
// outside address, and the far servers behind a router on the outside.
func memConfig() firewall.Config {
	return firewall.Config{
		Interfaces: []firewall.InterfaceConfig{
			{Name: "inside", SecurityLevel: 100, Prefix: netip.MustParsePrefix("198.18.1.1/24"), StandbyAddr: netip.MustParseAddr("198.18.1.2"),
				ActiveMAC: memInsideMAC[:], StandbyMAC: memInsideMAC[:]},
			{Name: "outside", SecurityLevel: 0, Prefix: netip.MustParsePrefix("198.18.2.1/24"), StandbyAddr: netip.MustParseAddr("198.18.2.2"),
				ActiveMAC: memOutsideMAC[:], StandbyMAC: memOutsideMAC[:]},
		},
		Routes: []firewall.Route{{Interface: "outside", Prefix: netip.MustParsePrefix("198.19.0.0/16"), NextHop: netip.AddrFrom4(memRouterIP)}},
		NAT: []firewall.NATRule{
			{Kind: firewall.NATDynamicPAT, RealInterface: "inside", Real: netip.MustParsePrefix("198.18.1.0/24"), MappedInterface: "outside"},
		},
	}
}

// memResult is what fillConns measured.
type memResult struct {
	Conns, Xlates int
	HeapDelta     uint64
	Took          time.Duration
	Drops         map[firewall.DropReason]uint64
}

// fillConns creates n connections in an in-process firewall by feeding it
// SYNs from sources (address, port) pairs to destinations behind the
// router (n/sources of them), so that PAT needs only one xlate per source,
// and returns the heap the tables grew by.
func fillConns(ctx context.Context, n, sources int) (memResult, error) {
	clk := firewall.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	fw, err := firewall.New(memConfig(), firewall.Options{Clock: clk})
	if err != nil {
		return memResult{}, fmt.Errorf("in-process firewall: %w", err)
	}
	fw.SetActive(true)
	in, _ := fw.InterfaceIndex("inside")

	template := synFrame()
	frame := make([]byte, len(template))
	debug.FreeOSMemory()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for i := range n {
		if i%65536 == 0 && ctx.Err() != nil {
			return memResult{}, ctx.Err()
		}
		s, d := i%sources, i/sources
		src := [4]byte{198, 18, 1, byte(10 + s%200)}
		sport := uint16(20000 + s/200)
		dst := [4]byte{198, 19, byte(d >> 8), byte(d)}
		copy(frame, template)
		ip := header.IPv4(frame[header.EthernetLen:])
		ip.SetSourceAddress(src)
		ip.SetDestinationAddress(dst)
		ip.SetChecksum(0)
		ip.SetChecksum(ip.CalculateChecksum())
		tcp := header.TCP(ip[header.IPv4MinimumSize:])
		tcp.SetSourcePort(sport)
		tcp.SetChecksum(0)
		tcp.SetChecksum(tcp.CalculateChecksum(src, dst))
		fw.HandleFrame(in, frame)
	}
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	res := memResult{Conns: fw.ConnCount(), Xlates: fw.XlateCount(), Took: took, Drops: fw.Drops()}
	if m1.HeapAlloc > m0.HeapAlloc {
		res.HeapDelta = m1.HeapAlloc - m0.HeapAlloc
	}
	runtime.KeepAlive(fw)
	return res, nil
}

// synFrame is a TCP SYN from an inside host to port 443, addresses and
// source port to be filled in.
func synFrame() []byte {
	b := make([]byte, header.EthernetLen+header.IPv4MinimumSize+header.TCPMinimumSize)
	e := header.Ethernet(b)
	e.SetDestination(memInsideMAC[:])
	e.SetSource(memClientMAC[:])
	e.SetEtherType(header.EtherTypeIPv4)
	ip := header.IPv4(e.Payload())
	ip.SetVersionAndHeaderLength(header.IPv4MinimumSize)
	ip.SetTotalLength(uint16(len(ip)))
	ip.SetFlagsFragmentOffset(0x4000) // DF
	ip.SetTTL(64)
	ip.SetProtocol(header.ProtocolTCP)
	t := header.TCP(ip[header.IPv4MinimumSize:])
	t.SetDestinationPort(443)
	t.SetSequenceNumber(1000)
	t.SetDataOffset(header.TCPMinimumSize)
	t.SetFlags(header.TCPFlagSYN)
	t.SetWindowSize(65535)
	return b
}

// memoryPerConn is figure 5.
func (b *bench) memoryPerConn(ctx context.Context) []Figure {
	const item = 5
	const n, sources = 1_000_000, 10_000
	t := &Target{Op: "<=", Value: 256}
	name := "memory per connection (1M conns)"
	res, err := fillConns(ctx, n, sources)
	// Give the tables back before the rest of the run.
	defer debug.FreeOSMemory()
	if err != nil {
		return []Figure{notMeasured(item, "mem-per-conn", name, "B/conn", t, err)}
	}
	if res.Conns < n*99/100 {
		return []Figure{notMeasured(item, "mem-per-conn", name, "B/conn", t,
			fmt.Errorf("only %d of %d SYNs made a connection (drops %v)", res.Conns, n, res.Drops))}
	}
	per := float64(res.HeapDelta) / float64(res.Conns)
	return []Figure{measured(item, "mem-per-conn", name, "B/conn", per, t,
		fmt.Sprintf("in-process firewall, no port attached, %d TCP SYNs through HandleFrame (PAT, %d sources, %d xlates) in %.2f s; runtime.MemStats HeapAlloc delta %.1f MB / %d conns",
			n, sources, res.Xlates, res.Took.Seconds(), float64(res.HeapDelta)/1e6, res.Conns))}
}
