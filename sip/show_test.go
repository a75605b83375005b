package sip

import (
	"strings"
	"testing"
	"time"
)

// TestWriteSIP: "show sip" lists each session with its ASA state and idle
// time, sorted by Call-ID, under "Total: N".
func TestWriteSIP(t *testing.T) {
	in := New(Config{})
	a, b := newCall(), newCall()
	b.callID = "0-early@x"
	establish(t, in, a)
	step(t, in, b.request("INVITE", 1, "z9hG4bK-b", true, false, ""), 5*time.Second, dropNone)
	var out strings.Builder
	if err := WriteSIP(&out, in.Sessions(t0.Add(6*time.Second))); err != nil {
		t.Fatal(err)
	}
	want := "Total: 2\n" +
		"call-id 0-early@x\n   state Call init, idle 0:00:01\n" +
		"call-id 1-23323@10.1.1.10\n   state Active, idle 0:00:04\n"
	if out.String() != want {
		t.Errorf("show sip:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestWriteServicePolicy: the counters count packets and drops by reason.
func TestWriteServicePolicy(t *testing.T) {
	in := New(Config{})
	c := newCall()
	establish(t, in, c)
	step(t, in, []byte("garbage\r\n\r\n"), time.Second, DropMalformed)
	step(t, in, c.request("BYE", 9, "z9hG4bK-x", true, false, ""), time.Second, DropUnexpected)
	in.Inspect(nil, t0) // an empty TCP segment is not a SIP packet
	var out strings.Builder
	if err := WriteServicePolicy(&out, in.Stats(), in.Len()); err != nil {
		t.Fatal(err)
	}
	want := "      Inspect: sip , packet 6, lock fail 0, drop 2, reset-drop 0\n" +
		"        requests 3, responses 2, sessions created 1, pinholes opened 4, sessions expired 0\n" +
		"        sip-malformed 1\n        sip-unexpected 1\n        sip-table-full 0\n" +
		"        SIP Session 1\n        SIP Tx 1\n        SIP Pinhole 4\n"
	if out.String() != want {
		t.Errorf("show service-policy inspect sip:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestExpire: a call left at 180 goes after sip-invite; an answered one
// stays until sip; a completed non-INVITE transaction goes after the
// linger time.
func TestExpire(t *testing.T) {
	in := New(Config{})
	cfg := in.Config()
	ringing, active := newCall(), newCall()
	ringing.callID = "ringing@x"
	step(t, in, ringing.request("INVITE", 1, "z9hG4bK-r", true, false, sdp(ringing.callerIP, 6100)), 0, dropNone)
	step(t, in, ringing.response("180 Ringing", "INVITE", 1, "z9hG4bK-r", true, true, ""), 0, dropNone)
	establish(t, in, active)
	step(t, in, active.request("OPTIONS", 2, "z9hG4bK-o", true, true, ""), 0, dropNone)
	step(t, in, active.response("200 OK", "OPTIONS", 2, "z9hG4bK-o", true, true, ""), 0, dropNone)

	r := in.Expire(t0.Add(cfg.TransactionLinger + 2*time.Second))
	if in.Len()[1] != 1 { // the ringing INVITE's transaction stays
		t.Errorf("transactions after linger: %d, want 1 (%+v)", in.Len()[1], r.Changes)
	}
	r = in.Expire(t0.Add(cfg.InviteTimeout))
	if in.state("ringing@x") != 0 || len(r.Close) != 2 || in.state(active.callID) != StateConfirmed {
		t.Errorf("after sip-invite: ringing %v, closed %v, active %v", in.state("ringing@x"), r.Close, in.state(active.callID))
	}
	in.Expire(t0.Add(cfg.SIPTimeout + 3*time.Second))
	if in.Len() != [3]int{} {
		t.Errorf("tables after sip timeout: %v", in.Len())
	}
}
