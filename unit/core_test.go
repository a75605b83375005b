package unit

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/falab/falab/failover"
	"github.com/falab/falab/replicate"
)

func TestSyncEventForMachine(t *testing.T) {
	tests := []struct {
		name  string
		ev    replicate.Event
		ready bool
		want  failover.Event // nil: nothing
	}{
		{"a session's bulk sync starts while ready", replicate.BulkProgress{BulkID: 1}, true,
			failover.SyncLost{Reason: "a bulk sync started: the tables are being refilled from the active"}},
		// The overflow case of the issue: the active restarts the bulk
		// inside the live session. The receiver resets every table; the
		// unit must not stay Standby Ready.
		{"a bulk restarted inside the session while ready", replicate.BulkProgress{BulkID: 7}, true,
			failover.SyncLost{Reason: "a bulk sync started: the tables are being refilled from the active"}},
		{"a bulk starts while already syncing", replicate.BulkProgress{BulkID: 2}, false, nil},
		{"bulk progress", replicate.BulkProgress{BulkID: 2, Records: 512}, true, nil},
		{"bulk end", replicate.BulkProgress{BulkID: 2, Records: 900, Done: true}, true, nil},
		{"bulk done, match", replicate.BulkSyncDone{BulkID: 2, Match: true}, false, failover.BulkSyncDone{DigestsMatch: true}},
		{"bulk done, mismatch", replicate.BulkSyncDone{BulkID: 2}, false, failover.BulkSyncDone{}},
		{"digest mismatch", replicate.DigestChecked{RecordSeq: 9, Mismatched: []uint8{1}}, true,
			failover.SyncLost{Reason: "table digests differ from the active's"}},
		{"digest match", replicate.DigestChecked{RecordSeq: 9, Match: true}, true, nil},
		{"session up", replicate.SessionUp{Peer: "x"}, true, nil},
		{"session lost", replicate.SyncLost{Reason: "eof"}, true, nil},
		{"resync asked", replicate.Resync{Reason: "digest"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := syncEventForMachine(tt.ev, tt.ready)
			if ok != (tt.want != nil) {
				t.Fatalf("ok = %v, event %#v; want %#v", ok, got, tt.want)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestEventQueueNeverDrops: far more events than the old 1,024-slot channel
// held, pushed with no consumer running, all arrive in order.
func TestEventQueueNeverDrops(t *testing.T) {
	q := newEventQueue()
	const n = 10000
	for i := range n {
		q.push(failover.InterfaceStatus{Name: "inside", Up: i%2 == 0})
	}
	select {
	case <-q.wake:
	default:
		t.Fatal("no wake-up pending")
	}
	got := q.take()
	if len(got) != n {
		t.Fatalf("took %d events, want %d", len(got), n)
	}
	for i, ev := range got {
		if ev.(failover.InterfaceStatus).Up != (i%2 == 0) {
			t.Fatalf("event %d out of order", i)
		}
	}
	if len(q.take()) != 0 {
		t.Error("queue not empty after take")
	}
}
