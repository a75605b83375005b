package gtp

import (
	"testing"

	"github.com/wmnsk/go-gtp/gtpv1/ie"
	"github.com/wmnsk/go-gtp/gtpv1/message"
)

// TestSnapshotResetAndLateOnChange: a bulk sync through Snapshot into a
// reset standby gives equal digests; SetOnChange installed after New
// reports later changes; after Reset the standby drops the tunnel's G-PDUs.
func TestSnapshotResetAndLateOnChange(t *testing.T) {
	active, _ := established(t, Config{})
	standby := New(Config{})
	standby.Reset()
	active.Snapshot(func(r Record) {
		if err := standby.Apply(Change{Op: OpUpsert, Record: r}); err != nil {
			t.Fatal(err)
		}
	})
	var a, s uint64
	active.DigestLocked(func(d uint64) { a = d })
	standby.DigestLocked(func(d uint64) { s = d })
	if a == 0 || a != s {
		t.Fatalf("digests after snapshot: active %x standby %x", a, s)
	}
	mustPass(t, standby.User(sgsnU, ggsnU, gpdu(t, ggsnTEIDD)))

	var got []Change
	active.SetOnChange(func(c Change) { got = append(got, c) })
	mustPass(t, active.Control(sgsnC, ggsnC, marshal(t, message.NewDeletePDPContextRequest(ggsnTEIDC, 9, ie.NewNSAPI(testNSAPI))), t0))
	mustPass(t, active.Control(ggsnC, sgsnC, marshal(t, message.NewDeletePDPContextResponse(sgsnTEIDC, 9, ie.NewCause(causeAccepted))), t0))
	if len(got) != 1 || got[0].Op != OpDelete {
		t.Fatalf("changes after SetOnChange: %+v, want one delete", got)
	}

	standby.Reset()
	if standby.Len() != 0 || standby.Digest() != 0 {
		t.Fatalf("after Reset: %d contexts, digest %x", standby.Len(), standby.Digest())
	}
	mustDrop(t, standby.User(sgsnU, ggsnU, gpdu(t, ggsnTEIDD)), DropUnknownTEID)
}
