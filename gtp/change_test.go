package gtp

import (
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/wmnsk/go-gtp/gtpv1/ie"
	"github.com/wmnsk/go-gtp/gtpv1/message"
)

func sampleChange(t testing.TB) Change {
	return Change{Op: OpUpsert, Record: Record{
		TID: testTID(t), Primary: true, MS: [4]byte{198, 18, 200, 7}, APN: "internet",
		SGSNControl: [4]byte{198, 18, 1, 10}, SGSNData: [4]byte{198, 18, 1, 10},
		GGSNControl: [4]byte{198, 19, 2, 20}, GGSNData: [4]byte{198, 19, 2, 21},
		SGSNControlTEID: 1, SGSNDataTEID: 2, GGSNControlTEID: 3, GGSNDataTEID: 4, Created: 1234,
	}}
}

func TestChangeRoundTrip(t *testing.T) {
	for _, c := range []Change{sampleChange(t), {Op: OpDelete, Record: Record{TID: testTID(t)}}} {
		b, _ := c.MarshalBinary()
		var got Change
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		if d := cmp.Diff(c, got); d != "" {
			t.Errorf("round trip (-want +got):\n%s", d)
		}
	}
}

func TestParseChangeRejects(t *testing.T) {
	good, _ := sampleChange(t).MarshalBinary()
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, io.ErrUnexpectedEOF},
		{"short body", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"trailer", append(append([]byte{}, good...), 0), ErrChangeTrailer},
		{"version", mod(func(b []byte) []byte { b[0] = 2; return b }), ErrChangeVersion},
		{"op", mod(func(b []byte) []byte { b[1] = 9; return b }), ErrChangeOp},
		{"nsapi", mod(func(b []byte) []byte { b[4+8] = 16; return b }), ErrChangeField},
		{"flags", mod(func(b []byte) []byte { b[4+9] = 0x80; return b }), ErrChangeField},
		{"apn past body", mod(func(b []byte) []byte { b[4+changeFixedBody] = 50; return b }), io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseChange(tc.b); !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// TestReplicationRoundTrip runs the active's changes, through their wire
// encoding, into a standby and checks that the digests agree at every step
// and that the standby passes the tunnels after taking over.
func TestReplicationRoundTrip(t *testing.T) {
	standby := New(Config{})
	var sent int
	active := New(Config{OnChange: func(c Change) {
		b, _ := c.MarshalBinary()
		var got Change
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("change does not parse: %v", err)
		}
		if err := standby.Apply(got); err != nil {
			t.Fatalf("apply: %v", err)
		}
		sent++
	}})
	check := func(step string) {
		t.Helper()
		if a, s := active.Digest(), standby.Digest(); a != s {
			t.Errorf("%s: digests differ: active %#x standby %#x", step, a, s)
		}
	}
	mustPass(t, active.Control(sgsnC, ggsnC, createReq(t, 1, testIMSI, testNSAPI, sgsnTEIDC, sgsnTEIDD, sgsnC.Addr()), t0))
	if standby.Len() != 0 {
		t.Errorf("pending context replicated")
	}
	mustPass(t, active.Control(ggsnC, sgsnC, createResp(t, 1, sgsnTEIDC, causeAccepted, ggsnTEIDC, ggsnTEIDD, ggsnC.Addr(), testMS), t0))
	check("commit")
	mustPass(t, active.Control(sgsnC, ggsnC, createReq(t, 2, "001010000000002", 5, 0x55, 0x66, sgsnC.Addr()), t0))
	mustPass(t, active.Control(ggsnC, sgsnC, createResp(t, 2, 0x55, causeAccepted, 0x77, 0x88, ggsnC.Addr(), "198.18.200.8"), t0))
	check("second commit")
	mustPass(t, active.Control(sgsn2C, ggsnC, marshal(t, message.NewUpdatePDPContextRequest(ggsnTEIDC, 3,
		ie.NewTEIDDataI(0x2002), ie.NewNSAPI(testNSAPI),
		ie.NewGSNAddress(sgsn2C.Addr().String()), ie.NewGSNAddress(sgsn2C.Addr().String()))), t0))
	mustPass(t, active.Control(ggsnC, sgsn2C, marshal(t, message.NewUpdatePDPContextResponse(sgsnTEIDC, 3, ie.NewCause(causeAccepted))), t0))
	check("update")
	if active.Digest() == 0 || sent != 3 {
		t.Fatalf("digest %#x after %d changes", active.Digest(), sent)
	}
	// The standby takes over: both tunnels pass there, the moved one at
	// its new SGSN.
	mustPass(t, standby.User(ggsnU, sgsn2U, gpdu(t, 0x2002)))
	mustPass(t, standby.User(sgsnU, ggsnU, gpdu(t, 0x88)))
	mustDrop(t, standby.User(ggsnU, sgsnU, gpdu(t, sgsnTEIDD)), DropUnknownTEID)
	// And it answers the final Delete through its own database.
	mustPass(t, standby.Control(sgsnC, ggsnC, marshal(t, message.NewDeletePDPContextRequest(0x77, 4, ie.NewNSAPI(5))), t0))
	mustPass(t, standby.Control(ggsnC, sgsnC, marshal(t, message.NewDeletePDPContextResponse(0x55, 4, ie.NewCause(causeAccepted))), t0))
	if standby.Len() != 1 {
		t.Errorf("standby holds %d contexts after Delete, want 1", standby.Len())
	}
	// Deletes replicate too, and applying one twice does no harm.
	mustPass(t, active.Control(sgsnC, ggsnC, marshal(t, message.NewDeletePDPContextRequest(0x77, 4, ie.NewNSAPI(5))), t0))
	mustPass(t, active.Control(ggsnC, sgsnC, marshal(t, message.NewDeletePDPContextResponse(0x55, 4, ie.NewCause(causeAccepted))), t0))
	check("delete")
}

// TestDigestOrderIndependent: the same contexts installed in another order
// give the same digest, and a different TEID gives another.
func TestDigestOrderIndependent(t *testing.T) {
	a, b := New(Config{}), New(Config{})
	c1 := sampleChange(t)
	c2 := sampleChange(t)
	c2.Record.TID.NSAPI = 6
	c2.Record.GGSNDataTEID = 99
	for _, c := range []Change{c1, c2} {
		if err := a.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	c2.Record.Created = 999 // age is not part of the digest
	for _, c := range []Change{c2, c1} {
		if err := b.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	if a.Digest() != b.Digest() || a.Digest() == 0 {
		t.Fatalf("digests %#x %#x, want equal and nonzero", a.Digest(), b.Digest())
	}
	c2.Record.GGSNDataTEID = 100
	if err := b.Apply(c2); err != nil {
		t.Fatal(err)
	}
	if a.Digest() == b.Digest() {
		t.Errorf("different TEIDs, same digest")
	}
}
