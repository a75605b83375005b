package sip

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// replicate marshals every change of rs and applies it to standby, as the
// state stream would.
func replicate(t *testing.T, standby *Inspector, at time.Duration, rs ...Result) {
	t.Helper()
	for _, r := range rs {
		for _, c := range r.Changes {
			b, _ := c.MarshalBinary()
			var got Change
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("parse %+v: %v", c, err)
			}
			if d := cmp.Diff(c, got); d != "" {
				t.Fatalf("round trip (-sent +got):\n%s", d)
			}
			if err := standby.Apply(got, t0.Add(at)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestStandbyTakesBYE: a call set up on the active, replicated record by
// record, leaves the standby with equal digests for all three tables, and
// the standby then passes the BYE and its 200 and closes the call's four
// pinholes. Without the records (replication off) the standby drops the
// BYE as unexpected: the negative control.
func TestStandbyTakesBYE(t *testing.T) {
	active, standby, cold := New(Config{}), New(Config{}), New(Config{})
	c := newCall()
	var rs []Result
	for _, b := range [][]byte{
		c.request("INVITE", 1, "z9hG4bK-1", true, false, sdp(c.callerIP, 6004)),
		c.response("180 Ringing", "INVITE", 1, "z9hG4bK-1", true, true, ""),
		c.response("200 OK", "INVITE", 1, "z9hG4bK-1", true, true, sdp(c.calleeIP, 6000)),
		c.request("ACK", 1, "z9hG4bK-2", true, true, ""),
	} {
		rs = append(rs, step(t, active, b, time.Second, dropNone))
	}
	replicate(t, standby, 2*time.Second, rs...)
	if a, s := active.Digests(), standby.Digests(); a != s {
		t.Fatalf("digests differ: active %x standby %x", a, s)
	}
	if a, s := active.Len(), standby.Len(); a != s || a != [3]int{1, 1, 4} {
		t.Fatalf("tables active %v standby %v", a, s)
	}
	// Failover: the standby is the active now.
	step(t, standby, c.request("BYE", 2, "z9hG4bK-3", false, true, ""), time.Minute, dropNone)
	r := step(t, standby, c.response("200 OK", "BYE", 2, "z9hG4bK-3", false, true, ""), time.Minute, dropNone)
	if len(r.Close) != 4 || standby.state(c.callID) != StateEnded {
		t.Errorf("standby's BYE 200 closed %v, state %v", r.Close, standby.state(c.callID))
	}
	step(t, cold, c.request("BYE", 2, "z9hG4bK-3", false, true, ""), time.Minute, DropUnexpected)
}

// TestDigestOrderIndependent: two standbys that apply the same records in
// different orders have equal digests; a missing record shows.
func TestDigestOrderIndependent(t *testing.T) {
	active := New(Config{})
	var changes []Change
	for i, id := range []string{"a@x", "b@x", "c@x"} {
		c := newCall()
		c.callID = id
		r := step(t, active, c.request("INVITE", 1, "z9hG4bK-"+id[:1], true, false, sdp(c.callerIP, 6000+2*i)), 0, dropNone)
		changes = append(changes, r.Changes...)
	}
	fwd, rev, short := New(Config{}), New(Config{}), New(Config{})
	for i := range changes {
		_ = fwd.Apply(changes[i], t0)
		_ = rev.Apply(changes[len(changes)-1-i], t0)
		if i > 0 {
			_ = short.Apply(changes[i], t0)
		}
	}
	if fwd.Digests() != rev.Digests() || fwd.Digests() != active.Digests() {
		t.Errorf("digests differ by order: %x %x %x", fwd.Digests(), rev.Digests(), active.Digests())
	}
	if short.Digests() == fwd.Digests() {
		t.Error("a missing record left the digests equal")
	}
}

// TestParseChangeErrors: truncated, trailing, unknown and invalid records
// are refused with the documented errors, and Apply refuses a bad change.
func TestParseChangeErrors(t *testing.T) {
	good, _ := Change{Table: TablePinhole, Op: OpUpsert, Pinhole: PinholeRecord{CallID: "x", Pinhole: pin("10.0.0.1", 4000, time.Minute)}}.MarshalBinary()
	for i := range len(good) {
		if _, err := ParseChange(good[:i]); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrChangeTrailer) {
			t.Errorf("truncated to %d: %v", i, err)
		}
	}
	bad := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, c := range map[string]struct {
		b    []byte
		want error
	}{
		"version": {bad(func(b []byte) []byte { b[0] = 9; return b }), ErrChangeVersion},
		"table":   {bad(func(b []byte) []byte { b[1] = 9; return b }), ErrChangeKind},
		"op":      {bad(func(b []byte) []byte { b[2] = 0; return b }), ErrChangeKind},
		"trailer": {append(bad(func(b []byte) []byte { return b }), 0), ErrChangeTrailer},
		"proto":   {bad(func(b []byte) []byte { b[changeHeaderLen+3] = 1; return b }), ErrChangeField},
		"in-body": {bad(func(b []byte) []byte { b[4]++; return append(b, 0) }), ErrChangeTrailer},
	} {
		if _, err := ParseChange(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	in := New(Config{})
	if err := in.Apply(Change{Table: TableSession, Op: OpUpsert}, t0); err == nil || in.Len() != [3]int{} {
		t.Errorf("Apply of a session without Call-ID: %v, tables %v", err, in.Len())
	}
}

// TestStandbyFollowsExpire: the active's expiry reaches the standby as
// records, so both end empty with equal digests.
func TestStandbyFollowsExpire(t *testing.T) {
	active, standby := New(Config{}), New(Config{})
	c := newCall()
	var rs []Result
	for _, b := range [][]byte{
		c.request("INVITE", 1, "z9hG4bK-1", true, false, sdp(c.callerIP, 6004)),
		c.response("200 OK", "INVITE", 1, "z9hG4bK-1", true, true, sdp(c.calleeIP, 6000)),
	} {
		rs = append(rs, step(t, active, b, 0, dropNone))
	}
	rs = append(rs, active.Expire(t0.Add(active.Config().SIPTimeout)))
	replicate(t, standby, time.Hour, rs...)
	if active.Len() != [3]int{} || standby.Len() != [3]int{} || active.Digests() != standby.Digests() {
		t.Errorf("after expiry: active %v standby %v", active.Len(), standby.Len())
	}
}
