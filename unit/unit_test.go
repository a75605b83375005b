package unit

import (
	"testing"
	"time"

	"github.com/falab/falab/replicate"
)

func testKey(b byte) replicate.Key {
	var k replicate.Key
	for i := range k {
		k[i] = b
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := testKey(1)
	msg := seal(k, "hello", []byte("payload"))
	got, ok := open(k, "hello", msg)
	if !ok || string(got) != "payload" {
		t.Fatalf("open = %q, %v", got, ok)
	}
	if _, ok := open(testKey(2), "hello", msg); ok {
		t.Error("opened with the wrong key")
	}
	if _, ok := open(k, "probe", msg); ok {
		t.Error("a hello opened as a probe: purposes must not mix")
	}
	bad := append([]byte(nil), msg...)
	bad[9] ^= 1
	if _, ok := open(k, "hello", bad); ok {
		t.Error("opened a changed message")
	}
	for n := 0; n < len(msg); n++ {
		if _, ok := open(k, "hello", msg[:n]); ok {
			t.Errorf("opened a message cut to %d bytes", n)
		}
	}
}

func FuzzOpen(f *testing.F) {
	k := testKey(3)
	f.Add(seal(k, "probe", []byte{probeAsk, 0, 0, 0, 0, 0, 0, 0, 1, 4, 'f', 'w', '-', 'a'}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if body, ok := open(k, "probe", b); ok && len(body) > len(b) {
			t.Fatal("body longer than message")
		}
	})
}

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
