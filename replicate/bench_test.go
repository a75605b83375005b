package replicate

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(tb testing.TB) (net.Conn, net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Skipf("no loopback TCP: %v", err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		tb.Fatal(r.err)
	}
	return a, r.c
}

// benchSession starts a session over loopback TCP and waits for its first
// bulk sync to finish.
func benchSession(b *testing.B, fw *fakeFirewall, scfg func(*SenderConfig)) (*Sender, *Receiver, *recorder, func()) {
	b.Helper()
	rev := newRecorder()
	sc := SenderConfig{Key: testKey, Source: fw, Tables: testTables, Keepalive: -1, IdleTimeout: -1}
	if scfg != nil {
		scfg(&sc)
	}
	s, err := NewSender(sc)
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewReceiver(ReceiverConfig{Key: testKey, Store: newFakeStore(), OnEvent: rev.on, IdleTimeout: -1})
	if err != nil {
		b.Fatal(err)
	}
	a, c := tcpPair(b)
	done := make(chan struct{}, 2)
	go func() { s.Serve(a); done <- struct{}{} }()
	go func() { r.Serve(c); done <- struct{}{} }()
	return s, r, rev, func() {
		s.Close()
		r.Close()
		<-done
		<-done
	}
}

// BenchmarkBulkSync100k: a standby connects and bulk syncs 100 000 entries
// (4 tables x 25 000, 40-byte payloads) over loopback TCP, until the
// digests match.
func BenchmarkBulkSync100k(b *testing.B) {
	fw := newFakeFirewall()
	val := bytes.Repeat([]byte{'v'}, 32)
	for _, t := range testTables {
		for k := 1; k <= 25000; k++ {
			fw.set(t, uint64(k), val)
		}
	}
	var total time.Duration
	n := 0
	for b.Loop() {
		start := time.Now()
		_, _, rev, stop := benchSession(b, fw, nil)
		ev, _ := rev.waitFor(b, 0, "BulkSyncDone", func(e Event) bool { _, ok := e.(BulkSyncDone); return ok })
		total += time.Since(start)
		n++
		if !ev.(BulkSyncDone).Match {
			b.Fatalf("bulk sync did not match: %+v", ev)
		}
		stop()
	}
	ms := float64(total.Microseconds()) / 1000 / float64(n)
	b.ReportMetric(ms, "ms/bulk")
	b.ReportMetric(100000/(ms/1000), "records/s")
}

// BenchmarkIncremental: sustained change records (8-byte key + 64-byte
// value) through Emit to the standby's Store, over loopback TCP. The
// producer bursts 1024 records, then yields while the queue is above a
// quarter of its limit, so the figure is throughput without overflow.
func BenchmarkIncremental(b *testing.B) {
	fw := newFakeFirewall()
	s, r, rev, stop := benchSession(b, fw, nil)
	defer stop()
	rev.waitFor(b, 0, "BulkSyncDone", isSyncDone(true))
	payload := encodeEntry(1, bytes.Repeat([]byte{'x'}, 64))
	start := time.Now()
	n := 0
	for b.Loop() {
		s.Emit(tblConn, OpUpsert, payload)
		n++
		if n%1024 == 0 {
			for s.Stats().QueueDepth > 65536/4 {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	for r.Stats().RecordSeq < uint64(n) {
		time.Sleep(100 * time.Microsecond)
		if s.Stats().Overflows > 0 {
			b.Fatal("queue overflowed during the throughput run")
		}
	}
	el := time.Since(start)
	b.ReportMetric(float64(n)/el.Seconds(), "records/s")
	st := s.Stats()
	b.ReportMetric(float64(st.LagP99.Microseconds()), "lag-p99-µs")
}

// BenchmarkLag10k: 10 000 records/s (10 every millisecond) for one second
// per iteration over loopback TCP; reports queue-to-acked lag percentiles
// (flush wait + seal + transit + apply + the ack's way back).
func BenchmarkLag10k(b *testing.B) {
	for _, flush := range []time.Duration{time.Millisecond, -1} {
		name := "flush=" + flush.String()
		if flush < 0 {
			name = "flush=immediate"
		}
		b.Run(name, func(b *testing.B) { benchLag(b, flush) })
	}
}

func benchLag(b *testing.B, flush time.Duration) {
	fw := newFakeFirewall()
	s, r, rev, stop := benchSession(b, fw, func(c *SenderConfig) { c.FlushInterval = flush })
	defer stop()
	rev.waitFor(b, 0, "BulkSyncDone", isSyncDone(true))
	payload := encodeEntry(1, bytes.Repeat([]byte{'x'}, 64))
	sent := 0
	for b.Loop() {
		tick := time.NewTicker(time.Millisecond)
		end := time.Now().Add(time.Second)
		for now := range tick.C {
			for range 10 {
				s.Emit(tblConn, OpUpsert, payload)
			}
			sent += 10
			if now.After(end) {
				break
			}
		}
		tick.Stop()
	}
	for r.Stats().RecordSeq < uint64(sent) {
		time.Sleep(100 * time.Microsecond)
	}
	st := s.Stats()
	b.ReportMetric(float64(st.LagP50.Microseconds()), "lag-p50-µs")
	b.ReportMetric(float64(st.LagP99.Microseconds()), "lag-p99-µs")
	b.ReportMetric(float64(st.LagMax.Microseconds()), "lag-max-µs")
	b.ReportMetric(float64(st.LagSamples), "samples")
}
