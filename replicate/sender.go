package replicate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Serve after Close, and is the SyncLost error of a
// session ended by Close.
var ErrClosed = errors.New("replicate: closed")

var errNilConn = errors.New("replicate: Serve called with a nil net.Conn")

// errReplaced ends a session that a newer Serve call took over.
var errReplaced = errors.New("replicate: session replaced by a newer connection")

// Source is how a Sender reads the caller's replicated tables for a bulk
// sync. The Sender calls it only from its bulk goroutine, never while
// holding its own locks, so the caller may take its change lock inside.
type Source interface {
	// Snapshot emits table's entries from cursor on, at most one chunk
	// (say one hash bucket, a few hundred entries), while holding the
	// same lock under which the caller calls Emit for changes to those
	// entries. It returns the cursor to continue from and whether the
	// table is finished. Start cursor is 0. Emit must not be called from
	// inside Snapshot; emit is the one to use. Keep chunks well under
	// QueueLimit/2: the Sender waits for room between chunks, never
	// inside one, so the caller's lock is never held while the network
	// drains.
	Snapshot(table uint8, cursor uint64, emit func(payload []byte)) (next uint64, done bool, err error)
	// MarkDigests takes the change lock, calls mark with the current
	// per-table digests, and releases the lock. The Sender calls it after
	// every bulk so the receiver can verify the sync.
	MarkDigests(mark func(digests map[uint8]uint64))
}

// SenderConfig configures a Sender. Zero durations and sizes take the
// defaults named; a negative duration turns the feature off.
type SenderConfig struct {
	Key    Key     // the lab's failover key (required)
	Source Source  // the tables, for bulk syncs (required)
	Tables []uint8 // replicated table ids, in bulk order (required)

	// Filter, when set, is asked about every record (changes and
	// snapshot alike) and drops those it returns false for; for example
	// HTTP connections while HTTP replication is off. It runs under the
	// caller's change lock: keep it cheap. Dropped records are counted
	// per table (Filtered); the standby will simply not have them, which
	// is the point, so the caller's digests must skip them too.
	Filter func(table uint8, op Op, payload []byte) bool

	QueueLimit    int           // records queued before overflow; default 65536
	QueueBytes    int           // bytes queued before overflow; default 16 MiB
	BatchBytes    int           // largest Records body; default 64 KiB, at most MaxBody
	FlushInterval time.Duration // longest a record waits for a batch; default 1 ms; negative: flush at once

	Keepalive        time.Duration // empty Records when idle this long; default 1 s
	IdleTimeout      time.Duration // the session dies with no frame from the receiver this long; default 5 s
	WriteTimeout     time.Duration // a write stuck this long kills the session; default 5 s
	HandshakeTimeout time.Duration // default 5 s

	Logger  *slog.Logger     // default: discard
	OnEvent func(Event)      // called from session goroutines; must not block or call back into the Sender
	Now     func() time.Time // clock for lag; default time.Now
}

func durDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func (c SenderConfig) withDefaults() (SenderConfig, error) {
	if c.Key.IsZero() {
		return c, errors.New("replicate: SenderConfig.Key is required (the sync link is never cleartext)")
	}
	if c.Source == nil {
		return c, errors.New("replicate: SenderConfig.Source is required")
	}
	if len(c.Tables) == 0 || len(c.Tables) > MaxTables {
		return c, fmt.Errorf("replicate: SenderConfig.Tables must name 1..%d tables, has %d", MaxTables, len(c.Tables))
	}
	if c.QueueLimit <= 0 {
		c.QueueLimit = 65536
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = 16 << 20
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 64 << 10
	}
	c.BatchBytes = max(min(c.BatchBytes, MaxBody), recordsHeaderLen+recordHeaderLen+MaxRecordPayload)
	c.FlushInterval = durDefault(c.FlushInterval, time.Millisecond)
	c.Keepalive = durDefault(c.Keepalive, time.Second)
	c.IdleTimeout = durDefault(c.IdleTimeout, 5*time.Second)
	c.WriteTimeout = durDefault(c.WriteTimeout, 5*time.Second)
	c.HandshakeTimeout = durDefault(c.HandshakeTimeout, 5*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.OnEvent == nil {
		c.OnEvent = func(Event) {}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Tables = slices.Clone(c.Tables)
	return c, nil
}

type qkind uint8

const (
	qRecords qkind = iota
	qBulkStart
	qBulkEnd
	qMarker
)

// qitem is one run of the queue: consecutive records (a byte range of the
// queue's buffer, already in wire form) or one control message.
type qitem struct {
	kind       qkind
	start, end int   // qRecords: range in queue.buf
	count      int   // qRecords: records in the range
	enq        int64 // Unix nanoseconds when the run's first record was queued
	bulkID     uint32
	bulkRecs   uint64        // qBulkEnd
	digests    []TableDigest // qMarker
}

// queue holds what Emit, the snapshot and MarkDigest appended, in order,
// until the writer takes it whole. Two queues alternate so steady state
// allocates nothing.
type queue struct {
	items   []qitem
	buf     []byte
	records int  // live records: appended and not superseded
	dead    int  // records superseded in buf, skipped by compact
	urgent  bool // a control message is waiting: flush without the interval

	// entries holds, for each entry EmitEntry named since the queue was
	// last emptied or marked, where its latest live record lies.
	entries map[entryRef]entrySlot
	// entriesPeak is the most entries the map has held since it was made.
	entriesPeak int
}

// entryRef names one entry of one table.
type entryRef struct {
	table uint8
	key   EntryKey
}

// entrySlot is where an entry's latest record lies in queue.buf, and what
// the standby holds of the entry before the first of its records still in
// the queue.
type entrySlot struct {
	off    int  // the record's offset in buf
	del    bool // the record is a delete
	absent bool // the standby does not hold the entry before it
}

func (q *queue) reset() {
	q.items = q.items[:0]
	q.buf = q.buf[:0]
	q.records = 0
	q.dead = 0
	q.urgent = false
	q.forgetEntries()
}

// entriesKept is the largest map of entries forgetEntries clears for
// reuse. A Go map never gives back the room it grew to, and clearing it
// costs its room, not its entries: after a burst (a long flush behind a
// slow standby) named tens of thousands of entries, every later 1 ms
// flush, which names a few hundred, would clear the burst's room.
const entriesKept = 4096

// forgetEntries empties entries, dropping a map that grew past
// entriesKept.
func (q *queue) forgetEntries() {
	if q.entriesPeak > entriesKept {
		q.entries, q.entriesPeak = nil, 0
		return
	}
	clear(q.entries)
}

// kill supersedes the record at off: compact will skip it.
func (q *queue) kill(off int) {
	q.buf[off+1] = 0 // no valid op
	q.records--
	q.dead++
}

// compact closes the gaps killed records left, moving each run's live
// records down in place. Runs keep their order; a run left empty has count
// zero. Runs lie in buf in item order, so the write offset never passes
// the read offset.
func (q *queue) compact() {
	if q.dead == 0 {
		return
	}
	dst := 0
	for i := range q.items {
		it := &q.items[i]
		if it.kind != qRecords {
			continue
		}
		start, n := dst, 0
		for off := it.start; off < it.end; {
			l := recordHeaderLen + int(binary.BigEndian.Uint16(q.buf[off+2:]))
			if q.buf[off+1] != 0 {
				dst += copy(q.buf[dst:], q.buf[off:off+l])
				n++
			}
			off += l
		}
		it.start, it.end, it.count = start, dst, n
	}
	q.buf = q.buf[:dst]
	q.dead = 0
}

// Sender is the active unit's end of the stream. It lives as long as the
// unit; connections come and go through Serve, one session at a time.
//
// Concurrency: Emit and MarkDigest are safe from any goroutine and never
// block on the network (they append to a bounded queue under a short
// mutex). Serve blocks for a session's life; Stats and Close are safe from
// any goroutine. Each session owns three goroutines (writer, ack reader,
// bulk) that all end before Serve returns.
type Sender struct {
	cfg SenderConfig
	log *slog.Logger
	c   counters
	lag DelayWindow

	installMu sync.Mutex  // serialises session replacement in Serve
	live      atomic.Bool // a session is installed: a fast, lock-free Emit exit when not

	mu        sync.Mutex
	q         *queue                // guarded by mu: being filled
	spare     *queue                // guarded by mu: nil while the writer holds it
	sess      *senderSession        // guarded by mu: the session past its handshake, or nil
	closed    bool                  // guarded by mu
	shaking   map[net.Conn]struct{} // guarded by mu: connections in their handshake
	queueHigh int                   // guarded by mu
}

// senderSession is one connection's state.
type senderSession struct {
	c          *conn
	done       chan struct{} // closed by fail
	exited     chan struct{} // closed when Serve has cleaned up
	kick       chan struct{} // wakes the writer (cap 1)
	drained    chan struct{} // the writer took the queue (cap 1)
	bulkWanted chan struct{} // a bulk sync is to run (cap 1)
	failOnce   sync.Once
	err        error // set once, before done closes

	// Guarded by Sender.mu:
	bulkGen   uint32 // id of the current bulk; bumps on every resync
	bulkRecs  uint64 // snapshot records of the current bulk
	inBulk    bool   // between BulkStart and BulkEnd in the queue
	reason    string // why the current bulk started
	bulkTaken uint32 // last bulkGen the bulk goroutine picked up
}

func (ss *senderSession) fail(err error) {
	ss.failOnce.Do(func() {
		ss.err = err
		close(ss.done)
		ss.c.nc.Close() // unblocks the writer's Write and the reader's Read
	})
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// NewSender checks cfg and returns an idle Sender.
func NewSender(cfg SenderConfig) (*Sender, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Sender{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "replicate.sender"),
		q:       new(queue),
		spare:   new(queue),
		shaking: map[net.Conn]struct{}{},
	}, nil
}

// Emit queues one change for the standby. It is called from the caller's
// change hook, under the caller's change lock; it never blocks on the
// network. With no session up the change is not queued (counted in
// DroppedNoSession): the next session begins with a bulk sync that reads the
// current state, which includes it. If the queue is full the session is
// marked for resync: the queue is discarded and a new bulk sync begins, so
// no change is silently lost. payload is copied.
func (s *Sender) Emit(table uint8, op Op, payload []byte) {
	s.emit(table, op, payload, false, EntryKey{}, false)
}

// EntryKey names one entry of a table for EmitEntry: the caller's key,
// padded with zeros.
type EntryKey [16]byte

// EmitEntry is Emit for a record that carries the whole of one entry,
// named by key, so that the queue may coalesce the entry's records while
// they wait for the writer, as OpenBSD's pfsync does with its queued
// states:
//
//   - an upsert supersedes the entry's earlier record still in the queue;
//   - a delete of an entry whose first queued record was fresh (an upsert
//     of an entry that did not exist before it) removes that record and is
//     itself dropped: the standby never held the entry.
//
// fresh says the upsert brings its entry into the table. Records are
// coalesced only between digest markers and outside bulk syncs, and the
// entry's record moves only later in the stream; doc.go says why the
// standby still converges. Superseded records are counted as Coalesced.
func (s *Sender) EmitEntry(table uint8, op Op, key EntryKey, fresh bool, payload []byte) {
	s.emit(table, op, payload, true, key, fresh)
}

func (s *Sender) emit(table uint8, op Op, payload []byte, keyed bool, key EntryKey, fresh bool) {
	if !s.live.Load() {
		s.c.droppedNoSession.Add(1)
		return
	}
	if !s.accept(table, op, payload) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sess
	if ss == nil {
		s.c.droppedNoSession.Add(1)
		return
	}
	q := s.q
	if q.records >= s.cfg.QueueLimit || len(q.buf)+recordHeaderLen+len(payload) > s.cfg.QueueBytes {
		s.c.overflows.Add(1)
		s.startBulkLocked(ss, fmt.Sprintf("queue overflow at %d records, %d bytes", q.records, len(q.buf)))
		return
	}
	if !keyed || ss.inBulk {
		s.appendLocked(ss, table, op, payload)
		return
	}
	ref := entryRef{table, key}
	slot, queued := s.coalesceLocked(ref, op, fresh)
	if !queued {
		return
	}
	slot.off = len(q.buf)
	s.appendLocked(ss, table, op, payload)
	q.remember(ref, slot)
}

// remember records where ref's latest record lies.
func (q *queue) remember(ref entryRef, slot entrySlot) {
	if q.entries == nil {
		q.entries = make(map[entryRef]entrySlot)
	}
	q.entries[ref] = slot
	q.entriesPeak = max(q.entriesPeak, len(q.entries))
}

// coalesceLocked applies what the queue holds about an entry to a new
// record of it: it kills the entry's superseded record and returns the new
// record's slot (its offset left for the caller), or queued false when the
// new record is not needed either. s.mu is held.
func (s *Sender) coalesceLocked(ref entryRef, op Op, fresh bool) (slot entrySlot, queued bool) {
	q := s.q
	prev, held := q.entries[ref]
	slot = entrySlot{del: op == OpDelete, absent: op == OpUpsert && fresh}
	switch {
	case !held:
	case prev.del:
		// The queued delete stays: after it the standby lacks the entry.
		slot.absent = op == OpUpsert
	default:
		q.kill(prev.off)
		s.c.tables[ref.table].coalesced.Add(1)
		slot.absent = prev.absent
		if op == OpDelete && prev.absent {
			delete(q.entries, ref)
			tc := &s.c.tables[ref.table]
			tc.queued.Add(1) // accepted, so that queued = sent + coalesced
			tc.coalesced.Add(1)
			return slot, false
		}
	}
	return slot, true
}

// accept applies the filter and the record limits, counting what it drops.
func (s *Sender) accept(table uint8, op Op, payload []byte) bool {
	tc := &s.c.tables[table]
	if !op.valid() || len(payload) > MaxRecordPayload {
		tc.errors.Add(1)
		s.c.setErr(fmt.Errorf("table %d: record refused: op %v, payload %d bytes (limit %d)", table, op, len(payload), MaxRecordPayload))
		return false
	}
	if s.cfg.Filter != nil && !s.cfg.Filter(table, op, payload) {
		tc.filtered.Add(1)
		return false
	}
	return true
}

// appendLocked appends one record to the current queue. s.mu is held.
func (s *Sender) appendLocked(ss *senderSession, table uint8, op Op, payload []byte) {
	q := s.q
	wasEmpty := len(q.items) == 0
	if n := len(q.items); n == 0 || q.items[n-1].kind != qRecords {
		q.items = append(q.items, qitem{kind: qRecords, start: len(q.buf), end: len(q.buf), enq: s.cfg.Now().UnixNano()})
	}
	it := &q.items[len(q.items)-1]
	prev := len(q.buf)
	q.buf = appendRecord(q.buf, table, op, payload)
	it.end = len(q.buf)
	it.count++
	q.records++
	s.queueHigh = max(s.queueHigh, q.records)
	s.c.tables[table].queued.Add(1)
	// Wake the writer when it has something to time (first record) or a
	// full batch to send.
	if wasEmpty || (prev < s.cfg.BatchBytes && len(q.buf) >= s.cfg.BatchBytes) {
		signal(ss.kick)
	}
}

// startBulkLocked discards the queue and begins a bulk sync: BulkStart goes
// into the queue now, and the bulk goroutine snapshots after it. s.mu is
// held.
func (s *Sender) startBulkLocked(ss *senderSession, reason string) {
	s.q.reset()
	ss.bulkGen++
	ss.bulkRecs = 0
	ss.inBulk = true
	ss.reason = reason
	s.q.items = append(s.q.items, qitem{kind: qBulkStart, bulkID: ss.bulkGen, enq: s.cfg.Now().UnixNano()})
	s.q.urgent = true
	s.c.inBulk.Store(true)
	signal(ss.bulkWanted)
	signal(ss.kick)
}

// MarkDigest queues a digest marker at the current stream position. Call it
// under the same change lock as Emit, so the digests describe exactly the
// records queued before it. Markers during a bulk sync are skipped (the
// standby's tables are incomplete then); the Sender marks after every bulk
// itself through Source.MarkDigests.
func (s *Sender) MarkDigest(digests map[uint8]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sess
	if ss == nil || ss.inBulk {
		return
	}
	s.markLocked(ss, digests)
}

func (s *Sender) markLocked(ss *senderSession, digests map[uint8]uint64) {
	d := make([]TableDigest, 0, len(digests))
	for t, v := range digests {
		d = append(d, TableDigest{Table: t, Digest: v})
	}
	slices.SortFunc(d, func(a, b TableDigest) int { return int(a.Table) - int(b.Table) })
	s.q.items = append(s.q.items, qitem{kind: qMarker, digests: d, enq: s.cfg.Now().UnixNano()})
	s.q.urgent = true
	// The digests describe the records before the marker: none of them
	// may be superseded by one after it.
	s.q.forgetEntries()
	signal(ss.kick)
}

// Serve runs one session on nc: handshake, a bulk sync, then the
// incremental stream, until the link fails, the peer closes, a newer Serve
// replaces it, or Close. Serve owns nc and closes it. It returns why the
// session ended (never nil). The caller loops over connections.
func (s *Sender) Serve(nc net.Conn) error {
	if nc == nil {
		return errNilConn
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.shaking[nc] = struct{}{} // Close interrupts a handshake too
	}
	s.mu.Unlock()
	if closed {
		nc.Close()
		return ErrClosed
	}
	c := newConn(nc, RoleSender)
	err := c.handshake(RoleSender, s.cfg.Key, s.cfg.HandshakeTimeout)
	s.mu.Lock()
	delete(s.shaking, nc)
	if s.closed && err != nil {
		err = fmt.Errorf("%w (during handshake: %v)", ErrClosed, err)
	}
	s.mu.Unlock()
	if err != nil {
		nc.Close()
		s.refused(nc, err)
		return err
	}
	ss := &senderSession{
		c:          c,
		done:       make(chan struct{}),
		exited:     make(chan struct{}),
		kick:       make(chan struct{}, 1),
		drained:    make(chan struct{}, 1),
		bulkWanted: make(chan struct{}, 1),
	}
	s.installMu.Lock()
	s.mu.Lock()
	old := s.sess
	s.mu.Unlock()
	if old != nil {
		old.fail(errReplaced)
		<-old.exited
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.installMu.Unlock()
		nc.Close()
		return ErrClosed
	}
	s.sess = ss
	s.live.Store(true)
	s.startBulkLocked(ss, "session start")
	s.mu.Unlock()
	s.installMu.Unlock()

	s.c.sessions.Add(1)
	s.c.connected.Store(true)
	s.log.Info("replication session up", "peer", peerAddr(nc))
	s.cfg.OnEvent(SessionUp{Peer: peerAddr(nc)})

	var wg sync.WaitGroup
	wg.Go(func() { ss.fail(s.writeLoop(ss)) })
	wg.Go(func() { ss.fail(s.readLoop(ss)) })
	wg.Go(func() { s.bulkLoop(ss) })
	<-ss.done
	wg.Wait()

	s.mu.Lock()
	if s.sess == ss {
		s.sess = nil
		s.live.Store(false)
		s.q.reset()
		s.c.connected.Store(false)
		s.c.inBulk.Store(false)
	}
	s.mu.Unlock()
	close(ss.exited)
	s.ended(ss.err)
	return ss.err
}

// peerAddr names the remote end for logs, even for conns without one.
func peerAddr(nc net.Conn) string {
	if a := nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return "unknown"
}

// ended counts and reports a session's end.
func (s *Sender) ended(err error) {
	countEnd(&s.c, err)
	s.log.Warn("replication session ended", "err", err)
	s.cfg.OnEvent(SyncLost{Reason: err.Error(), Err: err})
}

// refused counts and reports a connection that never became a session
// (garbage, a port scan, an idle connection, a wrong key, a replayed
// handshake). The session in place, if any, is untouched: a stranger
// knocking on the state port says nothing about the standby.
func (s *Sender) refused(nc net.Conn, err error) {
	s.c.refused.Add(1)
	if errors.Is(err, ErrWrongKey) {
		s.c.authFailures.Add(1)
	}
	s.c.setErr(err)
	s.log.Warn("state connection refused before its handshake completed", "peer", peerAddr(nc), "err", err)
	s.cfg.OnEvent(HandshakeRefused{Peer: peerAddr(nc), Reason: err.Error(), Err: err})
}

// countEnd classifies a session's end into the counters.
func countEnd(c *counters, err error) {
	c.synced.Store(false)
	if errors.Is(err, ErrClosed) {
		return
	}
	c.sessionErrors.Add(1)
	c.setErr(err)
	switch {
	case errors.Is(err, ErrSeqGap), errors.Is(err, ErrReplay):
		c.sequenceErrors.Add(1)
	case errors.Is(err, ErrWrongKey), errors.Is(err, ErrDecrypt):
		c.authFailures.Add(1)
	}
}

// Close ends the current session (its Serve returns ErrClosed) and makes
// later Serve calls fail. It waits for the session's goroutines to stop.
func (s *Sender) Close() error {
	s.installMu.Lock()
	defer s.installMu.Unlock()
	s.mu.Lock()
	s.closed = true
	ss := s.sess
	for nc := range s.shaking {
		nc.Close()
	}
	s.mu.Unlock()
	if ss != nil {
		ss.fail(ErrClosed)
		<-ss.exited
	}
	return nil
}

// Stats returns the counters.
func (s *Sender) Stats() Stats {
	st := Stats{Role: RoleSender.String()}
	s.c.fill(&st)
	s.mu.Lock()
	st.QueueDepth = s.q.records
	st.QueueBytes = len(s.q.buf)
	st.QueueHigh = s.queueHigh
	s.mu.Unlock()
	st.LagSamples, st.LagP50, st.LagP99, st.LagMax = s.lag.Percentiles()
	return st
}

// takeBulkLocked picks up the current bulk for the bulk goroutine, once:
// ok is false when that bulk was already taken. A wakeup can outlive its
// bulk: a resync that bumps bulkGen after the goroutine took the previous
// wakeup but before it read bulkGen leaves a signal for the bulk it then
// runs, and running that bulk a second time would queue a second BulkEnd,
// which the receiver rejects as out of place, ending the session. s.mu is
// held.
func (ss *senderSession) takeBulkLocked() (gen uint32, reason string, first, ok bool) {
	if ss.bulkGen == ss.bulkTaken {
		return 0, "", false, false
	}
	first = ss.bulkTaken == 0
	ss.bulkTaken = ss.bulkGen
	return ss.bulkGen, ss.reason, first, true
}

// bulkLoop runs a bulk sync each time one is wanted, until the session ends.
func (s *Sender) bulkLoop(ss *senderSession) {
	for {
		select {
		case <-ss.done:
			return
		case <-ss.bulkWanted:
		}
		s.mu.Lock()
		gen, reason, first, ok := ss.takeBulkLocked()
		s.mu.Unlock()
		if !ok {
			continue
		}
		s.c.bulkSyncs.Add(1)
		if !first {
			s.c.resyncs.Add(1)
			s.log.Warn("replication resync: bulk sync again", "bulk", gen, "reason", reason)
			s.cfg.OnEvent(Resync{Reason: reason})
		}
		if err := s.runBulk(ss, gen); err != nil {
			ss.fail(err)
			return
		}
	}
}

// runBulk snapshots every table behind BulkStart gen, chunk by chunk, then
// queues BulkEnd and asks the Source for a digest marker. It stops quietly
// when a newer bulk supersedes it (the newer one is already signalled).
func (s *Sender) runBulk(ss *senderSession, gen uint32) error {
	start := s.cfg.Now()
	emit := func(table uint8) func([]byte) {
		return func(payload []byte) {
			if !s.accept(table, OpUpsert, payload) {
				return
			}
			s.mu.Lock()
			if ss.bulkGen == gen && s.sess == ss {
				s.appendLocked(ss, table, OpUpsert, payload)
				ss.bulkRecs++
			}
			s.mu.Unlock()
		}
	}
	for _, table := range s.cfg.Tables {
		e := emit(table)
		for cursor := uint64(0); ; {
			if !s.waitRoom(ss) {
				return nil
			}
			s.mu.Lock()
			stale := ss.bulkGen != gen
			s.mu.Unlock()
			if stale {
				return nil
			}
			next, done, err := s.cfg.Source.Snapshot(table, cursor, e)
			if err != nil {
				return fmt.Errorf("replicate: snapshot of table %d at cursor %d: %w", table, cursor, err)
			}
			if done {
				break
			}
			cursor = next
		}
		s.mu.Lock()
		n := ss.bulkRecs
		s.mu.Unlock()
		s.cfg.OnEvent(BulkProgress{BulkID: gen, Table: table, Records: n})
	}
	s.mu.Lock()
	if ss.bulkGen != gen || s.sess != ss {
		s.mu.Unlock()
		return nil
	}
	n := ss.bulkRecs
	ss.inBulk = false
	s.q.items = append(s.q.items, qitem{kind: qBulkEnd, bulkID: gen, bulkRecs: n, enq: s.cfg.Now().UnixNano()})
	s.q.urgent = true
	s.c.inBulk.Store(false)
	signal(ss.kick)
	s.mu.Unlock()
	s.cfg.OnEvent(BulkProgress{BulkID: gen, Records: n, Done: true})
	s.cfg.Source.MarkDigests(func(d map[uint8]uint64) {
		s.mu.Lock()
		if s.sess == ss && ss.bulkGen == gen {
			s.markLocked(ss, d)
		}
		s.mu.Unlock()
	})
	s.log.Info("bulk sync queued", "bulk", gen, "records", n, "took", s.cfg.Now().Sub(start))
	return nil
}

// waitRoom waits until the queue is below half its limits, so a snapshot
// chunk fits and Emit keeps headroom. False: the session ended.
func (s *Sender) waitRoom(ss *senderSession) bool {
	for {
		s.mu.Lock()
		room := s.q.records < s.cfg.QueueLimit/2 && len(s.q.buf) < s.cfg.QueueBytes/2
		s.mu.Unlock()
		if room {
			return true
		}
		select {
		case <-ss.drained:
		case <-ss.done:
			return false
		}
	}
}

// writeLoop is the session's only writer: it takes the queue whole, turns it
// into sealed frames and writes them. It flushes when a batch is full, a
// control message waits, or the oldest record has waited FlushInterval.
func (s *Sender) writeLoop(ss *senderSession) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var keepalive <-chan time.Time
	if s.cfg.Keepalive > 0 {
		t := time.NewTicker(s.cfg.Keepalive)
		defer t.Stop()
		keepalive = t.C
	}
	w := &frameWriter{s: s, ss: ss, out: make([]byte, 0, 256<<10)}
	timerArmed := false
	for {
		select {
		case <-ss.done:
			return nil
		case <-ss.kick:
		case <-timer.C:
			timerArmed = false
		case <-keepalive:
			if !w.wrote {
				if err := w.keepalive(); err != nil {
					return err
				}
			}
			w.wrote = false
			continue
		}
		s.mu.Lock()
		q := s.q
		if len(q.items) == 0 {
			s.mu.Unlock()
			continue
		}
		if s.cfg.FlushInterval > 0 && !q.urgent && len(q.buf) < s.cfg.BatchBytes {
			age := time.Duration(s.cfg.Now().UnixNano() - q.items[0].enq)
			if age < s.cfg.FlushInterval {
				if !timerArmed {
					timer.Reset(s.cfg.FlushInterval - age)
					timerArmed = true
				}
				s.mu.Unlock()
				continue
			}
		}
		s.q, s.spare = s.spare, nil
		s.q.reset()
		s.mu.Unlock()
		signal(ss.drained)

		err := w.writeQueue(q)
		q.reset()
		s.mu.Lock()
		s.spare = q
		// More may have arrived while we wrote: look again without waiting
		// for a kick that was already consumed.
		if len(s.q.items) > 0 {
			signal(ss.kick)
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// frameWriter encodes queue contents into frames. Owned by the writer
// goroutine.
type frameWriter struct {
	s     *Sender
	ss    *senderSession
	out   []byte
	seq   uint64 // last record sequence assigned
	wrote bool   // something was written since the last keepalive tick
}

func (w *frameWriter) flush() error {
	if len(w.out) == 0 {
		return nil
	}
	nc := w.ss.c.nc
	if w.s.cfg.WriteTimeout > 0 {
		if err := nc.SetWriteDeadline(time.Now().Add(w.s.cfg.WriteTimeout)); err != nil {
			return err
		}
	}
	n, err := nc.Write(w.out)
	w.s.c.bytesSent.Add(uint64(n))
	w.out = w.out[:0]
	w.wrote = true
	if err != nil {
		return fmt.Errorf("replicate: writing to standby: %w", err)
	}
	return nil
}

func (w *frameWriter) message(m Message) error {
	var err error
	w.out, err = w.ss.c.w.appendMessage(w.out, m)
	if err != nil {
		return err
	}
	w.s.c.framesSent.Add(1)
	return nil
}

func (w *frameWriter) keepalive() error {
	if err := w.records(0, w.seq+1, nil, 0); err != nil {
		return err
	}
	return w.flush()
}

// records appends one Records frame holding count wire-form records.
func (w *frameWriter) records(sentAt int64, first uint64, recs []byte, count int) error {
	var err error
	w.out, err = w.ss.c.w.appendFrame(w.out, MsgRecords, func(b []byte) ([]byte, error) {
		b = binary.BigEndian.AppendUint64(b, uint64(sentAt))
		b = binary.BigEndian.AppendUint64(b, first)
		b = binary.BigEndian.AppendUint32(b, uint32(count))
		return append(b, recs...), nil
	})
	if err != nil {
		return err
	}
	w.s.c.framesSent.Add(1)
	return nil
}

const flushBytes = 256 << 10

// writeQueue writes q's items in order, splitting record runs into frames of
// at most BatchBytes.
func (w *frameWriter) writeQueue(q *queue) error {
	tables := &w.s.c.tables
	limit := w.s.cfg.BatchBytes - recordsHeaderLen
	q.compact()
	for i := range q.items {
		it := &q.items[i]
		var err error
		switch it.kind {
		case qRecords:
			if it.count == 0 {
				continue
			}
			run := q.buf[it.start:it.end]
			for len(run) > 0 {
				n, size := 0, 0
				for size < len(run) {
					l := recordHeaderLen + int(binary.BigEndian.Uint16(run[size+2:]))
					if n > 0 && size+l > limit {
						break
					}
					tables[run[size]].sent.Add(1)
					size += l
					n++
				}
				if err = w.records(it.enq, w.seq+1, run[:size], n); err != nil {
					return err
				}
				w.seq += uint64(n)
				run = run[size:]
				if len(w.out) >= flushBytes {
					if err = w.flush(); err != nil {
						return err
					}
				}
			}
			w.s.c.recordSeq.Store(w.seq)
		case qBulkStart:
			err = w.message(&BulkStart{BulkID: it.bulkID, Tables: w.s.cfg.Tables})
		case qBulkEnd:
			err = w.message(&BulkEnd{BulkID: it.bulkID, Records: it.bulkRecs})
		case qMarker:
			w.s.c.digestMarkers.Add(1)
			err = w.message(&DigestMarker{RecordSeq: w.seq, Digests: it.digests})
		}
		if err != nil {
			return err
		}
	}
	return w.flush()
}

// readLoop reads the receiver's Acks and ResyncRequests.
func (s *Sender) readLoop(ss *senderSession) error {
	c := ss.c
	var lastAck uint64
	for {
		if s.cfg.IdleTimeout > 0 {
			if err := c.nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout)); err != nil {
				return err
			}
		}
		h, body, err := c.r.next()
		if err != nil {
			return fmt.Errorf("replicate: reading from standby: %w", err)
		}
		s.c.framesReceived.Add(1)
		s.c.bytesReceived.Add(uint64(HeaderLen) + uint64(h.Length))
		switch h.Type {
		case MsgAck:
			var a Ack
			if err := a.UnmarshalBinary(body); err != nil {
				return fmt.Errorf("replicate: Ack: %w", err)
			}
			s.c.ackedSeq.Store(a.Seq)
			s.c.synced.Store(a.Synced)
			if a.Seq > lastAck && a.EchoSentAt != 0 {
				s.lag.Add(time.Duration(s.cfg.Now().UnixNano() - a.EchoSentAt))
			}
			lastAck = max(lastAck, a.Seq)
		case MsgResync:
			var r ResyncRequest
			if err := r.UnmarshalBinary(body); err != nil {
				return fmt.Errorf("replicate: ResyncRequest: %w", err)
			}
			s.mu.Lock()
			if s.sess == ss {
				s.startBulkLocked(ss, "standby asked: "+r.Reason)
			}
			s.mu.Unlock()
		case MsgClose:
			return closeError(body)
		default:
			return fmt.Errorf("%w: %v from the standby", ErrUnexpected, h.Type)
		}
	}
}
