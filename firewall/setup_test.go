package firewall

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/firewall/memport"
	"github.com/google/go-cmp/cmp"
)

// changeKinds names each change as "table op [state]".
func changeKinds(cs []Change) []string {
	var out []string
	for _, c := range cs {
		s := c.Table.String() + " " + c.Op.String()
		if c.Table == TableConn {
			s += " " + c.Conn.State.String()
		}
		out = append(out, s)
	}
	return out
}

// TestTCPSetupTakesThreeRecords: a new NAT'd TCP connection is replicated
// as its xlate, SYN_RCVD and ESTABLISHED; the SYN alone makes no
// connection record (see conn: announced).
func TestTCPSetupTakesThreeRecords(t *testing.T) {
	l := resolvedLab(t, labConfig())
	l.changes = nil
	l.syn(client, 6000)
	if d := cmp.Diff([]string{"xlate upsert"}, changeKinds(l.changes)); d != "" {
		t.Errorf("after the SYN (-want +got):\n%s", d)
	}
	l.handshake(client, 6000)
	want := []string{"xlate upsert", "conn upsert SYN_RCVD", "conn upsert ESTABLISHED"}
	if d := cmp.Diff(want, changeKinds(l.changes)); d != "" {
		t.Errorf("after the handshake (-want +got):\n%s", d)
	}
}

// TestUnansweredSYNIsNotReplicated: a connection in SYN_SENT is neither
// streamed nor in the digest nor in a bulk sync, so the standby's digests
// agree while it is pending and after it goes; the unit that takes over
// opens it again from the retransmitted SYN, through the replicated xlate,
// on the same mapped port, and deleting it sends nothing.
func TestUnansweredSYNIsNotReplicated(t *testing.T) {
	a := resolvedLab(t, labConfig())
	b := resolvedLab(t, labConfig())
	a.changes = nil
	out := a.in(ifInside, a.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 6001, 443, SYN, ""))
	if len(out[ifOutside]) != 1 || a.fw.ConnCount() != 1 {
		t.Fatalf("the SYN made %d conns and left %d times", a.fw.ConnCount(), len(out[ifOutside]))
	}
	mapped := decode(t, out[ifOutside][0]).Src
	for _, c := range a.changes {
		if err := b.fw.ApplyChange(c); err != nil {
			t.Fatal(err)
		}
	}
	c := newLab(t, labConfig())
	bulk(t, a.fw, c.fw)
	for _, tb := range Tables {
		if da, db, dc := a.fw.Digest(tb), b.fw.Digest(tb), c.fw.Digest(tb); da != db || da != dc {
			t.Errorf("%s digest: active %#x, streamed standby %#x, bulk-synced standby %#x", tb, da, db, dc)
		}
	}
	if b.fw.ConnCount() != 0 || c.fw.ConnCount() != 0 {
		t.Errorf("standbys hold %d and %d conns, want none", b.fw.ConnCount(), c.fw.ConnCount())
	}
	// Takeover: the client retransmits its SYN to the new active.
	out = b.in(ifInside, b.tcpFrame(client.mac, fwInsideMAC, client.ip, server.ip, 6001, 443, SYN, ""))
	if len(out[ifOutside]) != 1 {
		t.Fatalf("the retransmitted SYN did not leave the new active: %v", b.drops())
	}
	if got := decode(t, out[ifOutside][0]).Src; got != mapped {
		t.Errorf("the retransmitted SYN left as %s, the first as %s", got, mapped)
	}
	a.changes = nil
	a.clk.Advance(a.fw.timeouts.Embryonic + 1)
	a.sweepAll()
	if a.fw.ConnCount() != 0 {
		t.Fatalf("%d conns after the embryonic timeout", a.fw.ConnCount())
	}
	for _, ch := range a.changes {
		if ch.Table == TableConn {
			t.Errorf("deleting an unannounced connection sent %s %v", ch.Op, ch.Conn.Orig)
		}
	}
	if a.fw.Digest(TableConn) != 0 || a.fw.EmbryonicCounts().Total != 0 {
		t.Errorf("after expiry: conn digest %#x, %d half-open", a.fw.Digest(TableConn), a.fw.EmbryonicCounts().Total)
	}
}

// parallelFlows sends flows new UDP flows into l from workers goroutines
// at once, flow i from host(i) port port(i).
func parallelFlows(l *lab, workers, flows int, host func(int) [4]byte, port func(int) uint16) {
	for _, it := range l.fw.ifs {
		it.port = memport.NewDiscard()
	}
	tmpl := udpFrame(client.mac, fwInsideMAC, client.ip, farServer, 1024, 53, "")
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			frame := make([]byte, len(tmpl))
			for i := w; i < flows; i += workers {
				copy(frame, tmpl)
				newConnFrame(frame, host(i), port(i))
				l.fw.HandleFrame(ifInside, frame)
			}
		})
	}
	wg.Wait()
}

// TestParallelSetupReplicatesInOrder creates connections from several
// goroutines at once, each allocating its own PAT xlate, and replays the
// change stream in the order the hook saw it into a standby: the tables
// and digests must agree (the records of each key stay in order without a
// process-wide change lock), and no mapped port is given twice.
func TestParallelSetupReplicatesInOrder(t *testing.T) {
	a := resolvedLab(t, patBenchConfig())
	var mu sync.Mutex
	var stream []Change
	a.fw.onChange = func(c Change) {
		mu.Lock()
		stream = append(stream, c)
		mu.Unlock()
	}
	const flows = 4000
	parallelFlows(a, 4, flows, benchHost, func(i int) uint16 { return uint16(1024 + i/160) })
	// Half of them go, from several goroutines too.
	a.clk.Advance(a.fw.timeouts.UDP + 1)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(a.fw.Maintain)
	}
	wg.Wait()
	b := resolvedLab(t, patBenchConfig())
	for _, c := range stream {
		if err := b.fw.ApplyChange(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, tb := range Tables {
		if da, db := a.fw.Digest(tb), b.fw.Digest(tb); da != db {
			t.Errorf("%s digest: active %#x, standby %#x", tb, da, db)
		}
	}
	if a.fw.ConnCount() != b.fw.ConnCount() || a.fw.XlateCount() != b.fw.XlateCount() {
		t.Errorf("active %d conns %d xlates, standby %d conns %d xlates",
			a.fw.ConnCount(), a.fw.XlateCount(), b.fw.ConnCount(), b.fw.XlateCount())
	}
	seen := map[string]bool{}
	xs, _ := a.fw.Xlates(0, 1<<20)
	for _, x := range xs {
		k := x.Protocol + " " + x.Mapped.String()
		if x.Kind == NATDynamicPAT.String() && seen[k] {
			t.Errorf("mapped port %s given twice", k)
		}
		seen[k] = true
	}
}

// TestParallelSetupKeepsTheHostQuota: goroutines opening flows of one host
// at once get exactly its quota of PAT xlates, the rest nat-host-quota.
func TestParallelSetupKeepsTheHostQuota(t *testing.T) {
	cfg := labConfig()
	cfg.Limits.PATPortsPerHost = 50
	l := resolvedLab(t, cfg)
	l.fw.onChange = func(Change) {} // the lab's recorder is for one goroutine
	parallelFlows(l, 8, 400, func(int) [4]byte { return client.ip }, func(i int) uint16 { return uint16(2000 + i) })
	if got := l.fw.XlateCount() - len(l.fw.statics); got != 50 {
		t.Errorf("%d PAT xlates, want the quota of 50", got)
	}
	if d := cmp.Diff(map[string]uint64{"nat-host-quota": 350}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
}

// setTCP rewrites frame (a TCP frame from tcpFrame) in place to a segment
// with these addresses, ports, numbers and flags, checksums valid.
func setTCP(frame []byte, ethSrc, ethDst [6]byte, src, dst [4]byte, sport, dport uint16, seq, ack uint32, flags uint8) []byte {
	e := header.Ethernet(frame)
	e.SetSource(ethSrc[:])
	e.SetDestination(ethDst[:])
	ip := header.IPv4(e.Payload())
	ip.SetTTL(64)
	ip.SetSourceAddress(src)
	ip.SetDestinationAddress(dst)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
	t := header.TCP(ip.Payload())
	t.SetSourcePort(sport)
	t.SetDestinationPort(dport)
	t.SetSequenceNumber(seq)
	t.SetAckNumber(ack)
	t.SetFlags(flags)
	t.SetChecksum(0)
	t.SetChecksum(t.CalculateChecksum(src, dst))
	return frame
}

// BenchmarkNewTCPConnectionParallel measures TCP connection setup from
// all cores at once: every iteration is a whole handshake (SYN, SYN-ACK,
// ACK) of a new connection from a distinct (host, port), so each takes its
// own PAT xlate, and its three change records go into one mutex-guarded
// queue, as the unit's sender takes them. The four pools hold 258048
// ports; the run fails rather than measure drops if it needs more.
func BenchmarkNewTCPConnectionParallel(b *testing.B) {
	cfg := patBenchConfig()
	cfg.NoRandomSequence = true
	l := resolvedLab(b, cfg)
	for i := range 160 { // the SYN-ACKs go back to every bench host
		l.neighbour(ifInside, host{benchHost(i), mac(benchHost(i)[3], 1)})
	}
	var mu sync.Mutex
	var queue []byte
	records := 0
	l.fw.onChange = func(c Change) {
		mu.Lock()
		if len(queue) > 1<<20 {
			queue = queue[:0]
		}
		queue = c.AppendBinary(queue)
		records++
		mu.Unlock()
	}
	for _, it := range l.fw.ifs {
		it.port = memport.NewDiscard()
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		frame := tcpFrame(client.mac, fwInsideMAC, client.ip, farServer, 1024, 443, SYN, "")
		for pb.Next() {
			i := int(next.Add(1) - 1)
			src, sport := benchHost(i), uint16(1024+i/160)
			hmac := mac(src[3], 1)
			l.fw.HandleFrame(ifInside, setTCP(frame, hmac, fwInsideMAC, src, farServer, sport, 443, 1000, 0, SYN))
			c, _ := l.fw.conns.lookup(Tuple{Proto: header.ProtocolTCP, Src: src, Dst: farServer, SrcPort: sport, DstPort: 443})
			if c == nil {
				continue // counted as a drop below
			}
			l.fw.HandleFrame(ifOutside, setTCP(frame, router.mac, fwOutsideMAC, farServer, c.reply.Dst, 443, c.reply.DstPort, 5000, 1001, SYN|ACK))
			l.fw.HandleFrame(ifInside, setTCP(frame, hmac, fwInsideMAC, src, farServer, sport, 443, 1001, 5001, ACK))
		}
	})
	b.StopTimer()
	if d := l.fw.Drops(); len(d) != 0 {
		b.Fatalf("drops %v after %d connections: the pools are exhausted, lower -benchtime", d, next.Load())
	}
	b.ReportMetric(float64(records)/float64(b.N), "records/conn")
}

// TestEntryHashSpreads: records that differ in one field (a port, an
// address byte, the state) hash apart; the digest is a sum of these.
func TestEntryHashSpreads(t *testing.T) {
	seen := map[uint64]string{}
	add := func(what string, c Change) {
		h := entryHash(c)
		if prev, ok := seen[h]; ok {
			t.Fatalf("%s and %s hash alike (%#x)", prev, what, h)
		}
		seen[h] = what
	}
	base := ConnRecord{Orig: Tuple{Proto: 6, Src: client.ip, Dst: server.ip, SrcPort: 1, DstPort: 443},
		Reply:       Tuple{Proto: 6, Src: server.ip, Dst: outsideIP, SrcPort: 443, DstPort: 1},
		InInterface: "inside", OutInterface: "outside", State: TCPStateEstablished}
	for p := range 1 << 16 {
		r := base
		r.Orig.SrcPort, r.Reply.DstPort = uint16(p), uint16(p)
		add(fmt.Sprintf("conn port %d", p), Change{Table: TableConn, Conn: r})
		r.State = TCPStateSynReceived
		add(fmt.Sprintf("conn port %d SYN_RCVD", p), Change{Table: TableConn, Conn: r})
		x := XlateRecord{Kind: NATDynamicPAT, Proto: 17, Real: [4]byte{10, 0, byte(p >> 8), byte(p)}, RealPort: 5000,
			Mapped: outsideIP, MappedPort: uint16(p), RealInterface: "inside", MappedInterface: "outside"}
		add(fmt.Sprintf("xlate %d", p), Change{Table: TableXlate, Xlate: x})
	}
}
