package replicate

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// TableStats counts one table's records.
type TableStats struct {
	Table    uint8  `json:"table"`
	Queued   uint64 `json:"queued"`   // sender: accepted by Emit or the snapshot
	Sent     uint64 `json:"sent"`     // sender: written to the link
	Filtered uint64 `json:"filtered"` // sender: dropped by the filter hook
	// Coalesced counts the sender's queued records that a later record of
	// the same entry made unnecessary before they were written (EmitEntry).
	Coalesced uint64 `json:"coalesced"`
	Received  uint64 `json:"received"` // receiver: decoded from the link
	Applied   uint64 `json:"applied"`  // receiver: Store.Apply succeeded
	Errors    uint64 `json:"errors"`   // sender: oversize; receiver: Apply failed
}

// Stats is a snapshot of a Sender's or Receiver's counters. Counters are
// totals over the object's life, across sessions.
type Stats struct {
	Role      string `json:"role"`
	Connected bool   `json:"connected"` // a session is past its handshake
	InBulk    bool   `json:"in_bulk"`   // a bulk sync is under way
	Synced    bool   `json:"synced"`    // the last digest marker matched

	Sessions         uint64 `json:"sessions"`          // handshakes completed
	Refused          uint64 `json:"refused"`           // sender: connections whose handshake failed (no session)
	SessionErrors    uint64 `json:"session_errors"`    // sessions that ended with an error
	AuthFailures     uint64 `json:"auth_failures"`     // wrong key or a frame that failed to open
	SequenceErrors   uint64 `json:"sequence_errors"`   // gaps and replays
	BulkSyncs        uint64 `json:"bulk_syncs"`        // bulk syncs started
	Resyncs          uint64 `json:"resyncs"`           // bulk syncs beyond each session's first
	Overflows        uint64 `json:"overflows"`         // sender queue overflows (each forces a resync)
	DigestMarkers    uint64 `json:"digest_markers"`    // markers sent or compared
	DigestMismatches uint64 `json:"digest_mismatches"` // receiver: markers that did not match
	ResyncsDeferred  uint64 `json:"resyncs_deferred"`  // receiver: mismatches inside MinResyncInterval
	DroppedNoSession uint64 `json:"dropped_no_session"`
	LastError        string `json:"last_error,omitempty"`

	QueueDepth int `json:"queue_depth"` // records waiting for the writer
	QueueBytes int `json:"queue_bytes"`
	QueueHigh  int `json:"queue_high"` // highest depth seen

	RecordSeq uint64 `json:"record_seq"` // sender: last record sequence sent; receiver: applied
	AckedSeq  uint64 `json:"acked_seq"`  // sender: last sequence the receiver applied

	FramesSent     uint64 `json:"frames_sent"`
	FramesReceived uint64 `json:"frames_received"`
	BytesSent      uint64 `json:"bytes_sent"`
	BytesReceived  uint64 `json:"bytes_received"`

	// Lag is queue-to-applied time of the sender's records, from the
	// receiver's acks, over the last LagWindow acks.
	LagSamples int           `json:"lag_samples"`
	LagP50     time.Duration `json:"lag_p50_ns"`
	LagP99     time.Duration `json:"lag_p99_ns"`
	LagMax     time.Duration `json:"lag_max_ns"`

	Tables []TableStats `json:"tables"`
}

type tableCounters struct {
	queued, sent, filtered, coalesced, received, applied, errors atomic.Uint64
}

// counters is shared by Sender and Receiver. All fields are atomics so the
// hot paths never take a lock to count.
type counters struct {
	tables [256]tableCounters

	sessions, sessionErrors, authFailures, sequenceErrors atomic.Uint64
	refused                                               atomic.Uint64
	bulkSyncs, resyncs, overflows, digestMarkers          atomic.Uint64
	digestMismatches, droppedNoSession, resyncsDeferred   atomic.Uint64
	framesSent, framesReceived, bytesSent, bytesReceived  atomic.Uint64
	recordSeq, ackedSeq                                   atomic.Uint64
	connected, inBulk, synced                             atomic.Bool

	mu      sync.Mutex
	lastErr string // guarded by mu
}

func (c *counters) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err.Error()
	c.mu.Unlock()
}

func (c *counters) fill(s *Stats) {
	s.Connected = c.connected.Load()
	s.InBulk = c.inBulk.Load()
	s.Synced = c.synced.Load()
	s.Sessions = c.sessions.Load()
	s.Refused = c.refused.Load()
	s.SessionErrors = c.sessionErrors.Load()
	s.AuthFailures = c.authFailures.Load()
	s.SequenceErrors = c.sequenceErrors.Load()
	s.BulkSyncs = c.bulkSyncs.Load()
	s.Resyncs = c.resyncs.Load()
	s.Overflows = c.overflows.Load()
	s.DigestMarkers = c.digestMarkers.Load()
	s.DigestMismatches = c.digestMismatches.Load()
	s.DroppedNoSession = c.droppedNoSession.Load()
	s.ResyncsDeferred = c.resyncsDeferred.Load()
	s.FramesSent = c.framesSent.Load()
	s.FramesReceived = c.framesReceived.Load()
	s.BytesSent = c.bytesSent.Load()
	s.BytesReceived = c.bytesReceived.Load()
	s.RecordSeq = c.recordSeq.Load()
	s.AckedSeq = c.ackedSeq.Load()
	c.mu.Lock()
	s.LastError = c.lastErr
	c.mu.Unlock()
	for i := range c.tables {
		t := &c.tables[i]
		ts := TableStats{
			Table:     uint8(i),
			Queued:    t.queued.Load(),
			Sent:      t.sent.Load(),
			Filtered:  t.filtered.Load(),
			Coalesced: t.coalesced.Load(),
			Received:  t.received.Load(),
			Applied:   t.applied.Load(),
			Errors:    t.errors.Load(),
		}
		if ts != (TableStats{Table: uint8(i)}) {
			s.Tables = append(s.Tables, ts)
		}
	}
}

// LagWindow is how many recent lag samples the percentiles cover.
const LagWindow = 4096

// DelayWindow keeps the last LagWindow delays in a ring, for their
// percentiles: the replication lag here, the hellos' delay in unit. Safe
// for concurrent use; the zero value is empty.
type DelayWindow struct {
	mu      sync.Mutex
	samples [LagWindow]time.Duration // guarded by mu
	n       int                      // samples held, guarded by mu
	next    int                      // ring position, guarded by mu
	max     time.Duration            // guarded by mu
}

// Add records one delay.
func (w *DelayWindow) Add(d time.Duration) {
	if d < 0 {
		d = 0 // a clock step backwards; never report negative lag
	}
	w.mu.Lock()
	w.samples[w.next] = d
	w.next = (w.next + 1) % LagWindow
	if w.n < LagWindow {
		w.n++
	}
	w.max = max(w.max, d)
	w.mu.Unlock()
}

// Percentiles returns the sample count, p50, p99 and the all-time max.
func (w *DelayWindow) Percentiles() (n int, p50, p99, mx time.Duration) {
	w.mu.Lock()
	s := slices.Clone(w.samples[:w.n])
	mx = w.max
	w.mu.Unlock()
	if len(s) == 0 {
		return 0, 0, 0, mx
	}
	slices.Sort(s)
	return len(s), s[(len(s)-1)*50/100], s[(len(s)-1)*99/100], mx
}

// Event is something a Sender or Receiver reports through its OnEvent
// callback: SessionUp, BulkProgress, BulkSyncDone, DigestChecked, Resync,
// SyncLost.
type Event interface{ isEvent() }

// HandshakeRefused reports a connection to the sender that failed its
// handshake: no session began, and the one in place (if any) goes on.
type HandshakeRefused struct {
	Peer   string
	Reason string
	Err    error // wraps ErrWrongKey, ErrHandshake, ErrRole, or an I/O error
}

// SessionUp reports a completed handshake.
type SessionUp struct {
	Peer string // remote address
}

// BulkProgress reports a bulk sync moving (receiver: per Records frame
// during a bulk; sender: per table finished).
type BulkProgress struct {
	BulkID  uint32
	Table   uint8  // sender: the table just finished
	Records uint64 // records so far in this bulk
	Done    bool   // BulkEnd sent or received
}

// BulkSyncDone reports the receiver's first digest comparison after a bulk:
// Match says the standby's tables equal the active's at that point.
type BulkSyncDone struct {
	BulkID     uint32
	Match      bool
	Records    uint64  // snapshot records in the bulk
	Mismatched []uint8 // tables whose digests differ
}

// DigestChecked reports every digest marker the receiver compared.
type DigestChecked struct {
	RecordSeq  uint64
	Match      bool
	Mismatched []uint8
}

// Resync reports a new bulk sync in a live session: the sender's queue
// overflowed or the receiver asked (digest mismatch).
type Resync struct {
	Reason string
}

// SyncLost reports a session that ended; Err says why (wraps ErrSeqGap,
// ErrReplay, ErrDecrypt, ErrWrongKey, ErrPeerClosed, ErrClosed, or an I/O
// error).
type SyncLost struct {
	Reason string
	Err    error
}

func (SessionUp) isEvent()        {}
func (HandshakeRefused) isEvent() {}
func (BulkProgress) isEvent()     {}
func (BulkSyncDone) isEvent()     {}
func (Resync) isEvent()           {}
func (DigestChecked) isEvent()    {}
func (SyncLost) isEvent()         {}
