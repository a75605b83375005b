package replicate

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigRequired(t *testing.T) {
	fw := newFakeFirewall()
	tests := []struct {
		name string
		err  error
	}{
		{"sender no key", func() error { _, err := NewSender(SenderConfig{Source: fw, Tables: testTables}); return err }()},
		{"sender no source", func() error { _, err := NewSender(SenderConfig{Key: testKey, Tables: testTables}); return err }()},
		{"sender no tables", func() error { _, err := NewSender(SenderConfig{Key: testKey, Source: fw}); return err }()},
		{"receiver no key", func() error { _, err := NewReceiver(ReceiverConfig{Store: newFakeStore()}); return err }()},
		{"receiver no store", func() error { _, err := NewReceiver(ReceiverConfig{Key: testKey}); return err }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Error("accepted an incomplete config")
			}
		})
	}
}

func TestKeyRedaction(t *testing.T) {
	k := testKey
	if k.IsZero() {
		t.Fatal("test key is the zero key")
	}
	if s := fmt.Sprint(k); strings.Contains(s, hex.EncodeToString(k[:4])) {
		t.Errorf("key printed in the clear: %s", s)
	}
}

// serveBoth runs a Sender and a Receiver over one connection pair and
// returns both Serve results.
func serveBoth(s *Sender, r *Receiver, a, b net.Conn) (serr, rerr error) {
	var wg sync.WaitGroup
	wg.Go(func() { serr = s.Serve(a) })
	rerr = r.Serve(b)
	a.Close()
	wg.Wait()
	return serr, rerr
}

func TestHandshakeWrongKey(t *testing.T) {
	checkNoLeaks(t)
	other := testKey
	other[31] ^= 1
	sev, rev := newRecorder(), newRecorder()
	s, _ := NewSender(SenderConfig{Key: testKey, Source: newFakeFirewall(), Tables: testTables, OnEvent: sev.on})
	r, _ := NewReceiver(ReceiverConfig{Key: other, Store: newFakeStore(), OnEvent: rev.on})
	a, b := net.Pipe()
	serr, rerr := serveBoth(s, r, a, b)
	for name, err := range map[string]error{"sender": serr, "receiver": rerr} {
		if !errors.Is(err, ErrWrongKey) {
			t.Errorf("%s: err = %v, want ErrWrongKey", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "different failover keys") {
			t.Errorf("%s: error does not name the cause: %v", name, err)
		}
	}
	if got := s.Stats().AuthFailures; got != 1 {
		t.Errorf("sender AuthFailures = %d, want 1", got)
	}
	if got := r.Stats().AuthFailures; got != 1 {
		t.Errorf("receiver AuthFailures = %d, want 1", got)
	}
	isRefused := func(e Event) bool { _, ok := e.(HandshakeRefused); return ok }
	if sev.count(isRefused) != 1 || sev.count(isSyncLost) != 0 || rev.count(isSyncLost) != 1 {
		t.Errorf("want one HandshakeRefused on the sender, one SyncLost on the receiver: sender %v receiver %v", sev.all(), rev.all())
	}
}

// TestStrangerLeavesSessionAlone: garbage, and a connection that never
// speaks, reach the active's state port while its standby is in sync. They
// are refused and counted; the live session goes on, still in sync, and no
// SyncLost is reported (the unit would take it for its standby leaving).
func TestStrangerLeavesSessionAlone(t *testing.T) {
	checkNoLeaks(t)
	p := newPair(t, func(c *SenderConfig) { c.HandshakeTimeout = 50 * time.Millisecond }, nil)
	p.fw.fill(10)
	p.start()
	p.rev.waitFor(t, 0, "first sync", isSyncDone(true))
	p.mark() // an Ack after a matching marker tells the sender
	waitUntil(t, "the active learns its standby is in sync", func() bool { return p.s.Stats().Synced })

	garbage, g := net.Pipe()
	idle, i := net.Pipe()
	errs := make(chan error, 2)
	go func() { errs <- p.s.Serve(g) }()
	go func() { errs <- p.s.Serve(i) }()
	go func() { _, _ = garbage.Write([]byte("GET / HTTP/1.0\r\n\r\n")); garbage.Close() }()
	for range 2 {
		if err := <-errs; err == nil {
			t.Error("a stranger's Serve returned nil")
		}
	}
	idle.Close()
	p.fw.set(testTables[0], 999, []byte("after the strangers"))
	p.mark()
	waitUntil(t, "the change reaches the standby", func() bool {
		return p.store.contents()[testTables[0]][999] == "after the strangers"
	})
	st := p.s.Stats()
	if st.Sessions != 1 || st.SessionErrors != 0 || st.Refused != 2 || !st.Synced {
		t.Errorf("sender: sessions %d errors %d refused %d synced %v; want 1 0 2 true", st.Sessions, st.SessionErrors, st.Refused, st.Synced)
	}
	if n := p.sev.count(isSyncLost); n != 0 {
		t.Errorf("%d SyncLost events on the sender", n)
	}
}

func TestHandshakeRightKey(t *testing.T) {
	checkNoLeaks(t)
	p := newPair(t, nil, nil)
	p.fw.fill(10)
	p.start()
	p.rev.waitFor(t, 0, "BulkSyncDone{Match:true}", isSyncDone(true))
	st := p.r.Stats()
	if !st.Connected || !st.Synced || st.Sessions != 1 {
		t.Errorf("receiver stats after sync: connected %v synced %v sessions %d", st.Connected, st.Synced, st.Sessions)
	}
	p.close(t)
	if diff := cmp.Diff(p.fw.contents(), p.store.contents()); diff != "" {
		t.Errorf("standby differs (-active +standby):\n%s", diff)
	}
	a, b := net.Pipe()
	defer b.Close()
	if err := p.s.Serve(a); !errors.Is(err, ErrClosed) {
		t.Errorf("Serve after Close: %v, want ErrClosed", err)
	}
	if err := p.r.Serve(nil); err == nil {
		t.Error("Serve(nil) accepted")
	}
}

// TestHandshakeSameRole needs buffered conns (both ends write first), so
// it uses loopback TCP.
func TestHandshakeSameRole(t *testing.T) {
	checkNoLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback TCP: %v", err)
	}
	defer ln.Close()
	var b net.Conn
	accepted := make(chan struct{})
	go func() { b, _ = ln.Accept(); close(accepted) }()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	<-accepted
	s1, _ := NewSender(SenderConfig{Key: testKey, Source: newFakeFirewall(), Tables: testTables})
	s2, _ := NewSender(SenderConfig{Key: testKey, Source: newFakeFirewall(), Tables: testTables})
	var wg sync.WaitGroup
	var err2 error
	wg.Go(func() { err2 = s2.Serve(b) })
	err1 := s1.Serve(a)
	wg.Wait()
	for _, err := range []error{err1, err2} {
		if !errors.Is(err, ErrRole) {
			t.Errorf("err = %v, want ErrRole", err)
		}
	}
}

// TestGarbagePeer: whatever connects to the standby and is not a falab
// sender is refused with an error naming what was wrong, before anything
// large is allocated.
func TestGarbagePeer(t *testing.T) {
	hdr := func(h Header) []byte { b, _ := h.MarshalBinary(); return b }
	tests := []struct {
		name string
		send []byte
		want error
	}{
		{"ssh banner", []byte("SSH-2.0-OpenSSH_9.6\r\n........"), ErrBadMagic},
		{"future version", func() []byte {
			b := hdr(Header{Version: Version, Type: MsgHello, Length: 33})
			b[offVersion] = Version + 1
			return b
		}(), ErrVersion},
		{"huge cleartext hello", hdr(Header{Version: Version, Type: MsgHello, Length: MaxBody}), ErrFrameTooLarge},
		{"sealed before keys", hdr(Header{Version: Version, Type: MsgHello, Flags: FlagEncrypted, Length: 64, Seq: 1}), ErrDecrypt},
		{"short hello", append(hdr(Header{Version: Version, Type: MsgHello, Length: 3}), 1, 2, 3), io.ErrUnexpectedEOF},
		{"eof mid header", []byte{0xFA, 0x5C, 1}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeaks(t)
			r, _ := NewReceiver(ReceiverConfig{Key: testKey, Store: newFakeStore()})
			a, b := net.Pipe()
			go func() {
				a.Write(tt.send)
				a.Close()
			}()
			if err := r.Serve(b); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestBulkRacingChanges: a mutator changes (and deletes) entries all
// through the handshake and the bulk snapshot. The first digest marker after
// the bulk must match, and the tables must end equal.
func TestBulkRacingChanges(t *testing.T) {
	checkNoLeaks(t)
	// Real 1 ms flush interval here, to use the batching timer path.
	p := newPair(t, func(c *SenderConfig) { c.FlushInterval = 0 }, nil)
	p.fw.fill(3000)
	stop := make(chan struct{})
	var ops sync.WaitGroup
	ops.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		p.fw.churn(stop, rng, func() uint64 { return uint64(rng.IntN(4000) + 1) }, "v")
	})
	p.start()
	_, pos := p.rev.waitFor(t, 0, "BulkSyncDone", func(e Event) bool { _, ok := e.(BulkSyncDone); return ok })
	close(stop)
	ops.Wait()
	if n := p.rev.count(isSyncDone(false)); n != 0 {
		t.Fatalf("bulk sync racing changes ended with %d mismatches: %v", n, p.rev.all())
	}
	p.mark()
	p.rev.waitFor(t, pos, "DigestChecked", func(e Event) bool { _, ok := e.(DigestChecked); return ok })
	p.close(t)
	if diff := cmp.Diff(p.fw.contents(), p.store.contents()); diff != "" {
		t.Errorf("standby differs (-active +standby):\n%s", diff)
	}
	if n := p.rev.count(isDigest(false)); n != 0 {
		t.Errorf("%d digest mismatches", n)
	}
	st := p.s.Stats()
	if st.Overflows != 0 || st.Resyncs != 0 {
		t.Errorf("unexpected overflow/resync: %+v", st)
	}
}

// TestLinkFaults injects loss, replay, reordering and corruption on the
// first connection: the standby must detect it, end the session visibly,
// and the next session must bulk sync back to equal tables.
func TestLinkFaults(t *testing.T) {
	tests := []struct {
		name    string
		act     frameAction
		want    error
		counter func(Stats) uint64
	}{
		{"drop", drop, ErrSeqGap, func(s Stats) uint64 { return s.SequenceErrors }},
		{"replay", dup, ErrReplay, func(s Stats) uint64 { return s.SequenceErrors }},
		{"swap", hold, ErrSeqGap, func(s Stats) uint64 { return s.SequenceErrors }},
		{"corrupt", corrupt, ErrDecrypt, func(s Stats) uint64 { return s.AuthFailures }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeaks(t)
			p := newPair(t, nil, nil)
			p.fw.fill(50)
			// Frames of connection 1: Hello, Auth, BulkStart, bulk
			// records..., BulkEnd, marker, then incremental frames. The
			// fault hits the first incremental frame after the bulk.
			var faultAt int
			p.wrap = func(n int, c net.Conn) net.Conn {
				if n != 1 {
					return c
				}
				return &faultConn{Conn: c, act: func(i int, h Header) frameAction {
					if faultAt == 0 && h.Type == MsgDigest {
						faultAt = i + 1
					}
					if faultAt != 0 && i == faultAt {
						return tt.act
					}
					return pass
				}}
			}
			p.start()
			_, pos := p.rev.waitFor(t, 0, "first BulkSyncDone", isSyncDone(true))
			// Changes keep flowing until the standby notices.
			for i := uint64(1); p.rev.count(isSyncLost) == 0; i++ {
				p.fw.set(tblConn, 1000+i%50, fmt.Appendf(nil, "after-%d", i))
				p.mark()
				if i%16 == 0 {
					select {
					case <-p.rev.ch:
					case <-time.After(waitTimeout):
						t.Fatal("fault never detected")
					}
				}
			}
			lost, pos := p.rev.waitFor(t, pos, "SyncLost", isSyncLost)
			if err := lost.(SyncLost).Err; !errors.Is(err, tt.want) {
				t.Fatalf("SyncLost err = %v, want %v", err, tt.want)
			}
			_, pos = p.rev.waitFor(t, pos, "BulkSyncDone after reconnect", isSyncDone(true))
			p.fw.set(tblARP, 7, []byte("last change"))
			p.mark()
			// A match for a marker sent before the last change (the
			// bulk's own) may still be on its way: wait for the match
			// that covers it.
			for p.store.contents()[tblARP][7] != "last change" {
				_, pos = p.rev.waitFor(t, pos, "digest match after the last change", isDigest(true))
			}
			p.close(t)
			if got := tt.counter(p.r.Stats()); got != 1 {
				t.Errorf("counter = %d, want 1", got)
			}
			if diff := cmp.Diff(p.fw.contents(), p.store.contents()); diff != "" {
				t.Errorf("standby differs after resync (-active +standby):\n%s", diff)
			}
		})
	}
}

func TestQueueOverflowForcesResync(t *testing.T) {
	checkNoLeaks(t)
	p := newPair(t, func(c *SenderConfig) { c.QueueLimit = 64 }, nil)
	p.fw.fill(5)
	var gate *gateConn
	p.wrap = func(n int, c net.Conn) net.Conn {
		if n == 1 {
			gate = newGateConn(c)
			return gate
		}
		return c
	}
	p.start()
	_, pos := p.rev.waitFor(t, 0, "first BulkSyncDone", isSyncDone(true))
	gate.shut()
	for i := range 300 {
		p.fw.set(tblXlate, uint64(100+i), []byte("burst"))
	}
	if got := p.s.Stats().Overflows; got == 0 {
		t.Fatalf("300 changes into a 64-record queue with a stuck writer: Overflows = 0")
	}
	gate.release()
	p.sev.waitFor(t, 0, "sender Resync", isResync)
	_, pos = p.rev.waitFor(t, pos, "BulkSyncDone after overflow", isSyncDone(true))
	p.mark()
	p.rev.waitFor(t, pos, "digest match", isDigest(true))
	p.close(t)
	if diff := cmp.Diff(p.fw.contents(), p.store.contents()); diff != "" {
		t.Errorf("standby differs (-active +standby):\n%s", diff)
	}
	// Live changes can fill the queue between a bulk's wait for room and
	// its next snapshot chunk, so the queue may pass QueueLimit by a chunk.
	if st, most := p.s.Stats(), 64+p.fw.largestChunk(); st.Resyncs == 0 || st.QueueHigh > most {
		t.Errorf("sender stats: resyncs %d queue high %d, want at most %d", st.Resyncs, st.QueueHigh, most)
	}
	if st := p.r.Stats(); st.Sessions != 1 {
		t.Errorf("overflow resync should stay in the session: %d sessions", st.Sessions)
	}
}

// TestBulkTakenOnce: a wakeup left over for a bulk the bulk goroutine
// already took runs nothing. Running it again queued a second BulkEnd, and
// the receiver ended the session on it (TestQueueOverflowForcesResync saw
// two sessions about one run in 300 under -race).
func TestBulkTakenOnce(t *testing.T) {
	ss := &senderSession{bulkGen: 1, reason: "session start"}
	if gen, reason, first, ok := ss.takeBulkLocked(); !ok || gen != 1 || reason != "session start" || !first {
		t.Fatalf("first bulk: gen %d reason %q first %v ok %v; want 1, session start, true, true", gen, reason, first, ok)
	}
	if gen, _, _, ok := ss.takeBulkLocked(); ok {
		t.Fatalf("a leftover wakeup took bulk %d again", gen)
	}
	ss.bulkGen, ss.reason = 2, "queue overflow"
	if gen, reason, first, ok := ss.takeBulkLocked(); !ok || gen != 2 || reason != "queue overflow" || first {
		t.Fatalf("resync: gen %d reason %q first %v ok %v; want 2, queue overflow, false, true", gen, reason, first, ok)
	}
	if _, _, _, ok := ss.takeBulkLocked(); ok {
		t.Fatal("a leftover wakeup took the resync again")
	}
}

func TestDigestMismatchResync(t *testing.T) {
	checkNoLeaks(t)
	p := newPair(t, nil, nil)
	p.fw.fill(20)
	p.start()
	_, pos := p.rev.waitFor(t, 0, "first BulkSyncDone", isSyncDone(true))
	p.store.corrupt(tblARP, 3)
	p.mark()
	ev, pos := p.rev.waitFor(t, pos, "digest mismatch", isDigest(false))
	if diff := cmp.Diff([]uint8{tblARP}, ev.(DigestChecked).Mismatched); diff != "" {
		t.Errorf("mismatched tables (-want +got):\n%s", diff)
	}
	p.sev.waitFor(t, 0, "sender Resync", isResync)
	p.rev.waitFor(t, pos, "BulkSyncDone after resync", isSyncDone(true))
	p.close(t)
	if diff := cmp.Diff(p.fw.contents(), p.store.contents()); diff != "" {
		t.Errorf("standby differs (-active +standby):\n%s", diff)
	}
	st := p.r.Stats()
	if st.DigestMismatches != 1 || st.Resyncs != 1 || st.BulkSyncs != 2 {
		t.Errorf("receiver: mismatches %d resyncs %d bulks %d, want 1 1 2", st.DigestMismatches, st.Resyncs, st.BulkSyncs)
	}
}

// TestApplyErrorCountedThenResync: records that fail to apply are counted,
// the post-bulk digests disagree, the standby asks for resync, and a
// failure that persists is not resynced back-to-back (MinResyncInterval, on
// a manual clock).
func TestApplyErrorCountedThenResync(t *testing.T) {
	checkNoLeaks(t)
	clock := &manualClock{t: time.Unix(1_800_000_000, 0)}
	p := newPair(t, nil, func(c *ReceiverConfig) { c.Now = clock.now })
	p.fw.fill(10)
	p.store.setFailKey(7)
	p.start()
	ev, pos := p.rev.waitFor(t, 0, "BulkSyncDone{Match:false}", isSyncDone(false))
	if diff := cmp.Diff(testTables, ev.(BulkSyncDone).Mismatched); diff != "" {
		t.Errorf("mismatched (-want +got):\n%s", diff)
	}
	// The first mismatch asks at once; the resync fails the same way and,
	// inside the interval, is deferred.
	_, pos = p.rev.waitFor(t, pos, "second BulkSyncDone{Match:false}", isSyncDone(false))
	p.store.setFailKey(0)
	p.mark()
	_, pos = p.rev.waitFor(t, pos, "DigestChecked{Match:false}", isDigest(false))
	if st := p.r.Stats(); st.ResyncsDeferred != 2 || st.BulkSyncs != 2 {
		t.Errorf("inside the interval: deferred %d bulks %d, want 2 2", st.ResyncsDeferred, st.BulkSyncs)
	}
	clock.advance(2 * time.Second)
	p.mark()
	p.rev.waitFor(t, pos, "BulkSyncDone{Match:true}", isSyncDone(true))
	p.close(t)
	st := p.r.Stats()
	for _, ts := range st.Tables {
		if ts.Errors != 2 {
			t.Errorf("table %d: %d apply failures counted, want 2", ts.Table, ts.Errors)
		}
	}
	if st.LastError == "" {
		t.Error("LastError empty after apply failures")
	}
	if diff := cmp.Diff(p.fw.contents(), p.store.contents()); diff != "" {
		t.Errorf("standby differs (-active +standby):\n%s", diff)
	}
}

// filteredSource leaves the HTTP table out of the digests, as the unit must
// when HTTP replication is off.
type filteredSource struct{ *fakeFirewall }

func (f filteredSource) MarkDigests(mark func(map[uint8]uint64)) {
	f.fakeFirewall.MarkDigests(func(d map[uint8]uint64) {
		delete(d, tblHTTP)
		mark(d)
	})
}

func TestFilterDropsTable(t *testing.T) {
	checkNoLeaks(t)
	p := newPair(t, nil, nil)
	s, err := NewSender(SenderConfig{Key: testKey, Source: filteredSource{p.fw}, Tables: testTables, OnEvent: p.sev.on,
		FlushInterval: -1, Filter: func(table uint8, _ Op, _ []byte) bool { return table != tblHTTP }})
	if err != nil {
		t.Fatal(err)
	}
	p.s = s
	p.fw.hook = s.Emit
	p.fw.fill(10)
	p.start()
	_, pos := p.rev.waitFor(t, 0, "BulkSyncDone", isSyncDone(true))
	p.fw.set(tblHTTP, 99, []byte("GET /"))
	p.fw.set(tblConn, 99, []byte("tcp"))
	filteredSource{p.fw}.MarkDigests(s.MarkDigest)
	p.rev.waitFor(t, pos, "digest match", isDigest(true))
	p.close(t)
	if diff := cmp.Diff(p.fw.contents(tblHTTP), p.store.contents(tblHTTP)); diff != "" {
		t.Errorf("standby differs (-active +standby):\n%s", diff)
	}
	if n := len(p.store.contents()[tblHTTP]); n != 0 {
		t.Errorf("standby holds %d HTTP entries, want 0", n)
	}
	for _, ts := range s.Stats().Tables {
		if ts.Table == tblHTTP && (ts.Filtered != 11 || ts.Sent != 0) {
			t.Errorf("HTTP table stats %+v, want 11 filtered, 0 sent", ts)
		}
	}
}

func TestStatsAndLag(t *testing.T) {
	checkNoLeaks(t)
	p := newPair(t, nil, nil)
	p.start()
	_, pos := p.rev.waitFor(t, 0, "BulkSyncDone", isSyncDone(true))
	for i := range 100 {
		p.fw.set(tblConn, uint64(i+1), []byte("x"))
	}
	p.mark()
	p.rev.waitFor(t, pos, "digest match", isDigest(true))
	// The receiver matched the digest; the sender learns the lag from the
	// acks, which may still be on their way (seen under -race).
	for deadline := time.Now().Add(5 * time.Second); p.s.Stats().LagSamples == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	p.close(t)
	st := p.s.Stats()
	if st.RecordSeq != 100 || st.LagSamples == 0 || st.LagP99 < st.LagP50 || st.LagMax < st.LagP99 {
		t.Errorf("sender stats: record seq %d, lag samples %d p50 %v p99 %v max %v",
			st.RecordSeq, st.LagSamples, st.LagP50, st.LagP99, st.LagMax)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"lag_p99_ns"`, `"queue_depth"`, `"tables"`, `"sent":100`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("stats JSON lacks %s: %s", k, b)
		}
	}
	rs := p.r.Stats()
	want := []TableStats{{Table: tblConn, Received: 100, Applied: 100}}
	if diff := cmp.Diff(want, rs.Tables); diff != "" {
		t.Errorf("receiver tables (-want +got):\n%s", diff)
	}
}

func TestLagWindowPercentiles(t *testing.T) {
	tests := []struct {
		name          string
		samples       []time.Duration
		wantN         int
		p50, p99, max time.Duration
	}{
		{"empty", nil, 0, 0, 0, 0},
		{"one to hundred", func() []time.Duration {
			var s []time.Duration
			for i := 100; i >= 1; i-- {
				s = append(s, time.Duration(i)*time.Millisecond)
			}
			return s
		}(), 100, 50 * time.Millisecond, 99 * time.Millisecond, 100 * time.Millisecond},
		{"negative clamps", []time.Duration{-5}, 1, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w DelayWindow
			for _, d := range tt.samples {
				w.Add(d)
			}
			n, p50, p99, mx := w.Percentiles()
			if diff := cmp.Diff([]any{tt.wantN, tt.p50, tt.p99, tt.max}, []any{n, p50, p99, mx}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestIdleTimeout: a sender that goes silent (frozen unit) kills the
// standby's session visibly instead of leaving it waiting forever.
func TestIdleTimeout(t *testing.T) {
	checkNoLeaks(t)
	p := newPair(t, nil, func(c *ReceiverConfig) { c.IdleTimeout = 50 * time.Millisecond })
	p.start()
	lost, _ := p.rev.waitFor(t, 0, "SyncLost", isSyncLost)
	if err := lost.(SyncLost).Err; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
	p.close(t)
}

func TestNewSessionReplacesOld(t *testing.T) {
	checkNoLeaks(t)
	fw := newFakeFirewall()
	s, _ := NewSender(SenderConfig{Key: testKey, Source: fw, Tables: testTables, FlushInterval: -1})
	fw.hook = s.Emit
	fw.fill(3)
	store := newFakeStore()
	rev := newRecorder()
	r, _ := NewReceiver(ReceiverConfig{Key: testKey, Store: store, OnEvent: rev.on})
	a1, b1 := net.Pipe()
	a2, b2 := net.Pipe()
	errs := make(chan error, 4)
	go func() { errs <- s.Serve(a1) }()
	go func() { errs <- r.Serve(b1) }()
	rev.waitFor(t, 0, "first sync", isSyncDone(true))
	go func() { errs <- s.Serve(a2) }()
	go func() { errs <- r.Serve(b2) }()
	_, pos := rev.waitFor(t, 0, "SyncLost of the old session", isSyncLost)
	rev.waitFor(t, pos, "sync on the new session", isSyncDone(true))
	s.Close()
	r.Close()
	for range 4 {
		if err := <-errs; err == nil {
			t.Error("Serve returned nil")
		}
	}
	if diff := cmp.Diff(fw.contents(), store.contents()); diff != "" {
		t.Errorf("standby differs (-active +standby):\n%s", diff)
	}
}

// TestOldSessionFrameRejected: a frame recorded from one session, replayed
// into the next at the very same sequence number, fails to open there: the
// session keys are fresh (both nonces), so only the sequence check is not
// enough to get in.
func TestOldSessionFrameRejected(t *testing.T) {
	checkNoLeaks(t)
	p := newPair(t, nil, nil)
	p.fw.fill(50)
	var (
		mu       sync.Mutex
		recorded = map[int][]byte{}
		first    net.Conn
	)
	const victim = 4 // Hello, Auth, BulkStart, then the first bulk Records
	p.wrap = func(n int, c net.Conn) net.Conn {
		fc := &faultConn{Conn: c, act: func(int, Header) frameAction { return pass }}
		fc.rewrite = func(i int, frame []byte) []byte {
			mu.Lock()
			defer mu.Unlock()
			if n == 1 {
				recorded[i] = frame
				return frame
			}
			if old, ok := recorded[i]; ok && n == 2 && i == victim {
				return old
			}
			return frame
		}
		if n == 1 {
			first = fc
		}
		return fc
	}
	p.start()
	_, pos := p.rev.waitFor(t, 0, "first BulkSyncDone", isSyncDone(true))
	first.Close() // the link drops; the loop reconnects
	_, pos = p.rev.waitFor(t, pos, "SyncLost of session 1", isSyncLost)
	lost, pos := p.rev.waitFor(t, pos, "SyncLost of session 2", isSyncLost)
	if err := lost.(SyncLost).Err; !errors.Is(err, ErrDecrypt) {
		t.Fatalf("replayed old-session frame: err = %v, want ErrDecrypt", err)
	}
	p.rev.waitFor(t, pos, "BulkSyncDone on session 3", isSyncDone(true))
	p.close(t)
	if diff := cmp.Diff(p.fw.contents(), p.store.contents()); diff != "" {
		t.Errorf("standby differs (-active +standby):\n%s", diff)
	}
}

// TestSteadyStateKeepsOneSession: an idle active marks its digests more
// often than its keepalive interval (the unit marks every second, the
// keepalive is a second too), so its writer never sends a keepalive of its
// own. The standby must still answer every frame, or the sender's idle
// timeout ends a healthy session and forces a needless bulk sync: exactly
// the steady-state churn seen in labs (a session every 5 s).
func TestSteadyStateKeepsOneSession(t *testing.T) {
	checkNoLeaks(t)
	p := newPair(t, func(c *SenderConfig) {
		c.Keepalive = 20 * time.Millisecond
		c.IdleTimeout = 250 * time.Millisecond
	}, func(c *ReceiverConfig) { c.IdleTimeout = 250 * time.Millisecond })
	p.fw.fill(5)
	p.start()
	p.rev.waitFor(t, 0, "first sync", isSyncDone(true))
	stop := make(chan struct{})
	marked := make(chan struct{})
	go func() {
		defer close(marked)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				p.mark()
			}
		}
	}()
	// Four idle timeouts' worth of steady state.
	time.Sleep(time.Second)
	close(stop)
	<-marked
	ss, rs := p.s.Stats(), p.r.Stats()
	p.close(t)
	if ss.Sessions != 1 || rs.Sessions != 1 || ss.SessionErrors != 0 || rs.BulkSyncs != 1 {
		t.Errorf("steady state: sender sessions %d errors %d (last %q), receiver sessions %d bulk syncs %d; want 1, 0, 1, 1",
			ss.Sessions, ss.SessionErrors, ss.LastError, rs.Sessions, rs.BulkSyncs)
	}
}

// lockedBuffer is a log sink shared by the session goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBulkSyncLogNamesTables: the receiver's log names the tables of a
// bulk sync with the names it is given, never as raw bytes
// (tables="\x03\x02...").
func TestBulkSyncLogNamesTables(t *testing.T) {
	var logs lockedBuffer
	p := newPair(t, nil, func(rc *ReceiverConfig) {
		rc.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		rc.TableName = func(t uint8) string { return fmt.Sprintf("t%d", t) }
	})
	p.fw.fill(3)
	p.start()
	p.rev.waitFor(t, 0, "BulkSyncDone{Match:true}", isSyncDone(true))
	p.close(t)
	var want []string
	for _, tb := range testTables {
		want = append(want, fmt.Sprintf("t%d", tb))
	}
	out := logs.String()
	if !strings.Contains(out, "tables="+strings.Join(want, ",")) || strings.Contains(out, `\x`) {
		t.Errorf("bulk sync log does not name the tables %v:\n%s", want, out)
	}
}
