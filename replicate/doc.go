// Package replicate is the stateful-failover state stream: the active unit's
// Sender streams every change of its replicated tables to the standby's
// Receiver over one TCP connection (any net.Conn), authenticated and
// encrypted with the lab's failover key.
// It must not import firewall, failover or unit: it knows tables only as ids
// and records only as opaque bytes.
//
// The package knows tables only as ids (uint8) and records only as opaque
// payload bytes with an op (upsert or delete); the unit package adapts the
// firewall's change records to it. A new replicated table (bridge, HTTP,
// IPsec SA, GTP PDP...) is a new table id: the framing does not change.
//
// # Wire
//
// Frames are a 20-byte header (magic, version, type, flags, length,
// per-direction sequence) and a body. The session opens with cleartext
// Hellos carrying both sides' random nonces; each direction then has its
// own AES-256-GCM key, HKDF-SHA256(failover key, salt = hash of both
// Hellos, info = direction). Every later frame is sealed, with the header as
// associated data and a nonce made of the direction and the frame's
// sequence. The reader accepts only the exact next sequence, so a lost,
// reordered or replayed frame ends the session (ErrSeqGap, ErrReplay) and a
// changed one fails to open (ErrDecrypt); a peer with another key is
// rejected at its first sealed frame (ErrWrongKey).
//
// # Sessions
//
// Every session begins with a bulk sync: BulkStart (the receiver resets the
// tables), a snapshot of each table, BulkEnd, then a DigestMarker. The
// receiver compares the marker's per-table digests with its Store's and
// reports BulkSyncDone{Match}. Incremental records flow on; a caller's
// periodic MarkDigest checks again. A mismatch makes the receiver send
// ResyncRequest and the sender bulk syncs again inside the session. A
// broken session (gap, bad frame, lost link, silence beyond IdleTimeout)
// ends with SyncLost on both sides; the next connection starts with a bulk
// sync again, so nothing is left half-synchronised. Replication never stops
// silently: Emit with a full queue forces a resync (Overflows counter and
// a Resync event), and the sender's keepalives and the receiver's acks make
// a dead peer visible within IdleTimeout.
//
// # Why a bulk sync racing live changes is correct
//
// Emit (called by the caller's change hook under the lock of the changed
// key) and the snapshot's emit (called by Source.Snapshot under the same
// per-key locks, one chunk at a time) both append to one FIFO queue under
// the Sender's mutex, and BulkStart is put into that queue before the
// snapshot's first chunk is read. Changes of different keys may be emitted
// concurrently and interleave in any order; only each key's own order
// matters below. So for every key k, the records about k enter the stream in the
// order in which the events on k happened: each change's record at the
// change, each snapshot record carrying k's value at the moment the chunk
// was read. The receiver applies the stream in order, and upsert/delete
// are idempotent overwrites, so after it has applied the stream up to a
// point P, the value it holds for k is the one carried by the last record
// about k before P:
//
//   - if that record is a change record, it is k's value after k's latest
//     change before P, which is k's value at P;
//   - if it is a snapshot record, it was read under the lock after every
//     earlier change of k, so it is again k's value at P;
//   - if there is no record about k after BulkStart, then k did not exist
//     when the snapshot passed its chunk and did not change afterwards, so
//     it does not exist at P, and Reset at BulkStart removed it.
//
// In particular a delete queued before the snapshot reads k's chunk is
// followed by nothing (k is gone, the snapshot does not see it), and a
// delete after is applied after the snapshot's upsert. Chunking costs
// nothing in correctness: a key moving between chunks is covered by its
// change record. A DigestMarker taken under the caller's change lock held
// exclusively (MarkDigest, or Source.MarkDigests after BulkEnd), while
// every change holds it shared from its digest update to its Emit, lies at
// such a point P, so the digests must agree. When the queue overflows, its contents are discarded and a
// new BulkStart is queued in the same critical section: everything
// discarded is superseded by the snapshot that follows.
//
// # Why coalescing in the queue is correct
//
// EmitEntry lets the queue drop records the standby no longer needs while
// they wait for the writer (a connection's handshake records, or all of
// a connection that opened and closed inside one batch). It changes the argument above only for the
// entry named, and only between two points where nothing is coalesced
// across: a digest marker (which clears what the queue knows of entries),
// the queue's hand-over to the writer, and a bulk sync (nothing is
// coalesced from BulkStart to BulkEnd, since the snapshot's records are
// not keyed). Inside such a stretch, for an entry k:
//
//   - an upsert carries all of k, so the last upsert makes any earlier
//     record of k in the stretch unnecessary; k's record only moves later,
//     still after the records of other keys that came before it (which is
//     what the caller's cross-key order relies on: a delete that frees a
//     key another entry needs is never moved);
//   - a fresh upsert says the standby does not hold k before it, and a
//     queued delete of k says the same of what follows it; so if the
//     stretch's records of k after that point end in a delete, none of
//     them changes what the standby holds, and all go.
//
// At every marker the standby has applied, for each key, either the same
// last record as without coalescing or none where the key is absent on
// both sides, so the digests still agree.
//
// What the caller must provide: Snapshot and Emit under one lock per key
// (one change lock, or the lock of the bucket holding the key), a change
// lock that MarkDigests excludes every half-done change with, digests
// that ignore what the Filter drops, and digests computed the same way on
// both units (an order-independent sum of per-entry hashes keeps them O(1)
// per change), and, for EmitEntry, a key that names one entry of its
// table, and fresh only on an upsert that brings its entry into the table.
package replicate
