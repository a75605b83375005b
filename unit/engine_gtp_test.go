package unit

import (
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wmnsk/go-gtp/gtpv1/ie"
	"github.com/wmnsk/go-gtp/gtpv1/message"

	"github.com/falab/falab/firewall"
	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/fwconfig"
	"github.com/falab/falab/gtp"
	"github.com/falab/falab/render"
	"github.com/falab/falab/replicate"
)

var (
	testSGSN = [4]byte{198, 18, 1, 10}
	testGGSN = [4]byte{198, 18, 2, 20}
)

func newGTPUnit(t *testing.T, name, peer string, noReplicate ...string) *Unit {
	t.Helper()
	cfg := testConfig(false)
	cfg.Name, cfg.Peer = name, peer
	cfg.LocalAddr, cfg.PeerAddr = netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1")
	cfg.Firewall.Inspect.GTP = &fwconfig.GTPInspect{}
	cfg.NoReplicate = noReplicate
	u, err := New(cfg, testKey(1), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func gtpBytes(t *testing.T, m message.Message) []byte {
	t.Helper()
	b, err := message.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gtpPacket runs one GTP datagram through the engine as the firewall's
// path would: sgsnSide says the SGSN (the initiator) sent it.
func gtpPacket(u *Unit, port uint16, sgsnSide bool, payload []byte) (firewall.Verdict, firewall.DropReason) {
	orig := firewall.Tuple{Proto: header.ProtocolUDP, Src: testSGSN, Dst: testGGSN, SrcPort: port, DstPort: port}
	reply := firewall.Tuple{Proto: header.ProtocolUDP, Src: testGGSN, Dst: testSGSN, SrcPort: port, DstPort: port}
	x := &firewall.Inspection{Orig: orig, Reply: reply, FromInitiator: sgsnSide, Payload: payload, Now: time.Unix(1_800_000_000, 0)}
	v := gtpEngine{in: u.GTP()}.Inspect(x)
	return v, x.Drop
}

// createContext runs a Create PDP Context exchange (SGSN TEIDs 1/2, GGSN
// TEIDs 3/4) through u's engine.
func createContext(t *testing.T, u *Unit) {
	t.Helper()
	req := gtpBytes(t, message.NewCreatePDPContextRequest(0, 1,
		ie.NewIMSI("001010123456789"), ie.NewSelectionMode(0xf0), ie.NewTEIDDataI(2), ie.NewTEIDCPlane(1),
		ie.NewNSAPI(5), ie.NewEndUserAddressIPv4(""), ie.NewAccessPointName("internet"),
		ie.NewGSNAddress("198.18.1.10"), ie.NewGSNAddress("198.18.1.10")))
	resp := gtpBytes(t, message.NewCreatePDPContextResponse(1, 1, ie.NewCause(128),
		ie.NewTEIDDataI(4), ie.NewTEIDCPlane(3), ie.NewEndUserAddressIPv4("198.19.200.1"),
		ie.NewGSNAddress("198.18.2.20"), ie.NewGSNAddress("198.18.2.20")))
	if v, r := gtpPacket(u, 2123, true, req); v != firewall.VerdictPass {
		t.Fatalf("create request dropped: %v", r)
	}
	if v, r := gtpPacket(u, 2123, false, resp); v != firewall.VerdictPass {
		t.Fatalf("create response dropped: %v", r)
	}
}

func tpdu(t *testing.T, teid uint32) []byte {
	return gtpBytes(t, message.NewTPDU(teid, []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 198, 19, 200, 1, 198, 19, 200, 0}))
}

// TestGTPEngineDrops: the engine passes a tunnel's G-PDUs both ways and
// drops a forged TEID under the firewall's gtp-unknown-teid, a garbage
// control message under gtp-malformed.
func TestGTPEngineDrops(t *testing.T) {
	u := newGTPUnit(t, "fw-a", "fw-b")
	createContext(t, u)
	if v, r := gtpPacket(u, 2152, true, tpdu(t, 4)); v != firewall.VerdictPass {
		t.Fatalf("uplink G-PDU dropped: %v", r)
	}
	if v, r := gtpPacket(u, 2152, false, tpdu(t, 2)); v != firewall.VerdictPass {
		t.Fatalf("downlink G-PDU dropped: %v", r)
	}
	if _, r := gtpPacket(u, 2152, true, tpdu(t, 0x5eed1234)); r != firewall.DropGTPUnknownTEID {
		t.Errorf("forged TEID: reason %v, want %v", r, firewall.DropGTPUnknownTEID)
	}
	if _, r := gtpPacket(u, 2123, true, []byte{0x32, 0x10, 0, 40, 1}); r != firewall.DropGTPMalformed {
		t.Errorf("garbage control: reason %v, want %v", r, firewall.DropGTPMalformed)
	}
	for gr, fr := range gtpDrops {
		if gr.String() != fr.String() {
			t.Errorf("gtp %v counted as firewall %v: the names differ", gr, fr)
		}
	}
}

// TestGTPTableReplicates: the active's PDP context reaches the standby by
// bulk sync with equal digests, and the standby then passes the tunnel's
// G-PDUs; with gtp-pdp not replicated no table is registered and the
// standby knows no tunnel.
func TestGTPTableReplicates(t *testing.T) {
	a, b := newGTPUnit(t, "fw-a", "fw-b"), newGTPUnit(t, "fw-b", "fw-a")
	createContext(t, a)
	id := a.tables[len(a.tables)-1]
	if a.tableName(id) != GTPTable {
		t.Fatalf("last table is %q, want %s", a.tableName(id), GTPTable)
	}
	if err := (fwStore{b}).Reset(id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (fwSource{a}).Snapshot(id, 0, func(p []byte) {
		if err := (fwStore{b}).Apply(id, replicate.OpUpsert, p); err != nil {
			t.Fatal(err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	var marked map[uint8]uint64
	(fwSource{a}).MarkDigests(func(d map[uint8]uint64) { marked = d })
	if got := (fwStore{b}).Digests()[id]; marked[id] == 0 || got != marked[id] {
		t.Fatalf("gtp-pdp digests: active %x standby %x", marked[id], got)
	}
	if v, r := gtpPacket(b, 2152, true, tpdu(t, 4)); v != firewall.VerdictPass {
		t.Fatalf("standby drops the replicated tunnel's G-PDU: %v", r)
	}

	// The change stream: a delete on the active empties the standby.
	var got []replicate.Op
	gtpEngine{in: a.GTP()}.SetEmit(func(op replicate.Op, p []byte) {
		got = append(got, op)
		if err := (fwStore{b}).Apply(id, op, p); err != nil {
			t.Fatal(err)
		}
	})
	del := gtpBytes(t, message.NewDeletePDPContextRequest(3, 2, ie.NewNSAPI(5)))
	delResp := gtpBytes(t, message.NewDeletePDPContextResponse(1, 2, ie.NewCause(128)))
	gtpPacket(a, 2123, true, del)
	gtpPacket(a, 2123, false, delResp)
	if len(got) != 1 || got[0] != replicate.OpDelete || b.GTP().Len() != 0 {
		t.Fatalf("after Delete: ops %v, standby holds %d contexts", got, b.GTP().Len())
	}

	off := newGTPUnit(t, "fw-a", "fw-b", GTPTable)
	for _, tb := range off.tables {
		if off.tableName(tb) == GTPTable {
			t.Fatal("gtp-pdp registered although not replicated")
		}
	}
	if off.GTP() == nil {
		t.Fatal("not replicating gtp-pdp turned inspection off")
	}
}

// TestPDPContextsWire: what `falab show service-policy inspect gtp
// pdp-context [detail]` prints from the wire form is exactly package gtp's
// ASA-format text of the same listing.
func TestPDPContextsWire(t *testing.T) {
	u := newGTPUnit(t, "fw-a", "fw-b")
	createContext(t, u)
	gtpPacket(u, 2152, true, tpdu(t, 4))
	l := u.GTP().Listing(time.Unix(1_800_000_013, 0))
	for _, detail := range []bool{false, true} {
		var want, got strings.Builder
		if err := gtp.WritePDPContexts(&want, l, detail); err != nil {
			t.Fatal(err)
		}
		if err := render.ShowPDPContexts(&got, wirePDPContexts(l), detail); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want.String(), got.String()); d != "" {
			t.Errorf("detail %v: render differs from gtp (-gtp +render):\n%s", detail, d)
		}
		if !strings.Contains(got.String(), "v1      ") {
			t.Errorf("no context listed:\n%s", got.String())
		}
	}
}

// TestGTPEngineUserPathAllocs: a tunnel's G-PDU through the engine (the
// per-packet path) allocates nothing.
func TestGTPEngineUserPathAllocs(t *testing.T) {
	u := newGTPUnit(t, "fw-a", "fw-b")
	createContext(t, u)
	b := tpdu(t, 4)
	e := gtpEngine{in: u.GTP()}
	x := &firewall.Inspection{
		Orig:          firewall.Tuple{Proto: header.ProtocolUDP, Src: testSGSN, Dst: testGGSN, SrcPort: 2152, DstPort: 2152},
		FromInitiator: true, Payload: b,
	}
	if n := testing.AllocsPerRun(1000, func() {
		if e.Inspect(x) != firewall.VerdictPass {
			t.Fatal("dropped")
		}
	}); n != 0 {
		t.Errorf("%v allocations per G-PDU, want 0", n)
	}
}

// FuzzGTPEngine feeds outside bytes to the engine on both GTP ports, from
// either side, after a context exists: it must never panic, and a dropped
// datagram must be counted under one of the firewall's gtp-* reasons.
func FuzzGTPEngine(f *testing.F) {
	f.Add(uint16(2152), true, []byte{0x30, 0xff, 0, 4, 0, 0, 0, 4, 1, 2, 3, 4})
	f.Add(uint16(2123), false, []byte{0x32, 0x11, 0, 4, 0, 0, 0, 1, 0, 1, 0, 0})
	f.Add(uint16(2123), true, []byte{})
	f.Fuzz(func(t *testing.T, port uint16, sgsnSide bool, b []byte) {
		if port != 2152 {
			port = 2123
		}
		u := newGTPUnit(t, "fw-a", "fw-b")
		createContext(t, u)
		v, r := gtpPacket(u, port, sgsnSide, b)
		if v == firewall.VerdictDrop {
			if _, ok := gtpReasons[r]; !ok {
				t.Fatalf("dropped under %v, not a gtp-* reason", r)
			}
		}
	})
}

var gtpReasons = func() map[firewall.DropReason]bool {
	m := map[firewall.DropReason]bool{}
	for _, r := range gtpDrops {
		m[r] = true
	}
	return m
}()
