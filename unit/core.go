package unit

import (
	"sync"

	"github.com/falab/falab/failover"
	"github.com/falab/falab/replicate"
)

// eventQueue carries events into the goroutine that owns the failover
// machine. It never drops one and never blocks the sender (replication
// callbacks and packet readers must not block): it grows instead. Its
// producers are bounded in rate (hellos from one authenticated peer, link
// changes, a replication session's milestones, authenticated probe
// answers), so it stays short; a dropped event, by contrast, could be the
// takeover itself.
type eventQueue struct {
	mu    sync.Mutex
	items []failover.Event // guarded by mu
	wake  chan struct{}    // one pending wake-up
}

func newEventQueue() *eventQueue { return &eventQueue{wake: make(chan struct{}, 1)} }

// push appends ev and wakes the consumer.
func (q *eventQueue) push(ev failover.Event) {
	q.mu.Lock()
	q.items = append(q.items, ev)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns every queued event, oldest first, and empties the queue.
func (q *eventQueue) take() []failover.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}

// syncEventForMachine maps a replication receiver's event to what the
// failover machine must hear, if anything. ready says the unit is
// Standby Ready now.
//
// The rule behind it: a standby may call itself ready only while its tables
// are a complete copy. They stop being one the moment a bulk sync resets
// them, and a bulk sync starts not only with a new session but also inside
// a live one (the active's queue overflowed, or a digest differed), so the
// bulk's start is the event that takes the unit out of Standby Ready, and
// a matching digest after the bulk is what brings it back.
func syncEventForMachine(ev replicate.Event, ready bool) (failover.Event, bool) {
	switch e := ev.(type) {
	case replicate.BulkProgress:
		if ready && !e.Done && e.Records == 0 {
			return failover.SyncLost{Reason: "a bulk sync started: the tables are being refilled from the active"}, true
		}
	case replicate.BulkSyncDone:
		return failover.BulkSyncDone{DigestsMatch: e.Match}, true
	case replicate.DigestChecked:
		if !e.Match {
			return failover.SyncLost{Reason: "table digests differ from the active's"}, true
		}
	}
	return nil, false
}
