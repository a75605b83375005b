package replicate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Test tables, named after what the unit will replicate.
const (
	tblConn  uint8 = 1
	tblXlate uint8 = 2
	tblARP   uint8 = 3
	tblHTTP  uint8 = 4
)

var testTables = []uint8{tblConn, tblXlate, tblARP, tblHTTP}

var testKey = Key{0xfa, 0x1a, 0xb0}

// entryHash is the per-entry hash both fakes sum into a table digest
// (order-independent, O(1) per change).
func entryHash(key uint64, val []byte) uint64 {
	h := fnv.New64a()
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], key)
	h.Write(k[:])
	h.Write(val)
	return h.Sum64()
}

func encodeEntry(key uint64, val []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, key), val...)
}

func decodeEntry(p []byte) (uint64, []byte, error) {
	if len(p) < 8 {
		return 0, nil, fmt.Errorf("record of %d bytes has no key", len(p))
	}
	return binary.BigEndian.Uint64(p), p[8:], nil
}

const fakeBuckets = 64

// fakeFirewall stands in for the active unit's tables: a change lock, tables
// bucketed by key (the snapshot cursor is a bucket index), a change hook
// calling Emit under the lock, and running digests.
type fakeFirewall struct {
	mu      sync.Mutex
	tables  map[uint8]*[fakeBuckets]map[uint64][]byte // guarded by mu
	digests map[uint8]uint64                          // guarded by mu
	hook    func(table uint8, op Op, payload []byte)  // set before use
	// entryHook, when set, is called instead of hook, with each record's
	// key and whether it is fresh (Sender.EmitEntry).
	entryHook func(table uint8, op Op, key EntryKey, fresh bool, payload []byte)
}

func entryKeyOf(key uint64) EntryKey {
	var k EntryKey
	binary.BigEndian.PutUint64(k[:], key)
	return k
}

// report calls the change hook; f.mu is held.
func (f *fakeFirewall) report(table uint8, op Op, key uint64, fresh bool, payload []byte) {
	switch {
	case f.entryHook != nil:
		f.entryHook(table, op, entryKeyOf(key), fresh, payload)
	case f.hook != nil:
		f.hook(table, op, payload)
	}
}

func newFakeFirewall() *fakeFirewall {
	f := &fakeFirewall{tables: map[uint8]*[fakeBuckets]map[uint64][]byte{}, digests: map[uint8]uint64{}}
	for _, t := range testTables {
		var b [fakeBuckets]map[uint64][]byte
		for i := range b {
			b[i] = map[uint64][]byte{}
		}
		f.tables[t] = &b
		f.digests[t] = 0
	}
	return f
}

func (f *fakeFirewall) set(table uint8, key uint64, val []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.tables[table][key%fakeBuckets]
	old, existed := b[key]
	if existed {
		f.digests[table] -= entryHash(key, old)
	}
	b[key] = val
	f.digests[table] += entryHash(key, val)
	f.report(table, OpUpsert, key, !existed, encodeEntry(key, val))
}

func (f *fakeFirewall) del(table uint8, key uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.tables[table][key%fakeBuckets]
	old, ok := b[key]
	if !ok {
		return
	}
	delete(b, key)
	f.digests[table] -= entryHash(key, old)
	f.report(table, OpDelete, key, false, encodeEntry(key, nil))
}

// churn changes random entries of random tables until stop closes: a
// third are deletes, the rest upserts of a value tag followed by a count.
func (f *fakeFirewall) churn(stop <-chan struct{}, rng *rand.Rand, key func() uint64, tag string) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		table := testTables[rng.IntN(len(testTables))]
		if k := key(); rng.IntN(3) == 0 {
			f.del(table, k)
		} else {
			f.set(table, k, fmt.Appendf(nil, "%s%d", tag, i))
		}
	}
}

func (f *fakeFirewall) Snapshot(table uint8, cursor uint64, emit func([]byte)) (uint64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tb, ok := f.tables[table]
	if !ok {
		return 0, false, fmt.Errorf("no table %d", table)
	}
	for k, v := range tb[cursor] {
		emit(encodeEntry(k, v))
	}
	return cursor + 1, cursor+1 == fakeBuckets, nil
}

func (f *fakeFirewall) MarkDigests(mark func(map[uint8]uint64)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mark(maps.Clone(f.digests))
}

// largestChunk returns the most records one Snapshot call emits: the
// largest bucket of any table.
func (f *fakeFirewall) largestChunk() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, tb := range f.tables {
		for _, b := range tb {
			n = max(n, len(b))
		}
	}
	return n
}

// contents returns every table as a flat map, for cmp.Diff.
func (f *fakeFirewall) contents(skip ...uint8) map[uint8]map[uint64]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[uint8]map[uint64]string{}
	for t, tb := range f.tables {
		if contains(skip, t) {
			continue
		}
		m := map[uint64]string{}
		for _, b := range tb {
			for k, v := range b {
				m[k] = string(v)
			}
		}
		out[t] = m
	}
	return out
}

func contains(s []uint8, v uint8) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// fakeStore is the standby's tables.
type fakeStore struct {
	mu      sync.Mutex
	tables  map[uint8]map[uint64]string // guarded by mu
	digests map[uint8]uint64            // guarded by mu
	failKey uint64                      // guarded by mu; Apply of this key fails (0: none)
}

func newFakeStore() *fakeStore {
	s := &fakeStore{tables: map[uint8]map[uint64]string{}, digests: map[uint8]uint64{}}
	for _, t := range testTables {
		s.tables[t] = map[uint64]string{}
		s.digests[t] = 0
	}
	return s
}

var errInjected = errors.New("injected apply failure")

func (s *fakeStore) setFailKey(k uint64) {
	s.mu.Lock()
	s.failKey = k
	s.mu.Unlock()
}

// manualClock is a clock tests move by hand.
type manualClock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func (c *manualClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (s *fakeStore) Reset(table uint8) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tables[table] = map[uint64]string{}
	s.digests[table] = 0
	return nil
}

func (s *fakeStore) Apply(table uint8, op Op, payload []byte) error {
	key, val, err := decodeEntry(payload)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failKey != 0 && key == s.failKey {
		return errInjected
	}
	tb, ok := s.tables[table]
	if !ok {
		return fmt.Errorf("no table %d", table)
	}
	if old, ok := tb[key]; ok {
		s.digests[table] -= entryHash(key, []byte(old))
		delete(tb, key)
	}
	if op == OpUpsert {
		tb[key] = string(val)
		s.digests[table] += entryHash(key, val)
	}
	return nil
}

func (s *fakeStore) Digests() map[uint8]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.digests)
}

// corrupt changes the standby behind the stream's back.
func (s *fakeStore) corrupt(table uint8, key uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tables[table][key] = "corrupted"
	s.digests[table] += entryHash(key, []byte("corrupted"))
}

func (s *fakeStore) contents(skip ...uint8) map[uint8]map[uint64]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[uint8]map[uint64]string{}
	for t, tb := range s.tables {
		if !contains(skip, t) {
			out[t] = maps.Clone(tb)
		}
	}
	return out
}

// recorder keeps every event (except per-frame bulk progress) and lets a
// test wait for one.
type recorder struct {
	mu     sync.Mutex
	events []Event // guarded by mu
	ch     chan struct{}
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 1)} }

func (r *recorder) on(e Event) {
	if p, ok := e.(BulkProgress); ok && !p.Done {
		return
	}
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// waitTimeout is a watchdog against a hung test, not a timing assertion.
const waitTimeout = 20 * time.Second

// waitFor waits until an event after position from matches, and returns it
// and the position after it.
func (r *recorder) waitFor(t testing.TB, from int, what string, match func(Event) bool) (Event, int) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		evs := r.all()
		for i := from; i < len(evs); i++ {
			if match(evs[i]) {
				return evs[i], i + 1
			}
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("no %s event within %v; events: %v", what, waitTimeout, evs)
		}
	}
}

func (r *recorder) count(match func(Event) bool) int {
	n := 0
	for _, e := range r.all() {
		if match(e) {
			n++
		}
	}
	return n
}

func isSyncDone(match bool) func(Event) bool {
	return func(e Event) bool { d, ok := e.(BulkSyncDone); return ok && d.Match == match }
}

func isDigest(match bool) func(Event) bool {
	return func(e Event) bool { d, ok := e.(DigestChecked); return ok && d.Match == match }
}

func isSyncLost(e Event) bool { _, ok := e.(SyncLost); return ok }
func isResync(e Event) bool   { _, ok := e.(Resync); return ok }

// frameFilter decides, per frame written on a faultConn, what happens to it.
type frameAction int

const (
	pass frameAction = iota
	drop
	dup     // write it twice (a replay)
	hold    // keep it and write it after the next frame (a swap)
	corrupt // flip a bit in the body
)

// faultConn wraps the sender's end of the link and applies a per-frame
// action to what it writes, counting frames from 1 (the Hello).
type faultConn struct {
	net.Conn
	mu      sync.Mutex
	pending []byte // bytes not yet forming a whole frame; guarded by mu
	n       int    // frames seen; guarded by mu
	held    []byte // guarded by mu
	act     func(n int, h Header) frameAction
	// rewrite, when set, may replace a frame's bytes before act runs.
	rewrite func(n int, frame []byte) []byte
}

func (c *faultConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, b...)
	for len(c.pending) >= HeaderLen {
		var h Header
		if err := h.UnmarshalBinary(c.pending); err != nil {
			return 0, err
		}
		size := HeaderLen + int(h.Length)
		if len(c.pending) < size {
			break
		}
		frame := append([]byte(nil), c.pending[:size]...)
		c.pending = c.pending[size:]
		c.n++
		if c.rewrite != nil {
			frame = c.rewrite(c.n, frame)
		}
		var out []byte
		switch c.act(c.n, h) {
		case pass:
			out = frame
		case drop:
		case dup:
			out = append(frame, frame...)
		case hold:
			c.held = frame
		case corrupt:
			frame[len(frame)-1] ^= 1
			out = frame
		}
		if c.held != nil && len(out) > 0 {
			out = append(out, c.held...)
			c.held = nil
		}
		if len(out) > 0 {
			if _, err := c.Conn.Write(out); err != nil {
				return 0, err
			}
		}
	}
	return len(b), nil
}

// gateConn blocks writes while its gate is shut, to make the writer slow.
type gateConn struct {
	net.Conn
	mu   sync.Mutex
	open chan struct{} // guarded by mu; closed when the gate is open
}

func newGateConn(c net.Conn) *gateConn {
	g := &gateConn{Conn: c, open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gateConn) shut() {
	g.mu.Lock()
	g.open = make(chan struct{})
	g.mu.Unlock()
}

func (g *gateConn) release() {
	g.mu.Lock()
	close(g.open)
	g.mu.Unlock()
}

func (g *gateConn) Write(b []byte) (int, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	<-open
	return g.Conn.Write(b)
}

// pair is a sender and a receiver joined by a reconnecting in-memory link:
// each time a session ends, the next connection is made (through wrap) and
// both sides Serve again, as the unit's loops will.
type pair struct {
	fw      *fakeFirewall
	store   *fakeStore
	s       *Sender
	r       *Receiver
	sev     *recorder
	rev     *recorder
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   int                                // guarded by mu: connections made
	wrap    func(n int, c net.Conn) net.Conn   // guarded by mu: wraps the sender's end of connection n
	results []error                            // guarded by mu: receiver Serve results
	dial    func() (sender, receiver net.Conn) // default net.Pipe
	stop    chan struct{}

	closeOnce sync.Once
}

func newPair(t *testing.T, scfg func(*SenderConfig), rcfg func(*ReceiverConfig)) *pair {
	t.Helper()
	p := &pair{fw: newFakeFirewall(), store: newFakeStore(), sev: newRecorder(), rev: newRecorder(), stop: make(chan struct{})}
	sc := SenderConfig{Key: testKey, Source: p.fw, Tables: testTables, OnEvent: p.sev.on, FlushInterval: -1,
		Keepalive: -1, IdleTimeout: -1}
	if scfg != nil {
		scfg(&sc)
	}
	var err error
	if p.s, err = NewSender(sc); err != nil {
		t.Fatal(err)
	}
	p.fw.hook = p.s.Emit
	rc := ReceiverConfig{Key: testKey, Store: p.store, OnEvent: p.rev.on, IdleTimeout: -1}
	if rcfg != nil {
		rcfg(&rc)
	}
	if p.r, err = NewReceiver(rc); err != nil {
		t.Fatal(err)
	}
	p.dial = func() (net.Conn, net.Conn) { return net.Pipe() }
	t.Cleanup(func() { p.close(t) })
	return p
}

// start runs the reconnect loop until close.
func (p *pair) start() {
	p.wg.Go(func() {
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			a, b := p.dial()
			p.mu.Lock()
			p.conns++
			if p.wrap != nil {
				a = p.wrap(p.conns, a)
			}
			p.mu.Unlock()
			done := make(chan struct{})
			go func() { p.s.Serve(a); close(done) }()
			err := p.r.Serve(b)
			a.Close()
			<-done
			p.mu.Lock()
			p.results = append(p.results, err)
			p.mu.Unlock()
			if errors.Is(err, ErrClosed) {
				return
			}
		}
	})
}

// close stops both ends and the reconnect loop. Idempotent: newPair also
// registers it as a cleanup, so a test that fails early leaks nothing.
func (p *pair) close(t *testing.T) {
	t.Helper()
	p.closeOnce.Do(func() {
		close(p.stop)
		p.r.Close()
		p.s.Close()
		p.wg.Wait()
	})
}

// checkNoLeaks fails the test if goroutines started during it outlive it.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
				return
			}
			runtime.Gosched()
			time.Sleep(time.Millisecond) // polling a leak check, not timing logic
		}
	})
}

// fill puts n entries into each table.
func (f *fakeFirewall) fill(n int) {
	for _, t := range testTables {
		for k := 1; k <= n; k++ {
			f.set(t, uint64(k), fmt.Appendf(nil, "t%d-k%d-v0", t, k))
		}
	}
}

// mark queues a digest marker under the change lock, as the unit will.
func (p *pair) mark() {
	p.fw.MarkDigests(p.s.MarkDigest)
}

// waitUntil polls cond until it holds, failing the test after 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond) // polling, not timing logic
	}
}
