package replicate

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/falab/falab/busyloop"
)

// Store is the standby's side of the tables. The Receiver calls it from one
// goroutine at a time (the serving session's), in stream order.
type Store interface {
	// Reset empties table before a bulk sync refills it.
	Reset(table uint8) error
	// Apply applies one record. payload is only valid during the call.
	// An error is counted (per table Errors) and the stream goes on; the
	// next digest marker then finds the difference and asks for resync.
	Apply(table uint8, op Op, payload []byte) error
	// Digests returns the current per-table digests, computed the same
	// way as the sender's.
	Digests() map[uint8]uint64
}

// ReceiverConfig configures a Receiver. Zero durations take the defaults
// named; a negative duration turns the feature off.
type ReceiverConfig struct {
	Key   Key   // the lab's failover key (required)
	Store Store // where records are applied (required)

	IdleTimeout      time.Duration // the session dies with no frame from the sender this long; default 5 s
	WriteTimeout     time.Duration // default 5 s
	HandshakeTimeout time.Duration // default 5 s
	AckEvery         int           // ack at least every this many frames even when more are buffered; default 64

	// MinResyncInterval spaces the resync requests of a mismatch that
	// persists (a record that keeps failing to apply), so the link is not
	// kept busy with back-to-back bulk syncs; a mismatch inside it is
	// counted (ResyncsDeferred) and asked again at the next marker after
	// it. Default 1 s.
	MinResyncInterval time.Duration
	Now               func() time.Time // clock for MinResyncInterval; default time.Now

	Logger  *slog.Logger // default: discard
	OnEvent func(Event)  // called from the session goroutine; must not block or call back into the Receiver
	// TableName names a table id in the logs (the unit knows its tables'
	// names; this package only their ids). Default: the number.
	TableName func(uint8) string
}

// Receiver is the standby unit's end of the stream. One session at a time:
// a newer Serve closes the older connection.
//
// Concurrency: Serve blocks for a session's life and makes every Store call
// from its own goroutine. Stats and Close are safe from any goroutine.
type Receiver struct {
	cfg ReceiverConfig
	log *slog.Logger
	c   counters

	serveMu sync.Mutex // held by the serving session: one Store user at a time

	mu     sync.Mutex
	cur    net.Conn // guarded by mu: the connection being served
	closed bool     // guarded by mu

	lastResync time.Time // owned by the serving session (serveMu)
}

// NewReceiver checks cfg and returns an idle Receiver.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if cfg.Key.IsZero() {
		return nil, errors.New("replicate: ReceiverConfig.Key is required (the sync link is never cleartext)")
	}
	if cfg.Store == nil {
		return nil, errors.New("replicate: ReceiverConfig.Store is required")
	}
	cfg.IdleTimeout = durDefault(cfg.IdleTimeout, 5*time.Second)
	cfg.WriteTimeout = durDefault(cfg.WriteTimeout, 5*time.Second)
	cfg.HandshakeTimeout = durDefault(cfg.HandshakeTimeout, 5*time.Second)
	cfg.MinResyncInterval = durDefault(cfg.MinResyncInterval, time.Second)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AckEvery <= 0 {
		cfg.AckEvery = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnEvent == nil {
		cfg.OnEvent = func(Event) {}
	}
	if cfg.TableName == nil {
		cfg.TableName = func(t uint8) string { return strconv.Itoa(int(t)) }
	}
	return &Receiver{cfg: cfg, log: cfg.Logger.With("component", "replicate.receiver")}, nil
}

// Serve runs one session on nc until it fails, the sender closes it, a newer
// Serve replaces it, or Close. Serve owns nc and closes it. It returns why
// the session ended (never nil). A session that dies (gap, bad frame, lost
// link) is resynchronised by the next one, which always starts with a bulk
// sync: the caller reconnects and calls Serve again.
func (r *Receiver) Serve(nc net.Conn) error {
	if nc == nil {
		return errNilConn
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		nc.Close()
		return ErrClosed
	}
	if r.cur != nil {
		r.cur.Close() // the older session ends and releases serveMu
	}
	r.mu.Unlock()

	r.serveMu.Lock()
	defer r.serveMu.Unlock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		nc.Close()
		return ErrClosed
	}
	r.cur = nc
	r.mu.Unlock()

	err := r.session(nc)

	r.mu.Lock()
	if r.cur == nc {
		r.cur = nil
	}
	if r.closed {
		err = fmt.Errorf("%w (%v)", ErrClosed, err)
	}
	r.mu.Unlock()
	nc.Close()
	r.c.connected.Store(false)
	r.c.inBulk.Store(false)
	countEnd(&r.c, err)
	r.log.Warn("replication session ended", "err", err)
	r.cfg.OnEvent(SyncLost{Reason: err.Error(), Err: err})
	return err
}

// Close ends the current session and makes later Serve calls fail.
func (r *Receiver) Close() error {
	r.mu.Lock()
	r.closed = true
	if r.cur != nil {
		r.cur.Close()
	}
	r.mu.Unlock()
	r.serveMu.Lock() // wait for the session to finish
	//lint:ignore SA2001 taking serveMu is the wait; nothing is guarded here
	r.serveMu.Unlock()
	return nil
}

// Stats returns the counters.
func (r *Receiver) Stats() Stats {
	st := Stats{Role: RoleReceiver.String()}
	r.c.fill(&st)
	return st
}

// recvState is one session's position in the stream. Owned by the session
// goroutine.
type recvState struct {
	nextSeq     uint64 // record sequence expected next
	inBulk      bool
	bulkID      uint32
	bulkRecs    uint64 // records applied since BulkStart
	pendingDone bool   // BulkEnd seen; the next marker decides BulkSyncDone
	awaitResync bool   // asked for resync; ignore markers until BulkStart
	bulks       int    // bulk syncs seen this session

	unacked   int   // frames handled since the last Ack, of every type
	ackSentAt int64 // oldest SentAt among them (0: no Records with a time)
}

func (r *Receiver) session(nc net.Conn) error {
	c := newConn(nc, RoleReceiver)
	if err := c.handshake(RoleReceiver, r.cfg.Key, r.cfg.HandshakeTimeout); err != nil {
		return err
	}
	r.c.sessions.Add(1)
	r.c.connected.Store(true)
	r.log.Info("replication session up", "peer", peerAddr(nc))
	r.cfg.OnEvent(SessionUp{Peer: peerAddr(nc)})

	st := recvState{nextSeq: 1}
	for {
		if r.cfg.IdleTimeout > 0 {
			if err := nc.SetReadDeadline(time.Now().Add(r.cfg.IdleTimeout)); err != nil {
				return err
			}
		}
		h, body, err := c.r.next()
		if err != nil {
			return fmt.Errorf("replicate: reading from active: %w", err)
		}
		r.c.framesReceived.Add(1)
		r.c.bytesReceived.Add(uint64(HeaderLen) + uint64(h.Length))
		if err := r.handle(c, &st, h.Type, body); err != nil {
			return err
		}
		// Every frame is answered, not only Records: an idle active
		// writes only digest markers and skips its keepalives while it
		// does, and an Ack is the sender's only proof that this side is
		// alive. Without it the sender's idle timeout ends a healthy
		// session every IdleTimeout.
		st.unacked++
		if st.unacked > 0 && (c.r.r.Buffered() == 0 || st.unacked >= r.cfg.AckEvery) {
			ack := &Ack{Seq: st.nextSeq - 1, EchoSentAt: st.ackSentAt, Synced: r.c.synced.Load() && !st.inBulk && !st.awaitResync}
			if err := r.write(c, ack); err != nil {
				return err
			}
			st.unacked, st.ackSentAt = 0, 0
		}
		// A stream that never runs dry (a backlog after the standby was
		// short of CPU) never blocks this loop: let the hellos and the
		// data plane in between frames.
		if busyloop.Due() {
			busyloop.Yield()
		}
	}
}

func (r *Receiver) write(c *conn, m Message) error {
	if r.cfg.WriteTimeout > 0 {
		if err := c.nc.SetWriteDeadline(time.Now().Add(r.cfg.WriteTimeout)); err != nil {
			return err
		}
	}
	if err := c.writeMessage(m); err != nil {
		return fmt.Errorf("replicate: writing %v to active: %w", m.Type(), err)
	}
	r.c.framesSent.Add(1)
	return nil
}

// handle applies one frame's message.
func (r *Receiver) handle(c *conn, st *recvState, t MsgType, body []byte) error {
	switch t {
	case MsgRecords:
		v := RecordsView(body)
		if err := v.Validate(); err != nil {
			return fmt.Errorf("replicate: Records: %w", err)
		}
		if v.FirstSeq() != st.nextSeq {
			return fmt.Errorf("%w: Records start at record %d, expected %d", ErrUnexpected, v.FirstSeq(), st.nextSeq)
		}
		v.Each(func(table uint8, op Op, payload []byte) {
			tc := &r.c.tables[table]
			tc.received.Add(1)
			if err := r.cfg.Store.Apply(table, op, payload); err != nil {
				if tc.errors.Add(1) == 1 {
					r.log.Error("record failed to apply", "table", r.cfg.TableName(table), "op", op, "err", err)
				}
				r.c.setErr(fmt.Errorf("apply table %d %v: %w", table, op, err))
				return
			}
			tc.applied.Add(1)
		})
		n := uint64(v.Count())
		st.nextSeq += n
		r.c.recordSeq.Store(st.nextSeq - 1)
		if st.ackSentAt == 0 || (v.SentAt() != 0 && v.SentAt() < st.ackSentAt) {
			st.ackSentAt = v.SentAt()
		}
		if st.inBulk && n > 0 {
			st.bulkRecs += n
			r.cfg.OnEvent(BulkProgress{BulkID: st.bulkID, Records: st.bulkRecs})
		}
	case MsgBulkStart:
		var m BulkStart
		if err := m.UnmarshalBinary(body); err != nil {
			return fmt.Errorf("replicate: BulkStart: %w", err)
		}
		for _, t := range m.Tables {
			if err := r.cfg.Store.Reset(t); err != nil {
				return fmt.Errorf("replicate: resetting table %d for bulk sync: %w", t, err)
			}
		}
		st.inBulk, st.bulkID, st.bulkRecs = true, m.BulkID, 0
		st.pendingDone, st.awaitResync = false, false
		st.bulks++
		r.c.bulkSyncs.Add(1)
		if st.bulks > 1 {
			r.c.resyncs.Add(1)
		}
		r.c.inBulk.Store(true)
		r.c.synced.Store(false)
		r.log.Info("bulk sync started", "bulk", m.BulkID, "tables", r.tableNames(m.Tables))
		r.cfg.OnEvent(BulkProgress{BulkID: m.BulkID})
	case MsgBulkEnd:
		var m BulkEnd
		if err := m.UnmarshalBinary(body); err != nil {
			return fmt.Errorf("replicate: BulkEnd: %w", err)
		}
		if !st.inBulk || m.BulkID != st.bulkID {
			return fmt.Errorf("%w: BulkEnd %d, in bulk %v with id %d", ErrUnexpected, m.BulkID, st.inBulk, st.bulkID)
		}
		st.inBulk, st.pendingDone = false, true
		r.c.inBulk.Store(false)
		r.cfg.OnEvent(BulkProgress{BulkID: m.BulkID, Records: st.bulkRecs, Done: true})
	case MsgDigest:
		var m DigestMarker
		if err := m.UnmarshalBinary(body); err != nil {
			return fmt.Errorf("replicate: DigestMarker: %w", err)
		}
		if m.RecordSeq != st.nextSeq-1 {
			return fmt.Errorf("%w: DigestMarker at record %d, applied %d", ErrUnexpected, m.RecordSeq, st.nextSeq-1)
		}
		if st.inBulk || st.awaitResync {
			return nil // tables incomplete, or already known wrong
		}
		return r.compare(c, st, &m)
	case MsgClose:
		return closeError(body)
	default:
		return fmt.Errorf("%w: %v from the active", ErrUnexpected, t)
	}
	return nil
}

// compare checks a marker against the Store and asks for resync on a
// mismatch.
func (r *Receiver) compare(c *conn, st *recvState, m *DigestMarker) error {
	r.c.digestMarkers.Add(1)
	mine := r.cfg.Store.Digests()
	var bad []uint8
	for _, d := range m.Digests {
		if v, ok := mine[d.Table]; !ok || v != d.Digest {
			bad = append(bad, d.Table)
		}
	}
	slices.Sort(bad)
	match := len(bad) == 0
	r.c.synced.Store(match)
	// Count a mismatch before the events about it, so that whoever waits
	// for an event reads counters that include it.
	var reason string
	deferred := false
	if !match {
		r.c.digestMismatches.Add(1)
		reason = fmt.Sprintf("digest mismatch at record %d in tables %v", m.RecordSeq, bad)
		r.c.setErr(errors.New(reason))
		now := r.cfg.Now()
		deferred = !r.lastResync.IsZero() && now.Sub(r.lastResync) < r.cfg.MinResyncInterval
		if deferred {
			r.c.resyncsDeferred.Add(1)
		} else {
			r.lastResync = now
		}
	}
	r.cfg.OnEvent(DigestChecked{RecordSeq: m.RecordSeq, Match: match, Mismatched: bad})
	if st.pendingDone {
		st.pendingDone = false
		r.log.Info("bulk sync done", "bulk", st.bulkID, "match", match, "records", st.bulkRecs)
		r.cfg.OnEvent(BulkSyncDone{BulkID: st.bulkID, Match: match, Records: st.bulkRecs, Mismatched: bad})
	}
	if match {
		return nil
	}
	if deferred {
		r.log.Warn("replication out of sync: resync deferred", "reason", reason, "last_request", r.lastResync)
		return nil
	}
	r.log.Warn("replication out of sync: asking for resync", "reason", reason)
	st.awaitResync = true
	r.cfg.OnEvent(Resync{Reason: reason})
	return r.write(c, &ResyncRequest{Reason: reason})
}

// tableNames names table ids for logs, e.g. "conn,xlate,arp" ([]uint8
// would print as a byte string).
func (r *Receiver) tableNames(ts []uint8) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = r.cfg.TableName(t)
	}
	return strings.Join(names, ",")
}
