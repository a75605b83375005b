package firewall

import (
	"runtime"
	"testing"
	"time"

	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/firewall/memport"
)

// fastPathCase is an established flow and one of its packets.
type fastPathCase struct {
	name  string
	setup func(l *lab)
	in    int
	frame []byte
	// mk, if set, builds the frame after setup (TCP segments, whose
	// numbers depend on the handshake) instead of frame.
	mk func(l *lab) []byte
}

func (tc fastPathCase) build(l *lab) []byte {
	if tc.mk != nil {
		return tc.mk(l)
	}
	return tc.frame
}

func fastPathCases() []fastPathCase {
	establish := func(l *lab) {
		l.send(segment{true, SYN, ""})
		l.send(segment{false, SYN | ACK, ""})
		l.send(segment{true, ACK, ""})
	}
	payload := string(make([]byte, 1400))
	return []fastPathCase{
		{"tcp-pat-out", establish, ifInside, nil, func(l *lab) []byte {
			return l.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 40000, 80, ACK|PSH, payload)
		}},
		{"tcp-pat-in", establish, ifOutside, nil, func(l *lab) []byte {
			return l.tcpFrame(server.mac, fwOutsideMAC, server.ip, outsideIP, 80, 40000, ACK|PSH, payload)
		}},
		{"tcp-nonat", func(l *lab) {
			l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, dmzHost.ip, 40000, 80, SYN, ""))
			l.in(ifDMZ, l.tcpFrame(dmzHost.mac, fwDMZMAC, dmzHost.ip, client.ip, 80, 40000, SYN|ACK, ""))
			l.in(ifInside, l.tcpFrame(client.mac, fwInsideMAC, client.ip, dmzHost.ip, 40000, 80, ACK, ""))
		}, ifInside, nil, func(l *lab) []byte {
			return l.tcpFrame(client.mac, fwInsideMAC, client.ip, dmzHost.ip, 40000, 80, ACK|PSH, payload)
		}},
		{"udp-pat-out", func(l *lab) {
			l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 5000, 5001, ""))
		}, ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 5000, 5001, payload), nil},
		{"udp-nonat", func(l *lab) {
			l.in(ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, dmzHost.ip, 5000, 5001, ""))
		}, ifInside, udpFrame(client.mac, fwInsideMAC, client.ip, dmzHost.ip, 5000, 5001, payload), nil},
	}
}

func TestFastPathAllocatesNothing(t *testing.T) {
	for _, tc := range fastPathCases() {
		t.Run(tc.name, func(t *testing.T) {
			l := resolvedLab(t, labConfig())
			tc.setup(l)
			for _, it := range l.fw.ifs {
				it.port = memport.NewDiscard()
			}
			tmpl := tc.build(l)
			frame := make([]byte, len(tmpl))
			before := l.fw.InterfaceStats()
			allocs := testing.AllocsPerRun(1000, func() {
				copy(frame, tmpl)
				l.fw.HandleFrame(tc.in, frame)
			})
			if allocs != 0 {
				t.Errorf("%v allocations per packet, want 0", allocs)
			}
			var txBefore, txAfter uint64
			for i, s := range l.fw.InterfaceStats() {
				txBefore += before[i].TxPackets
				txAfter += s.TxPackets
			}
			if txAfter-txBefore < 1000 {
				t.Errorf("only %d packets forwarded; the case does not exercise the fast path (drops %v)", txAfter-txBefore, l.fw.Drops())
			}
		})
	}
}

func BenchmarkFastPath(b *testing.B) {
	for _, tc := range fastPathCases() {
		b.Run(tc.name, func(b *testing.B) {
			l := resolvedLab(b, labConfig())
			tc.setup(l)
			benchFrame(b, l, tc.in, tc.build(l), "ns/packet")
		})
	}
}

// benchFrame runs one frame through the whole per-packet path of l, the
// ports discarding what it sends, and reports the time per frame.
func benchFrame(b *testing.B, l *lab, in int, tmpl []byte, unit string) {
	for _, it := range l.fw.ifs {
		it.port = memport.NewDiscard()
	}
	frame := make([]byte, len(tmpl))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		copy(frame, tmpl)
		l.fw.HandleFrame(in, frame)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), unit)
}

// BenchmarkNewConnection measures the slow path: policy, PAT allocation,
// insertion and the change record for every packet.
func BenchmarkNewConnection(b *testing.B) {
	cfg := labConfig()
	cfg.Limits.PATPortsPerHost = -1 // one client takes up to 60000 ports
	l := resolvedLab(b, cfg)
	l.fw.onChange = func(Change) {}
	for _, it := range l.fw.ifs {
		it.port = memport.NewDiscard()
	}
	frame := udpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 0, 53, "")
	buf := make([]byte, len(frame))
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, frame)
		u := header.UDP(buf[header.EthernetLen+header.IPv4MinimumSize:])
		u.SetSourcePortWithChecksumUpdate(uint16(1024 + i%60000))
		dst := [4]byte{198, 19, 100, byte(1 + i/60000%250)} // behind the router, so resolved
		header.IPv4(buf[header.EthernetLen:]).SetDestinationAddressWithChecksumUpdate(dst)
		u.UpdateChecksumForAddress(server.ip, dst)
		l.fw.HandleFrame(ifInside, buf)
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/conn")
	b.ReportMetric(float64(l.fw.ConnCount()), "conns")
}

// BenchmarkLargeTable fills the table with entries conns (through
// ApplyChange, as a standby's bulk sync would) and reports the heap cost
// per connection, the time of one incremental Maintain pass, and the time
// to page deep into the table.
func BenchmarkLargeTable(b *testing.B) {
	const conns = 200_000
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	l := newLab(b, labConfig())
	now := l.fw.now()
	for i := range conns {
		src := [4]byte{198, 18, 1, byte(10 + i%200)}
		sport := uint16(1024 + i/200)
		rec := ConnRecord{
			Orig:        Tuple{Proto: 6, Src: src, Dst: server.ip, SrcPort: sport, DstPort: 443},
			Reply:       Tuple{Proto: 6, Src: server.ip, Dst: outsideIP, SrcPort: 443, DstPort: uint16(1024 + i%60000)},
			InInterface: "inside", OutInterface: "outside", State: TCPStateEstablished, Created: now, LastSeen: now,
		}
		rec.Reply.Dst = [4]byte{198, 19, 2, byte(100 + i/60000)}
		if err := l.fw.ApplyChange(Change{Table: TableConn, Op: OpUpsert, Conn: rec}); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	heapPerConn := (float64(m1.HeapAlloc) - float64(m0.HeapAlloc)) / conns
	b.ResetTimer()
	for b.Loop() {
		l.fw.Maintain()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/maintain")
	b.ReportMetric(heapPerConn, "heap-B/conn")
	start := time.Now()
	l.fw.Conns(conns-100, 100)
	b.ReportMetric(float64(time.Since(start).Nanoseconds()), "ns/last-page")
	if l.fw.ConnCount() != conns {
		b.Fatalf("%d conns, want %d", l.fw.ConnCount(), conns)
	}
}
