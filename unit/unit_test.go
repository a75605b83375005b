package unit

import (
	"testing"
	"time"
)

func TestEventLogSince(t *testing.T) {
	l := NewEventLog("fw-a", nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < eventLogSize+10; i++ {
		l.AddAt(t0.Add(time.Duration(i)*time.Millisecond), "k", "m")
	}
	evs, wake := l.Since(0)
	if len(evs) != eventLogSize {
		t.Fatalf("got %d events, want the last %d", len(evs), eventLogSize)
	}
	if evs[0].Seq != 11 || evs[len(evs)-1].Seq != eventLogSize+10 {
		t.Errorf("seqs %d..%d", evs[0].Seq, evs[len(evs)-1].Seq)
	}
	evs, _ = l.Since(eventLogSize + 8)
	if len(evs) != 2 {
		t.Errorf("since near the end: %d events", len(evs))
	}
	select {
	case <-wake:
		t.Fatal("woken without a new event")
	default:
	}
	l.Add("k", "new")
	select {
	case <-wake:
	default:
		t.Fatal("not woken by a new event")
	}
}
