package sip

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var sortPins = cmpopts.SortSlices(func(a, b Pinhole) bool {
	return a.DstPort < b.DstPort || a.DstPort == b.DstPort && string(a.Dst[:]) < string(b.Dst[:])
})

// TestBasicCall walks INVITE/180/200/ACK/BYE/200 with SDP both ways: the
// offer opens RTP and RTCP towards the caller, the answer towards the
// callee, and the BYE's 200 closes all four and ends the session.
func TestBasicCall(t *testing.T) {
	in := New(Config{})
	c := newCall()
	media := in.Config().MediaTimeout
	r := step(t, in, c.request("INVITE", 1, "z9hG4bK-1", true, false, sdp(c.callerIP, 6004)), 0, dropNone)
	if d := cmp.Diff([]Pinhole{pin(c.callerIP, 6004, media), pin(c.callerIP, 6005, media)}, r.Open, sortPins); d != "" {
		t.Errorf("offer pinholes (-want +got):\n%s", d)
	}
	if got := in.state(c.callID); got != StateInviteSent {
		t.Errorf("state %v after INVITE", got)
	}
	step(t, in, c.response("100 Trying", "INVITE", 1, "z9hG4bK-1", true, false, ""), time.Second, dropNone)
	step(t, in, c.response("180 Ringing", "INVITE", 1, "z9hG4bK-1", true, true, ""), time.Second, dropNone)
	if got := in.state(c.callID); got != StateEarly {
		t.Errorf("state %v after 180", got)
	}
	r = step(t, in, c.response("200 OK", "INVITE", 1, "z9hG4bK-1", true, true, sdp(c.calleeIP, 6000)), 2*time.Second, dropNone)
	if d := cmp.Diff([]Pinhole{pin(c.calleeIP, 6000, media), pin(c.calleeIP, 6001, media)}, r.Open, sortPins); d != "" {
		t.Errorf("answer pinholes (-want +got):\n%s", d)
	}
	if got := in.state(c.callID); got != StateConfirmed {
		t.Errorf("state %v after 200", got)
	}
	step(t, in, c.request("ACK", 1, "z9hG4bK-2", true, true, ""), 2*time.Second, dropNone)
	if n := in.Len(); n != [3]int{1, 1, 4} {
		t.Errorf("tables after ACK = %v, want 1 session, 1 (completed INVITE) transaction, 4 pinholes", n)
	}
	// The 200 again, as if the ACK were lost beyond the firewall: it passes
	// and changes nothing.
	before := in.Digests()
	r = step(t, in, c.response("200 OK", "INVITE", 1, "z9hG4bK-1", true, true, sdp(c.calleeIP, 6000)), 3*time.Second, dropNone)
	if in.Digests() != before || len(r.Changes)+len(r.Open) != 0 {
		t.Errorf("a retransmitted 200 changed state: %+v", r)
	}
	step(t, in, c.request("BYE", 2, "z9hG4bK-3", false, true, ""), time.Minute, dropNone)
	if got := in.state(c.callID); got != StateTerminating {
		t.Errorf("state %v after BYE", got)
	}
	r = step(t, in, c.response("200 OK", "BYE", 2, "z9hG4bK-3", false, true, ""), time.Minute, dropNone)
	if len(r.Close) != 4 {
		t.Errorf("BYE's 200 closed %v, want the 4 pinholes", r.Close)
	}
	if got := in.state(c.callID); got != StateEnded {
		t.Errorf("state %v after BYE's 200", got)
	}
	// A retransmitted BYE's 200 still passes; a new BYE does not.
	step(t, in, c.response("200 OK", "BYE", 2, "z9hG4bK-3", false, true, ""), time.Minute, dropNone)
	step(t, in, c.request("BYE", 3, "z9hG4bK-4", true, true, ""), time.Minute, DropUnexpected)
	// sip-disconnect later the session is gone.
	in.Expire(t0.Add(time.Minute + in.Config().DisconnectTimeout))
	if n := in.Len(); n != [3]int{} {
		t.Errorf("tables after Expire = %v, want empty", n)
	}
}

// TestCancel: CANCEL of a ringing call, 200 to the CANCEL, 487 to the
// INVITE, which ends the session and closes the offer's pinholes; the ACK
// for the 487 passes.
func TestCancel(t *testing.T) {
	in := New(Config{})
	c := newCall()
	step(t, in, c.request("INVITE", 1, "z9hG4bK-1", true, false, sdp(c.callerIP, 6004)), 0, dropNone)
	step(t, in, c.response("180 Ringing", "INVITE", 1, "z9hG4bK-1", true, true, ""), time.Second, dropNone)
	step(t, in, c.request("CANCEL", 1, "z9hG4bK-1", true, false, ""), 2*time.Second, dropNone)
	step(t, in, c.response("200 OK", "CANCEL", 1, "z9hG4bK-1", true, true, ""), 2*time.Second, dropNone)
	r := step(t, in, c.response("487 Request Terminated", "INVITE", 1, "z9hG4bK-1", true, true, ""), 2*time.Second, dropNone)
	if len(r.Close) != 2 || in.state(c.callID) != StateEnded {
		t.Errorf("487 closed %v, state %v; want 2 pinholes closed and the session ended", r.Close, in.state(c.callID))
	}
	step(t, in, c.request("ACK", 1, "z9hG4bK-1", true, true, ""), 2*time.Second, dropNone)
	// A retransmitted CANCEL passes; a new one, of a call no longer pending, does not.
	step(t, in, c.request("CANCEL", 1, "z9hG4bK-1", true, false, ""), 3*time.Second, dropNone)
	step(t, in, c.request("CANCEL", 1, "z9hG4bK-8", true, false, ""), 3*time.Second, DropUnexpected)
}

// TestReinviteMovesMedia: a re-INVITE from the caller with a new port
// closes the caller's old RTP/RTCP pinholes and opens the new ones,
// leaving the callee's alone.
func TestReinviteMovesMedia(t *testing.T) {
	in := New(Config{})
	c := newCall()
	media := in.Config().MediaTimeout
	establish(t, in, c)
	step(t, in, c.request("INVITE", 2, "z9hG4bK-5", true, true, sdp(c.callerIP, 7000)), time.Minute, dropNone)
	r := step(t, in, c.response("200 OK", "INVITE", 2, "z9hG4bK-5", true, true, sdp(c.calleeIP, 6000)), time.Minute, dropNone)
	if len(r.Open) != 0 || len(r.Close) != 0 {
		t.Errorf("unchanged answer opened %v closed %v", r.Open, r.Close)
	}
	// The re-INVITE's own result carried the move: check the table.
	in.mu.Lock()
	var got []Pinhole
	for k := range in.pins {
		k.Timeout = media
		got = append(got, k)
	}
	in.mu.Unlock()
	want := []Pinhole{pin(c.callerIP, 7000, media), pin(c.callerIP, 7001, media), pin(c.calleeIP, 6000, media), pin(c.calleeIP, 6001, media)}
	if d := cmp.Diff(want, got, sortPins); d != "" {
		t.Errorf("pinholes after re-INVITE (-want +got):\n%s", d)
	}
	if in.state(c.callID) != StateConfirmed {
		t.Errorf("state %v after re-INVITE", in.state(c.callID))
	}
}

// TestReinviteResult checks the re-INVITE's own Open and Close lists.
func TestReinviteResult(t *testing.T) {
	in := New(Config{})
	c := newCall()
	media := in.Config().MediaTimeout
	establish(t, in, c)
	r := step(t, in, c.request("INVITE", 2, "z9hG4bK-5", true, true, sdp(c.callerIP, 7000)), time.Minute, dropNone)
	if d := cmp.Diff([]Pinhole{pin(c.callerIP, 7000, media), pin(c.callerIP, 7001, media)}, r.Open, sortPins); d != "" {
		t.Errorf("opened (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]Pinhole{pin(c.callerIP, 6004, media), pin(c.callerIP, 6005, media)}, r.Close, sortPins); d != "" {
		t.Errorf("closed (-want +got):\n%s", d)
	}
}

// establish sets up c's call (offer port 6004, answer port 6000).
func establish(t *testing.T, in *Inspector, c call) {
	t.Helper()
	step(t, in, c.request("INVITE", 1, "z9hG4bK-1", true, false, sdp(c.callerIP, 6004)), 0, dropNone)
	step(t, in, c.response("180 Ringing", "INVITE", 1, "z9hG4bK-1", true, true, ""), time.Second, dropNone)
	step(t, in, c.response("200 OK", "INVITE", 1, "z9hG4bK-1", true, true, sdp(c.calleeIP, 6000)), 2*time.Second, dropNone)
	step(t, in, c.request("ACK", 1, "z9hG4bK-2", true, true, ""), 2*time.Second, dropNone)
}

// TestUnexpected: messages that match nothing are dropped and change
// nothing.
func TestUnexpected(t *testing.T) {
	in := New(Config{})
	c := newCall()
	for name, b := range map[string][]byte{
		"response without request":    c.response("200 OK", "INVITE", 1, "z9hG4bK-1", true, true, ""),
		"BYE without session":         c.request("BYE", 2, "z9hG4bK-3", true, true, ""),
		"ACK without session":         c.request("ACK", 1, "z9hG4bK-2", true, true, ""),
		"CANCEL without session":      c.request("CANCEL", 1, "z9hG4bK-1", true, false, ""),
		"re-INVITE of unknown dialog": c.request("INVITE", 2, "z9hG4bK-9", true, true, ""),
	} {
		t.Run(name, func(t *testing.T) {
			step(t, in, b, 0, DropUnexpected)
			if n := in.Len(); n != [3]int{} {
				t.Errorf("tables %v, want empty", n)
			}
		})
	}
	establish(t, in, c)
	before := in.Digests()
	forged := c
	forged.callerTag = "evil"
	step(t, in, forged.request("BYE", 2, "z9hG4bK-3", true, true, ""), time.Minute, DropUnexpected)
	if in.Digests() != before || in.state(c.callID) != StateConfirmed {
		t.Error("a BYE with a forged tag changed state")
	}
}

// TestTableFull: at MaxSessions a new INVITE is dropped, counted, and
// changes nothing.
func TestTableFull(t *testing.T) {
	in := New(Config{MaxSessions: 1})
	c := newCall()
	step(t, in, c.request("INVITE", 1, "z9hG4bK-1", true, false, sdp(c.callerIP, 6004)), 0, dropNone)
	d := c
	d.callID = "other@x"
	before := in.Digests()
	step(t, in, d.request("INVITE", 1, "z9hG4bK-7", true, false, sdp(c.callerIP, 6010)), 0, DropTableFull)
	if in.Digests() != before {
		t.Error("a dropped INVITE changed state")
	}
	if got := in.Stats().Drops[DropTableFull]; got != 1 {
		t.Errorf("table-full drops = %d, want 1", got)
	}
}

// TestChallengeThenCall: a 407 refuses the first INVITE (session ended,
// pinholes closed, its ACK passes); the INVITE again with CSeq 2 and a new
// branch, as after authentication, restarts the same session.
func TestChallengeThenCall(t *testing.T) {
	in := New(Config{})
	c := newCall()
	step(t, in, c.request("INVITE", 1, "z9hG4bK-1", true, false, sdp(c.callerIP, 6004)), 0, dropNone)
	r := step(t, in, c.response("407 Proxy Authentication Required", "INVITE", 1, "z9hG4bK-1", true, true, ""), 0, dropNone)
	if in.state(c.callID) != StateEnded || len(r.Close) != 2 {
		t.Fatalf("after 407: state %v closed %v", in.state(c.callID), r.Close)
	}
	step(t, in, c.request("ACK", 1, "z9hG4bK-1", true, true, ""), 0, dropNone)
	r = step(t, in, c.request("INVITE", 2, "z9hG4bK-2", true, false, sdp(c.callerIP, 6004)), time.Second, dropNone)
	if in.state(c.callID) != StateInviteSent || len(r.Open) != 2 {
		t.Errorf("after the second INVITE: state %v opened %v", in.state(c.callID), r.Open)
	}
	step(t, in, c.response("200 OK", "INVITE", 2, "z9hG4bK-2", true, true, sdp(c.calleeIP, 6000)), time.Second, dropNone)
	if in.state(c.callID) != StateConfirmed {
		t.Errorf("state %v after 200", in.state(c.callID))
	}
}
