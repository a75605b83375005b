package api

import "time"

// ReplicationStats is a unit's view of its state stream: the sender's
// counters on the active, the receiver's on the standby. Counters are
// totals over the unit's life, across sessions.
type ReplicationStats struct {
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
	ResyncsDeferred  uint64 `json:"resyncs_deferred"`  // receiver: mismatches inside the minimum resync interval
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
	// receiver's acks, over the last few thousand acks.
	LagSamples int           `json:"lag_samples"`
	LagP50     time.Duration `json:"lag_p50_ns"`
	LagP99     time.Duration `json:"lag_p99_ns"`
	LagMax     time.Duration `json:"lag_max_ns"`

	Tables []TableStats `json:"tables"`
}

// TableStats counts one replicated table's records. Table is the table's
// name: conn, xlate, arp or bridge.
type TableStats struct {
	Table    string `json:"table"`
	Queued   uint64 `json:"queued"`   // sender: accepted for sending
	Sent     uint64 `json:"sent"`     // sender: written to the link
	Filtered uint64 `json:"filtered"` // sender: dropped by the filter (e.g. HTTP conns)
	// Coalesced counts the sender's records a later record of the same
	// entry made unnecessary before they were written: a connection that
	// opened and closed within one batch sends nothing.
	Coalesced uint64 `json:"coalesced"`
	Received  uint64 `json:"received"` // receiver: decoded from the link
	Applied   uint64 `json:"applied"`  // receiver: applied to the table
	Errors    uint64 `json:"errors"`   // sender: oversize; receiver: apply failed
}
