package sip

import (
	"testing"
	"time"
)

// TestRecordsRefillAStandby: the records of each table, applied to an
// empty inspector, give equal digests; Reset empties one table only.
func TestRecordsRefillAStandby(t *testing.T) {
	now := t0.Add(time.Second)
	a := New(Config{})
	c := newCall()
	step(t, a, c.request("INVITE", 1, "z9hG4bK-1", true, false, sdp(c.callerIP, 6004)), 0, dropNone)
	step(t, a, c.response("180 Ringing", "INVITE", 1, "z9hG4bK-1", true, true, ""), time.Second, dropNone)
	b := New(Config{})
	for tb := TableSession; tb <= TablePinhole; tb++ {
		for _, c := range a.Records(tb) {
			if err := b.Apply(c, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	if a.Digests() != b.Digests() || a.Len() != b.Len() {
		t.Fatalf("after refill: digests %v vs %v, lens %v vs %v", a.Digests(), b.Digests(), a.Len(), b.Len())
	}
	if l := a.Len(); l[0] == 0 || l[1] == 0 || l[2] == 0 || len(a.Pinholes()) != l[2] {
		t.Fatalf("a call in setup should fill all three tables: %v, %d pinholes listed", l, len(a.Pinholes()))
	}
	b.Reset(TableTransaction)
	if l := b.Len(); l[1] != 0 || l[0] == 0 || l[2] == 0 {
		t.Errorf("Reset(TableTransaction) left %v", l)
	}
}
