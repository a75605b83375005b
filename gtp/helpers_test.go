package gtp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wmnsk/go-gtp/gtpv1/ie"
	"github.com/wmnsk/go-gtp/gtpv1/message"
)

// The lab's address plan (198.18.0.0/15, RFC 2544): the SGSN inside, the
// GGSN outside.
var (
	sgsnC  = netip.MustParseAddrPort("198.18.1.10:2123")
	sgsnU  = netip.MustParseAddrPort("198.18.1.10:2152")
	ggsnC  = netip.MustParseAddrPort("198.19.2.20:2123")
	ggsnU  = netip.MustParseAddrPort("198.19.2.20:2152")
	sgsn2C = netip.MustParseAddrPort("198.18.1.11:2123")
	sgsn2U = netip.MustParseAddrPort("198.18.1.11:2152")
	t0     = time.Unix(1_800_000_000, 0)
)

const (
	testIMSI  = "001010123456789"
	testNSAPI = 5
	sgsnTEIDC = 0x1001
	sgsnTEIDD = 0x2001
	ggsnTEIDC = 0x3001
	ggsnTEIDD = 0x4001
	testMS    = "198.18.200.7"
)

func marshal(t testing.TB, m message.Message) []byte {
	t.Helper()
	b, err := message.Marshal(m)
	if err != nil {
		t.Fatalf("marshal %s: %v", m.MessageTypeName(), err)
	}
	return b
}

func createReq(t testing.TB, seq uint16, imsi string, nsapi uint8, teidC, teidD uint32, sgsn netip.Addr) []byte {
	return marshal(t, message.NewCreatePDPContextRequest(0, seq,
		ie.NewIMSI(imsi),
		ie.NewSelectionMode(0xf0),
		ie.NewTEIDDataI(teidD),
		ie.NewTEIDCPlane(teidC),
		ie.NewNSAPI(nsapi),
		ie.NewEndUserAddressIPv4(""),
		ie.NewAccessPointName("internet"),
		ie.NewGSNAddress(sgsn.String()),
		ie.NewGSNAddress(sgsn.String()),
	))
}

func createResp(t testing.TB, seq uint16, toTEID uint32, cause uint8, teidC, teidD uint32, ggsn netip.Addr, ms string) []byte {
	ies := []*ie.IE{ie.NewCause(cause)}
	if cause == causeAccepted {
		ies = append(ies,
			ie.NewTEIDDataI(teidD),
			ie.NewTEIDCPlane(teidC),
			ie.NewEndUserAddressIPv4(ms),
			ie.NewGSNAddress(ggsn.String()),
			ie.NewGSNAddress(ggsn.String()))
	}
	return marshal(t, message.NewCreatePDPContextResponse(toTEID, seq, ies...))
}

func gpdu(t testing.TB, teid uint32) []byte {
	return marshal(t, message.NewTPDU(teid, []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 198, 18, 200, 7, 198, 19, 9, 9}))
}

// established returns an inspector holding one committed context between
// sgsnC and ggsnC, and the changes it reported.
func established(t testing.TB, cfg Config) (*Inspector, *[]Change) {
	t.Helper()
	var changes []Change
	cfg.OnChange = func(c Change) { changes = append(changes, c) }
	in := New(cfg)
	mustPass(t, in.Control(sgsnC, ggsnC, createReq(t, 1, testIMSI, testNSAPI, sgsnTEIDC, sgsnTEIDD, sgsnC.Addr()), t0))
	mustPass(t, in.Control(ggsnC, sgsnC, createResp(t, 1, sgsnTEIDC, causeAccepted, ggsnTEIDC, ggsnTEIDD, ggsnC.Addr(), testMS), t0))
	if in.Len() != 1 {
		t.Fatalf("after Create: %d contexts, want 1", in.Len())
	}
	return in, &changes
}

func mustPass(t testing.TB, v Verdict) {
	t.Helper()
	if !v.Pass() {
		t.Fatalf("dropped %v, want pass", v.Drop)
	}
}

func mustDrop(t testing.TB, v Verdict, want DropReason) {
	t.Helper()
	if v.Drop != want {
		t.Fatalf("verdict %v, want drop %v", v.Drop, want)
	}
}

func testTID(t testing.TB) TID {
	imsi, _ := ieIMSI(ie.NewIMSI(testIMSI))
	return TID{IMSI: imsi, NSAPI: testNSAPI}
}

// state is what a dropped message must leave untouched.
type state struct {
	contexts, pending int
	digest            uint64
}

func stateOf(in *Inspector) state {
	return state{in.Len(), in.Pending(), in.Digest()}
}
