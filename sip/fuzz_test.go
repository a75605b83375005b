package sip

import (
	"bytes"
	"net/netip"
	"os"
	"regexp"
	"testing"
	"time"
)

func seedSipp(f *testing.F) {
	b, err := os.ReadFile("testdata/sipp_uac_messages.log")
	if err != nil {
		f.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)bytes ?:?\)?:?\n\n(.*?)\n-{10}`)
	for _, m := range re.FindAllSubmatch(b, -1) {
		f.Add(m[1])
	}
	c := newCall()
	f.Add(c.request("INVITE", 2, "z9hG4bK-5", true, true, sdp(c.callerIP, 7000)))
	f.Add(c.request("BYE", 2, "z9hG4bK-3", false, true, ""))
	f.Add(c.response("200 OK", "INVITE", 1, "z9hG4bK-1", true, true, sdp(c.calleeIP, 6002)))
}

func identity(a netip.AddrPort) (netip.AddrPort, bool) { return a, true }

// FuzzParse: Parse never panics; what it accepts, Rewrite accepts, and
// Rewrite's output parses again.
func FuzzParse(f *testing.F) {
	seedSipp(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if Parse(b, &m) != nil {
			return
		}
		out, err := Rewrite(b, realToMapped)
		if err != nil {
			t.Fatalf("Rewrite refused what Parse accepted: %v", err)
		}
		if err := Parse(out, &m); err != nil {
			t.Fatalf("rewritten message does not parse: %v\n%q\n%q", err, b, out)
		}
		if _, err := Rewrite(b, identity); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzInspect: in the middle of a call, any payload either passes or is
// dropped; a dropped one changes no table.
func FuzzInspect(f *testing.F) {
	seedSipp(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		in := New(Config{})
		c := newCall()
		for _, m := range [][]byte{
			c.request("INVITE", 1, "z9hG4bK-1", true, false, sdp(c.callerIP, 6004)),
			c.response("200 OK", "INVITE", 1, "z9hG4bK-1", true, true, sdp(c.calleeIP, 6000)),
			c.request("ACK", 1, "z9hG4bK-2", true, true, ""),
		} {
			if r := in.Inspect(m, t0); !r.Pass() {
				t.Fatalf("setup dropped: %v", r.Drop)
			}
		}
		before, lens := in.Digests(), in.Len()
		r := in.Inspect(b, t0.Add(time.Second))
		if !r.Pass() && (in.Digests() != before || in.Len() != lens || len(r.Changes)+len(r.Open)+len(r.Close) != 0) {
			t.Fatalf("dropped (%v) but changed state", r.Drop)
		}
		for _, ch := range r.Changes {
			enc, _ := ch.MarshalBinary()
			if _, err := ParseChange(enc); err != nil {
				t.Fatalf("a change it made does not parse: %v", err)
			}
		}
	})
}

// FuzzChange: ParseChange never panics, and what it accepts re-encodes to
// the same bytes.
func FuzzChange(f *testing.F) {
	for _, c := range []Change{
		{Table: TableSession, Op: OpUpsert, Session: Session{CallID: "a@b", CallerTag: "1", State: StateConfirmed}},
		{Table: TableTransaction, Op: OpDelete, Transaction: Transaction{Branch: "z9", Method: "BYE", CSeq: 2, CallID: "a@b", Completed: true}},
		{Table: TablePinhole, Op: OpUpsert, Pinhole: PinholeRecord{CallID: "a@b", Side: SideCallee, Pinhole: pin("10.0.0.1", 4000, time.Minute)}},
	} {
		b, _ := c.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseChange(b)
		if err != nil {
			return
		}
		if again := c.AppendBinary(nil); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}
