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

// The memory figure is the data plane's own: in-process firewalls (the
// same package the units run), an active fed synthetic handshakes through
// HandleFrame and a standby applying the active's change records as its
// state link would, so that the heap measured holds nothing but the
// tables. No port is attached: each segment is tracked (and makes its
// connection and xlate) and then, with nowhere to go, is dropped at
// transmit (no-port). That keeps test fakes out of the binary and sends
// nothing anywhere.
//
// The case measured is the realistic one: every connection from its own
// (host, source port), as real clients open them, so one PAT xlate per
// connection (an earlier figure let 100 connections share each xlate,
// which hid the xlate's cost). 1M such connections need 16 mapped
// addresses' worth of ports: the inside /24 is split into 16 /28s, each
// with its own PAT rule and mapped address.

var (
	memInsideMAC  = [6]byte{0x02, 0xfa, 0, 0, 1, 1}
	memOutsideMAC = [6]byte{0x02, 0xfa, 0, 0, 2, 1}
	memClientMAC  = [6]byte{0x02, 0xaa, 0, 0, 1, 10}
	memRouterMAC  = [6]byte{0x02, 0xaa, 0, 0, 2, 254}
	memRouterIP   = [4]byte{198, 18, 2, 254}
	memServerIP   = [4]byte{198, 19, 0, 1}
)

const (
	memBlocks        = 16 // /28s of the inside /24, one PAT rule each
	memHostsPerBlock = 12 // .3 to .14 of each /28 (not .255, the broadcast)
	memClientISN     = 1000
	memServerISN     = 5000
)

// memConfig is the default lab's shape, with the inside hosts behind 16
// PAT rules (see above), the far servers behind a router on the outside,
// and no limit that a million connections of 192 hosts would hit.
func memConfig() firewall.Config {
	cfg := firewall.Config{
		Interfaces: []firewall.InterfaceConfig{
			{Name: "inside", SecurityLevel: 100, Prefix: netip.MustParsePrefix("198.18.1.1/24"), StandbyAddr: netip.MustParseAddr("198.18.1.2"),
				ActiveMAC: memInsideMAC[:], StandbyMAC: memInsideMAC[:]},
			{Name: "outside", SecurityLevel: 0, Prefix: netip.MustParsePrefix("198.18.2.1/24"), StandbyAddr: netip.MustParseAddr("198.18.2.2"),
				ActiveMAC: memOutsideMAC[:], StandbyMAC: memOutsideMAC[:]},
		},
		Routes:           []firewall.Route{{Interface: "outside", Prefix: netip.MustParsePrefix("198.19.0.0/16"), NextHop: netip.AddrFrom4(memRouterIP)}},
		Limits:           firewall.Limits{PATPortsPerHost: -1, EmbryonicMax: -1, EmbryonicPerClient: -1},
		NoRandomSequence: true, // so that the server's SYN-ACK can be written without reading the SYN
	}
	for b := range memBlocks {
		cfg.NAT = append(cfg.NAT, firewall.NATRule{Kind: firewall.NATDynamicPAT, RealInterface: "inside",
			Real:            netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(16 * b)}), 28),
			MappedInterface: "outside", Mapped: netip.AddrFrom4([4]byte{198, 18, 2, byte(100 + b)})})
	}
	return cfg
}

// memClient returns the source of connection i: each i its own (host,
// port), spread over the blocks so that each PAT rule takes n/16.
func memClient(i int) ([4]byte, uint16) {
	b, k, q := i%memBlocks, (i/memBlocks)%memHostsPerBlock, i/(memBlocks*memHostsPerBlock)
	return [4]byte{198, 18, 1, byte(16*b + 3 + k)}, uint16(1024 + q)
}

// memResult is what fillConns measured.
type memResult struct {
	Conns, Xlates           int // on the active
	StandbyConns, Xlates2   int // on the standby
	Records                 int // change records the standby applied
	ActiveHeap, StandbyHeap uint64
	Took                    time.Duration
	Drops                   map[firewall.DropReason]uint64
}

// memPair is an active firewall whose change records a standby applies
// as they are made, and the last xlate record seen (the SYN's mapping).
type memPair struct {
	active, standby *firewall.Firewall
	records         int
	lastXlate       firewall.XlateRecord
	applyErr        error
}

func newMemPair() (*memPair, error) {
	clk := firewall.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p := &memPair{}
	var err error
	if p.standby, err = firewall.New(memConfig(), firewall.Options{Clock: clk}); err != nil {
		return nil, fmt.Errorf("in-process standby: %w", err)
	}
	onChange := func(c firewall.Change) {
		if c.Table == firewall.TableXlate {
			p.lastXlate = c.Xlate
		}
		if p.standby == nil {
			return
		}
		p.records++
		if err := p.standby.ApplyChange(c); err != nil && p.applyErr == nil {
			p.applyErr = err
		}
	}
	if p.active, err = firewall.New(memConfig(), firewall.Options{Clock: clk, OnChange: onChange}); err != nil {
		return nil, fmt.Errorf("in-process firewall: %w", err)
	}
	p.active.SetActive(true)
	return p, nil
}

// fillConns opens n TCP connections through an in-process active, each
// from its own (host, port) (one PAT xlate each), to ESTABLISHED (SYN,
// SYN-ACK, ACK), a standby applying the records, and returns the heap
// each holds: both are measured together, then the standby is let go and
// the active measured alone.
func fillConns(ctx context.Context, n int) (memResult, error) {
	p, err := newMemPair()
	if err != nil {
		return memResult{}, err
	}
	in, _ := p.active.InterfaceIndex("inside")
	out, _ := p.active.InterfaceIndex("outside")
	f := newSegmentWriter()
	debug.FreeOSMemory()
	var m0, m1, m2 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for i := range n {
		if i%65536 == 0 && ctx.Err() != nil {
			return memResult{}, ctx.Err()
		}
		src, sport := memClient(i)
		p.active.HandleFrame(in, f.segment(memClientMAC, memInsideMAC, src, memServerIP, sport, 443, memClientISN, 0, header.TCPFlagSYN))
		x := p.lastXlate
		p.active.HandleFrame(out, f.segment(memRouterMAC, memOutsideMAC, memServerIP, x.Mapped, 443, x.MappedPort, memServerISN, memClientISN+1, header.TCPFlagSYN|header.TCPFlagACK))
		p.active.HandleFrame(in, f.segment(memClientMAC, memInsideMAC, src, memServerIP, sport, 443, memClientISN+1, memServerISN+1, header.TCPFlagACK))
	}
	took := time.Since(start)
	if p.applyErr != nil {
		return memResult{}, fmt.Errorf("standby: %w", p.applyErr)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	res := memResult{Conns: p.active.ConnCount(), Xlates: p.active.XlateCount(),
		StandbyConns: p.standby.ConnCount(), Xlates2: p.standby.XlateCount(),
		Records: p.records, Took: took, Drops: p.active.Drops()}
	p.standby = nil
	runtime.GC()
	runtime.ReadMemStats(&m2)
	res.ActiveHeap = m2.HeapAlloc - min(m2.HeapAlloc, m0.HeapAlloc)
	res.StandbyHeap = m1.HeapAlloc - min(m1.HeapAlloc, m2.HeapAlloc)
	runtime.KeepAlive(p.active)
	return res, nil
}

// segmentWriter builds TCP segments in one reused frame.
type segmentWriter struct{ frame []byte }

func newSegmentWriter() *segmentWriter { return &segmentWriter{frame: synFrame()} }

// segment returns the frame as a segment with these fields, checksums
// valid, whatever the firewall did to it last time. The frame is reused by the next call.
func (w *segmentWriter) segment(ethSrc, ethDst [6]byte, src, dst [4]byte, sport, dport uint16, seq, ack uint32, flags uint8) []byte {
	e := header.Ethernet(w.frame)
	e.SetSource(ethSrc[:])
	e.SetDestination(ethDst[:])
	ip := header.IPv4(e.Payload())
	ip.SetTTL(64) // the firewall decremented it in place
	ip.SetSourceAddress(src)
	ip.SetDestinationAddress(dst)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
	t := header.TCP(ip[header.IPv4MinimumSize:])
	t.SetSourcePort(sport)
	t.SetDestinationPort(dport)
	t.SetSequenceNumber(seq)
	t.SetAckNumber(ack)
	t.SetFlags(flags)
	t.SetChecksum(0)
	t.SetChecksum(t.CalculateChecksum(src, dst))
	return w.frame
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

// memoryPerConn is figure 5: the active's and the standby's heap per
// connection, repeated.
func (b *bench) memoryPerConn(ctx context.Context) []Figure {
	const item = 5
	n := pick(b, 200_000, 1_000_000)
	reps := pick(b, 3, 3)
	t := &Target{Op: "<=", Value: 256}
	name := fmt.Sprintf("memory per connection (%dk conns, one xlate each)", n/1000)
	sname := fmt.Sprintf("standby memory per connection (%dk conns, one xlate each)", n/1000)
	// Give the tables back before the rest of the run.
	defer debug.FreeOSMemory()
	var act, stb []float64
	var last memResult
	for range reps {
		res, err := fillConns(ctx, n)
		if err == nil && (res.Conns < n*99/100 || res.StandbyConns != res.Conns || res.Xlates < n*99/100) {
			err = fmt.Errorf("%d of %d handshakes made a connection, %d xlates; the standby holds %d and %d (drops %v)",
				res.Conns, n, res.Xlates, res.StandbyConns, res.Xlates2, res.Drops)
		}
		if err != nil {
			return []Figure{notMeasured(item, "mem-per-conn", name, "B/conn", t, err),
				notMeasured(item, "mem-per-conn-standby", sname, "B/conn", t, err)}
		}
		act = append(act, float64(res.ActiveHeap)/float64(res.Conns))
		stb = append(stb, float64(res.StandbyHeap)/float64(res.StandbyConns))
		last = res
		debug.FreeOSMemory()
	}
	how := fmt.Sprintf("in-process active and standby, no port attached: %d TCP handshakes (SYN, SYN-ACK, ACK) through HandleFrame, each from its own host and port (PAT over 16 mapped addresses: %d xlates), the standby applying the active's %d change records; runtime.MemStats HeapAlloc deltas after GC, the standby's with both alive minus the active's alone; %.1f s a run",
		n, last.Xlates, last.Records, last.Took.Seconds())
	return []Figure{
		repeated(item, "mem-per-conn", name, "B/conn", act, t, how),
		repeated(item, "mem-per-conn-standby", sname, "B/conn", stb, t, how),
	}
}
