package gtp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/wmnsk/go-gtp/gtpv1/ie"
	"github.com/wmnsk/go-gtp/gtpv1/message"
)

func TestCreateCommitsAndGPDUPasses(t *testing.T) {
	in, changes := established(t, Config{})
	mustPass(t, in.User(sgsnU, ggsnU, gpdu(t, ggsnTEIDD)))
	mustPass(t, in.User(ggsnU, sgsnU, gpdu(t, sgsnTEIDD)))
	mustPass(t, in.User(ggsnU, sgsnU, gpdu(t, sgsnTEIDD)))
	if len(*changes) != 1 || (*changes)[0].Op != OpUpsert {
		t.Fatalf("changes %+v, want one upsert", *changes)
	}
	got := (*changes)[0].Record
	want := Record{
		TID: testTID(t), Primary: true, MS: [4]byte{198, 18, 200, 7}, APN: "internet",
		SGSNControl: sgsnC.Addr().As4(), SGSNData: sgsnC.Addr().As4(),
		GGSNControl: ggsnC.Addr().As4(), GGSNData: ggsnC.Addr().As4(),
		SGSNControlTEID: sgsnTEIDC, SGSNDataTEID: sgsnTEIDD, GGSNControlTEID: ggsnTEIDC, GGSNDataTEID: ggsnTEIDD,
		Created: t0.UnixNano(),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("committed record (-want +got):\n%s", d)
	}
	ctx := in.Contexts(t0)
	if len(ctx) != 1 || ctx[0].Upstream != 1 || ctx[0].Downstream != 2 {
		t.Errorf("contexts %+v, want 1 upstream and 2 downstream G-PDUs", ctx)
	}
	if in.Pending() != 0 {
		t.Errorf("%d requests pending after the response", in.Pending())
	}
}

func TestGPDUUnknownTEIDDropped(t *testing.T) {
	in, _ := established(t, Config{})
	before := stateOf(in)
	// A random TEID, the right TEID towards the wrong GSN, and a control
	// TEID used as a data TEID are all unknown tunnels.
	mustDrop(t, in.User(sgsnU, ggsnU, gpdu(t, 0xdeadbeef)), DropUnknownTEID)
	mustDrop(t, in.User(ggsnU, sgsnU, gpdu(t, ggsnTEIDD)), DropUnknownTEID)
	mustDrop(t, in.User(sgsnU, ggsnU, gpdu(t, ggsnTEIDC)), DropUnknownTEID)
	if got := in.Drops(DropUnknownTEID); got != 3 {
		t.Errorf("unknown-teid drops %d, want 3", got)
	}
	if stateOf(in) != before {
		t.Errorf("drops changed state")
	}
	if c := in.Contexts(t0)[0]; c.Upstream+c.Downstream != 0 {
		t.Errorf("dropped G-PDUs counted on the context: %+v", c)
	}
}

func TestUserHeaderChecks(t *testing.T) {
	in, _ := established(t, Config{})
	ok := gpdu(t, ggsnTEIDD)
	echo := marshal(t, message.NewEchoRequest(1))
	cases := []struct {
		name string
		b    []byte
		want DropReason
	}{
		{"g-pdu", ok, dropNone},
		{"echo", echo, dropNone},
		{"short", ok[:7], DropMalformed},
		{"length too long", append(append([]byte{}, ok...), 0), DropMalformed},
		{"length too short", ok[:len(ok)-1], DropMalformed},
		{"gtpv2", append([]byte{0x48}, ok[1:]...), DropBadVersion},
		{"gtp prime", append([]byte{0x20}, ok[1:]...), DropBadVersion},
		{"create request on 2152", createReq(t, 9, testIMSI, 6, 1, 2, sgsnC.Addr()), DropUnknownMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if v := in.User(sgsnU, ggsnU, tc.b); v.Drop != tc.want {
				t.Errorf("verdict %v, want %v", v.Drop, tc.want)
			}
		})
	}
}

func TestCreateRejectedRemovesPending(t *testing.T) {
	var changes []Change
	in := New(Config{OnChange: func(c Change) { changes = append(changes, c) }})
	mustPass(t, in.Control(sgsnC, ggsnC, createReq(t, 1, testIMSI, testNSAPI, sgsnTEIDC, sgsnTEIDD, sgsnC.Addr()), t0))
	if in.Pending() != 1 || in.Len() != 0 {
		t.Fatalf("after request: pending %d, contexts %d; want 1, 0", in.Pending(), in.Len())
	}
	// No tunnel before the response.
	mustDrop(t, in.User(ggsnU, sgsnU, gpdu(t, sgsnTEIDD)), DropUnknownTEID)
	mustPass(t, in.Control(ggsnC, sgsnC, createResp(t, 1, sgsnTEIDC, 199 /* no resources */, 0, 0, ggsnC.Addr(), ""), t0))
	if in.Pending() != 0 || in.Len() != 0 || len(changes) != 0 {
		t.Fatalf("after reject: pending %d, contexts %d, changes %d; want 0", in.Pending(), in.Len(), len(changes))
	}
}

func TestUnexpectedResponsesDropped(t *testing.T) {
	in := New(Config{})
	resp := createResp(t, 1, sgsnTEIDC, causeAccepted, ggsnTEIDC, ggsnTEIDD, ggsnC.Addr(), testMS)
	mustDrop(t, in.Control(ggsnC, sgsnC, resp, t0), DropUnexpectedResponse)
	mustPass(t, in.Control(sgsnC, ggsnC, createReq(t, 1, testIMSI, testNSAPI, sgsnTEIDC, sgsnTEIDD, sgsnC.Addr()), t0))
	before := stateOf(in)
	for name, v := range map[string]Verdict{
		"wrong sequence":  in.Control(ggsnC, sgsnC, createResp(t, 2, sgsnTEIDC, causeAccepted, ggsnTEIDC, ggsnTEIDD, ggsnC.Addr(), testMS), t0),
		"wrong responder": in.Control(sgsn2C, sgsnC, resp, t0),
		"wrong TEID":      in.Control(ggsnC, sgsnC, createResp(t, 1, 0x777, causeAccepted, ggsnTEIDC, ggsnTEIDD, ggsnC.Addr(), testMS), t0),
		"wrong family":    in.Control(ggsnC, sgsnC, marshal(t, message.NewDeletePDPContextResponse(sgsnTEIDC, 1, ie.NewCause(causeAccepted))), t0),
	} {
		if v.Drop != DropUnexpectedResponse {
			t.Errorf("%s: verdict %v, want %v", name, v.Drop, DropUnexpectedResponse)
		}
	}
	if stateOf(in) != before {
		t.Errorf("unexpected responses changed state: %+v -> %+v", before, stateOf(in))
	}
}

func TestControlMalformedDropped(t *testing.T) {
	in, _ := established(t, Config{})
	before := stateOf(in)
	good := createReq(t, 7, testIMSI, 6, 0x10, 0x20, sgsnC.Addr())
	noIMSI := marshal(t, message.NewCreatePDPContextRequest(0, 8, ie.NewNSAPI(6), ie.NewTEIDDataI(1), ie.NewTEIDCPlane(1),
		ie.NewGSNAddress("198.18.1.10"), ie.NewGSNAddress("198.18.1.10")))
	noSeq := append([]byte{}, good...)
	noSeq[0] &^= flagSeq
	cases := []struct {
		name string
		b    []byte
		want DropReason
	}{
		{"truncated", good[:len(good)-3], DropMalformed},
		{"header only", good[:8], DropMalformed},
		{"gtpv0", append([]byte{0x1e}, good[1:]...), DropBadVersion},
		{"gtpv2", append([]byte{0x48}, good[1:]...), DropBadVersion},
		{"no IMSI", noIMSI, DropMalformed},
		{"NSAPI past 4 bits", createReq(t, 7, testIMSI, 16, 0x10, 0x20, sgsnC.Addr()), DropMalformed},
		{"no sequence flag", noSeq, DropMalformed},
		{"unknown message id", append([]byte{good[0], 200}, good[2:]...), DropUnknownMessage},
		{"G-PDU on 2123", gpdu(t, ggsnTEIDD), DropUnknownMessage},
		{"IE longer than the message", append(append([]byte{}, good[:len(good)-7]...), 0x85, 0, 9, 1, 2, 3, 4), DropMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if v := in.Control(sgsnC, ggsnC, tc.b, t0); v.Drop != tc.want {
				t.Errorf("verdict %v, want %v", v.Drop, tc.want)
			}
		})
	}
	if stateOf(in) != before {
		t.Errorf("malformed messages changed state: %+v -> %+v", before, stateOf(in))
	}
	mustPass(t, in.Control(sgsnC, ggsnC, marshal(t, message.NewEchoRequest(3, ie.NewRecovery(1))), t0))
}

func TestUpdateMovesTunnel(t *testing.T) {
	in, changes := established(t, Config{})
	// The MS moves to a new SGSN, which tells the GGSN its addresses and
	// TEIDs; the GGSN answers it.
	req := marshal(t, message.NewUpdatePDPContextRequest(ggsnTEIDC, 20,
		ie.NewTEIDDataI(0x2002), ie.NewTEIDCPlane(0x1002), ie.NewNSAPI(testNSAPI),
		ie.NewGSNAddress(sgsn2C.Addr().String()), ie.NewGSNAddress(sgsn2C.Addr().String())))
	mustPass(t, in.Control(sgsn2C, ggsnC, req, t0))
	// Before the response the old tunnel still carries traffic.
	mustPass(t, in.User(ggsnU, sgsnU, gpdu(t, sgsnTEIDD)))
	resp := marshal(t, message.NewUpdatePDPContextResponse(0x1002, 20, ie.NewCause(causeAccepted)))
	mustPass(t, in.Control(ggsnC, sgsn2C, resp, t0))
	mustDrop(t, in.User(ggsnU, sgsnU, gpdu(t, sgsnTEIDD)), DropUnknownTEID)
	mustPass(t, in.User(ggsnU, sgsn2U, gpdu(t, 0x2002)))
	mustPass(t, in.User(sgsn2U, ggsnU, gpdu(t, ggsnTEIDD)))
	if len(*changes) != 2 {
		t.Fatalf("%d changes, want commit and update", len(*changes))
	}
	r := (*changes)[1].Record
	if r.SGSNControl != sgsn2C.Addr().As4() || r.SGSNData != sgsn2U.Addr().As4() || r.SGSNControlTEID != 0x1002 || r.SGSNDataTEID != 0x2002 {
		t.Errorf("update record %+v does not carry the new SGSN", r)
	}
	// The new SGSN can now delete the context by the GGSN's control TEID.
	mustPass(t, in.Control(sgsn2C, ggsnC, marshal(t, message.NewDeletePDPContextRequest(ggsnTEIDC, 21, ie.NewNSAPI(testNSAPI))), t0))
	mustPass(t, in.Control(ggsnC, sgsn2C, marshal(t, message.NewDeletePDPContextResponse(0x1002, 21, ie.NewCause(causeAccepted))), t0))
	if in.Len() != 0 {
		t.Errorf("%d contexts after Delete", in.Len())
	}
}

func TestUpdateUnknownContextDropped(t *testing.T) {
	in, _ := established(t, Config{})
	before := stateOf(in)
	req := marshal(t, message.NewUpdatePDPContextRequest(0xbad, 20,
		ie.NewTEIDDataI(0x2002), ie.NewNSAPI(testNSAPI),
		ie.NewGSNAddress(sgsn2C.Addr().String()), ie.NewGSNAddress(sgsn2C.Addr().String())))
	mustDrop(t, in.Control(sgsn2C, ggsnC, req, t0), DropUnknownTEID)
	if stateOf(in) != before {
		t.Errorf("state changed")
	}
}

func TestDeleteRemoves(t *testing.T) {
	in, changes := established(t, Config{})
	mustPass(t, in.Control(sgsnC, ggsnC, marshal(t, message.NewDeletePDPContextRequest(ggsnTEIDC, 30, ie.NewNSAPI(testNSAPI), ie.NewTeardownInd(true))), t0))
	// Until the response the tunnel stays.
	mustPass(t, in.User(sgsnU, ggsnU, gpdu(t, ggsnTEIDD)))
	mustPass(t, in.Control(ggsnC, sgsnC, marshal(t, message.NewDeletePDPContextResponse(sgsnTEIDC, 30, ie.NewCause(causeAccepted))), t0))
	mustDrop(t, in.User(sgsnU, ggsnU, gpdu(t, ggsnTEIDD)), DropUnknownTEID)
	if in.Len() != 0 || in.Digest() != 0 {
		t.Errorf("after Delete: %d contexts, digest %#x; want 0, 0", in.Len(), in.Digest())
	}
	if n := len(*changes); n != 2 || (*changes)[1].Op != OpDelete || (*changes)[1].Record.TID != testTID(t) {
		t.Errorf("changes %+v, want commit then delete of the TID", *changes)
	}
	// A second response to the same request is unexpected.
	mustDrop(t, in.Control(ggsnC, sgsnC, marshal(t, message.NewDeletePDPContextResponse(sgsnTEIDC, 30, ie.NewCause(causeAccepted))), t0), DropUnexpectedResponse)
}

func TestGGSNInitiatedDelete(t *testing.T) {
	in, _ := established(t, Config{})
	mustPass(t, in.Control(ggsnC, sgsnC, marshal(t, message.NewDeletePDPContextRequest(sgsnTEIDC, 40, ie.NewNSAPI(testNSAPI))), t0))
	mustPass(t, in.Control(sgsnC, ggsnC, marshal(t, message.NewDeletePDPContextResponse(ggsnTEIDC, 40, ie.NewCause(causeAccepted))), t0))
	if in.Len() != 0 {
		t.Errorf("%d contexts after the GGSN's Delete", in.Len())
	}
}

func TestRequestLimit(t *testing.T) {
	in := New(Config{RequestQueue: 2})
	for seq := uint16(1); seq <= 2; seq++ {
		mustPass(t, in.Control(sgsnC, ggsnC, createReq(t, seq, testIMSI, uint8(4+seq), uint32(seq), uint32(seq), sgsnC.Addr()), t0))
	}
	// A retransmission of an outstanding request is not a new one.
	mustPass(t, in.Control(sgsnC, ggsnC, createReq(t, 2, testIMSI, 6, 2, 2, sgsnC.Addr()), t0))
	before := stateOf(in)
	mustDrop(t, in.Control(sgsnC, ggsnC, createReq(t, 3, testIMSI, 7, 3, 3, sgsnC.Addr()), t0), DropRequestLimit)
	if stateOf(in) != before {
		t.Errorf("state changed")
	}
	// The request timeout frees the queue.
	in.Expire(t0.Add(DefaultRequestTimeout))
	mustPass(t, in.Control(sgsnC, ggsnC, createReq(t, 3, testIMSI, 7, 3, 3, sgsnC.Addr()), t0))
}

func TestTunnelLimit(t *testing.T) {
	in, _ := established(t, Config{TunnelLimit: 2})
	mustPass(t, in.Control(sgsnC, ggsnC, createReq(t, 2, testIMSI, 6, 0x11, 0x21, sgsnC.Addr()), t0))
	// One committed and one pending: the limit counts both.
	before := stateOf(in)
	mustDrop(t, in.Control(sgsnC, ggsnC, createReq(t, 3, "001010000000001", 5, 0x12, 0x22, sgsnC.Addr()), t0), DropTunnelLimit)
	if stateOf(in) != before || in.Drops(DropTunnelLimit) != 1 {
		t.Errorf("state changed or drop not counted")
	}
}

func TestExpiry(t *testing.T) {
	in, changes := established(t, Config{})
	idle := DefaultPDPContextTimeout
	// Traffic keeps the context alive across a sweep...
	in.Expire(t0.Add(idle / 2))
	mustPass(t, in.User(sgsnU, ggsnU, gpdu(t, ggsnTEIDD)))
	in.Expire(t0.Add(idle - 1))
	in.Expire(t0.Add(idle + 1))
	if in.Len() != 1 {
		t.Fatalf("context with recent traffic expired")
	}
	// ... and a full idle period removes it, reported as a delete.
	in.Expire(t0.Add(2*idle - 1))
	if in.Len() != 0 {
		t.Fatalf("idle context not expired")
	}
	if last := (*changes)[len(*changes)-1]; last.Op != OpDelete {
		t.Errorf("expiry reported %v, want delete", last.Op)
	}
	if in.GSNs() != 0 {
		t.Errorf("%d GSNs remembered after the gsn timeout", in.GSNs())
	}
}

func TestSecondaryContextSharesControlTEID(t *testing.T) {
	in, _ := established(t, Config{})
	req := marshal(t, message.NewCreatePDPContextRequest(0, 50,
		ie.NewIMSI(testIMSI), ie.NewTEIDDataI(0x2005), ie.NewNSAPI(6), ie.NewNSAPI(testNSAPI),
		ie.NewGSNAddress(sgsnC.Addr().String()), ie.NewGSNAddress(sgsnC.Addr().String())))
	mustPass(t, in.Control(sgsnC, ggsnC, req, t0))
	resp := marshal(t, message.NewCreatePDPContextResponse(sgsnTEIDC, 50, ie.NewCause(causeAccepted), ie.NewTEIDDataI(0x4005),
		ie.NewGSNAddress(ggsnC.Addr().String()), ie.NewGSNAddress(ggsnC.Addr().String())))
	mustPass(t, in.Control(ggsnC, sgsnC, resp, t0))
	if in.Len() != 2 {
		t.Fatalf("%d contexts, want primary and secondary", in.Len())
	}
	mustPass(t, in.User(sgsnU, ggsnU, gpdu(t, 0x4005)))
	// Deleting the secondary keeps the primary's signalling path.
	mustPass(t, in.Control(sgsnC, ggsnC, marshal(t, message.NewDeletePDPContextRequest(ggsnTEIDC, 51, ie.NewNSAPI(6))), t0))
	mustPass(t, in.Control(ggsnC, sgsnC, marshal(t, message.NewDeletePDPContextResponse(sgsnTEIDC, 51, ie.NewCause(causeAccepted))), t0))
	mustPass(t, in.Control(sgsnC, ggsnC, marshal(t, message.NewDeletePDPContextRequest(ggsnTEIDC, 52, ie.NewNSAPI(testNSAPI))), t0))
}

func TestUserAllocatesNothing(t *testing.T) {
	in, _ := established(t, Config{})
	b := gpdu(t, ggsnTEIDD)
	bad := gpdu(t, 0xdeadbeef)
	if n := testing.AllocsPerRun(1000, func() {
		in.User(sgsnU, ggsnU, b)
		in.User(sgsnU, ggsnU, bad)
	}); n != 0 {
		t.Errorf("User allocates %v times per call pair, want 0", n)
	}
}

func BenchmarkUser(b *testing.B) {
	in, _ := established(b, Config{})
	p := gpdu(b, ggsnTEIDD)
	b.ReportAllocs()
	for b.Loop() {
		in.User(sgsnU, ggsnU, p)
	}
}
