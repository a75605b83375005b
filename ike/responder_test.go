package ike

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
)

var (
	suiteGCM256X25519 = Suite{Encr: EncrAESGCM16, KeyBits: 256, PRF: PRFHMACSHA256, DH: DHCurve25519}
	suiteGCM128ECP256 = Suite{Encr: EncrAESGCM16, KeyBits: 128, PRF: PRFHMACSHA256, DH: DHECP256}
	suiteCBC256MODP   = Suite{Encr: EncrAESCBC, KeyBits: 256, Integ: IntegSHA256, PRF: PRFHMACSHA256, DH: DHMODP2048}
)

func testConfig() Config {
	return Config{
		PSK:         []byte("lab-psk"),
		LocalID:     Identity{Type: IDIPv4, Data: []byte{203, 0, 113, 1}},
		IKESuites:   []Suite{suiteGCM256X25519, suiteGCM128ECP256, suiteCBC256MODP},
		ChildSuites: []ChildSuite{{Encr: EncrAESGCM16, KeyBits: 128}, {Encr: EncrAESGCM16, KeyBits: 256}},
		LocalNets:   []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")},
		RemoteNets:  []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")},
	}
}

func kinds(evs []Event) []EventKind {
	var k []EventKind
	for _, e := range evs {
		k = append(k, e.Kind)
	}
	return k
}

// establish runs IKE_SA_INIT and IKE_AUTH and returns the child.
func establish(t *testing.T, in *testInitiator) ChildRecord {
	t.Helper()
	in.ikeSA()
	inner, res := in.auth()
	if res.Err != nil {
		t.Fatalf("IKE_AUTH: %v", res.Err)
	}
	if k := kinds(res.Events); len(k) != 2 || k[0] != EventIKEUp || k[1] != EventChildUp {
		t.Fatalf("IKE_AUTH events %v", k)
	}
	c := res.Events[1].Child
	in.checkChild(c, in.ni, in.nr, nil)
	tsr, _ := ParseTS(find(inner, PayloadTSr).Body)
	if len(tsr) != 1 || tsr[0].Start != netip.MustParseAddr("10.1.0.0") || tsr[0].End != netip.MustParseAddr("10.1.255.255") {
		t.Fatalf("TSr not narrowed to the local network: %v", tsr)
	}
	return c
}

func (in *testInitiator) dpd() Result {
	inner, res := in.request(ExchangeInformational, nil)
	if len(inner) != 0 || res.Err != nil {
		in.t.Fatalf("DPD answer %d payloads, %v", len(inner), res.Err)
	}
	return res
}

// rekeyChild rekeys the child with our SPI old, with PFS if dh is set,
// and returns the new child as the responder reports it.
func (in *testInitiator) rekeyChild(old uint32, dh uint16) ChildRecord {
	t := in.t
	t.Helper()
	in.childSPI = binary.BigEndian.Uint32(randBytes(4)) | 0x100
	ni := randBytes(32)
	ps := []Payload{{Type: PayloadNotify, Body: appendNotify(nil, Notify{Protocol: ProtoESP, SPI: binary.BigEndian.AppendUint32(nil, old), Type: NotifyRekeySA})}}
	cp := in.childProposal(in.childSPI, dh)
	ps = append(ps, cp[0], Payload{Type: PayloadNonce, Body: ni})
	var key dhKey
	if dh != DHNone {
		key, _ = newDH(dh, rand.Reader)
		ps = append(ps, Payload{Type: PayloadKE, Body: appendKE(nil, KE{Group: dh, Data: key.Public()})})
	}
	ps = append(ps, cp[1:]...)
	inner, res := in.request(ExchangeCreateChildSA, ps)
	if res.Err != nil || len(res.Events) != 1 || res.Events[0].Kind != EventChildRekeyed || res.Events[0].OldChild.OutSPI != old {
		t.Fatalf("child rekey: %v %v", res.Err, kinds(res.Events))
	}
	var shared []byte
	if dh != DHNone {
		ke, _ := ParseKE(find(inner, PayloadKE).Body)
		shared, _ = key.Shared(ke.Data)
	}
	in.checkChild(res.Events[0].Child, ni, find(inner, PayloadNonce).Body, shared)
	return res.Events[0].Child
}

func (in *testInitiator) deleteChild(spi uint32) Result {
	inner, res := in.request(ExchangeInformational, []Payload{{Type: PayloadDelete,
		Body: appendDelete(nil, Delete{Protocol: ProtoESP, SPIs: [][]byte{binary.BigEndian.AppendUint32(nil, spi)}})}})
	if len(res.Events) != 1 || res.Events[0].Kind != EventChildDown {
		in.t.Fatalf("delete child: events %v", kinds(res.Events))
	}
	d, err := ParseDelete(find(inner, PayloadDelete).Body)
	if err != nil || binary.BigEndian.Uint32(d.SPIs[0]) != res.Events[0].Child.InSPI {
		in.t.Fatalf("delete answer %+v %v, want our SPI %08x", d, err, res.Events[0].Child.InSPI)
	}
	return res
}

func (in *testInitiator) deleteIKE(r *Responder) {
	inner, res := in.request(ExchangeInformational, []Payload{{Type: PayloadDelete, Body: appendDelete(nil, Delete{Protocol: ProtoIKE})}})
	if len(inner) != 0 || res.Events[len(res.Events)-1].Kind != EventIKEDown || r.SA(in.spir) != nil {
		in.t.Fatalf("delete IKE: %d payloads, events %v", len(inner), kinds(res.Events))
	}
}

// TestFullExchange runs a whole SA life for each IKE suite: setup, DPD,
// a retransmitted DPD, child rekeys without and with PFS, Delete of the
// old child, and Delete of the IKE SA.
func TestFullExchange(t *testing.T) {
	for _, s := range []Suite{suiteGCM256X25519, suiteGCM128ECP256, suiteCBC256MODP} {
		t.Run(s.String(), func(t *testing.T) {
			r := NewResponder(testConfig())
			in := newTestInitiator(t, r, s, ChildSuite{Encr: EncrAESGCM16, KeyBits: 128})
			c := establish(t, in)
			in.dpd()
			again := r.Handle(Packet{Data: in.lastReq, Local: in.peer, Remote: in.addr})
			if !again.Retransmit || !bytes.Equal(again.Reply, in.lastRsp) {
				t.Fatalf("retransmitted DPD: retransmit=%v same=%v", again.Retransmit, bytes.Equal(again.Reply, in.lastRsp))
			}
			c2 := in.rekeyChild(c.OutSPI, DHNone)
			in.deleteChild(c.OutSPI)
			c3 := in.rekeyChild(c2.OutSPI, DHCurve25519)
			in.deleteChild(c2.OutSPI)
			if cs := r.SA(in.spir).Children(); len(cs) != 1 || cs[0].InSPI != c3.InSPI {
				t.Fatalf("children after rekeys: %+v", cs)
			}
			in.deleteIKE(r)
		})
	}
}

// TestFailoverImport: responder A sets the SA up and answers a DPD; its
// record goes through JSON into responder B, which then answers a
// retransmission of A's last request with A's bytes, the next DPD with the
// next message ID, a child rekey and the Deletes.
func TestFailoverImport(t *testing.T) {
	a, b := NewResponder(testConfig()), NewResponder(testConfig())
	in := newTestInitiator(t, a, suiteGCM256X25519, ChildSuite{Encr: EncrAESGCM16, KeyBits: 256})
	c := establish(t, in)
	res := in.dpd()
	if !res.Changed {
		t.Fatal("DPD did not report the SA changed (message ID moved)")
	}
	blob, err := json.Marshal(a.SA(in.spir).Export())
	if err != nil {
		t.Fatal(err)
	}
	var rec Record
	if err := json.Unmarshal(blob, &rec); err != nil {
		t.Fatal(err)
	}
	if err := b.Import(rec); err != nil {
		t.Fatal(err)
	}
	in.send = b.Handle
	re := b.Handle(Packet{Data: in.lastReq, Local: in.peer, Remote: in.addr})
	if !re.Retransmit || !bytes.Equal(re.Reply, in.lastRsp) {
		t.Fatal("B did not resend A's cached response to a retransmission")
	}
	in.dpd()
	c2 := in.rekeyChild(c.OutSPI, DHNone)
	in.deleteChild(c.OutSPI)
	if cs := b.SA(in.spir).Children(); len(cs) != 1 || cs[0].InSPI != c2.InSPI {
		t.Fatalf("B children %+v", cs)
	}
	in.deleteIKE(b)
}

// TestIKERekey: the peer rekeys the IKE SA; the children move to the new
// SA, which answers DPDs from message ID 0, and the old SA is deleted.
func TestIKERekey(t *testing.T) {
	r := NewResponder(testConfig())
	in := newTestInitiator(t, r, suiteGCM128ECP256, ChildSuite{Encr: EncrAESGCM16, KeyBits: 128})
	c := establish(t, in)
	newSPIi := binary.BigEndian.Uint64(randBytes(8))
	ni := randBytes(32)
	key, _ := newDH(in.suite.DH, rand.Reader)
	inner, res := in.request(ExchangeCreateChildSA, []Payload{
		{Type: PayloadSA, Body: appendSA(nil, []Proposal{in.suite.proposal(1, binary.BigEndian.AppendUint64(nil, newSPIi))})},
		{Type: PayloadNonce, Body: ni},
		{Type: PayloadKE, Body: appendKE(nil, KE{Group: in.suite.DH, Data: key.Public()})},
	})
	if res.Err != nil || len(res.Events) != 1 || res.Events[0].Kind != EventIKERekeyed {
		t.Fatalf("IKE rekey: %v %v", res.Err, kinds(res.Events))
	}
	props, _ := ParseSA(find(inner, PayloadSA).Body)
	ke, _ := ParseKE(find(inner, PayloadKE).Body)
	nr := find(inner, PayloadNonce).Body
	shared, _ := key.Shared(ke.Data)
	newSPIr := binary.BigEndian.Uint64(props[0].SPI)
	if newSPIr != res.Events[0].NewIKE {
		t.Fatalf("new SPIr %x, event says %x", newSPIr, res.Events[0].NewIKE)
	}
	old := *in
	seed := hm(in.keys.D, shared, ni, nr)
	s := append(append(append([]byte{}, ni...), nr...), spiBytes(newSPIi, newSPIr)...)
	ee := in.suite.encrKeyLen()
	km := refPRFPlus(seed, s, 3*32+2*ee)
	in.keys = Keys{D: km[:32], Ei: km[32 : 32+ee], Er: km[32+ee : 32+2*ee]}
	in.spii, in.spir, in.nextID = newSPIi, newSPIr, 0
	in.setCiphers()
	in.dpd()
	if cs := r.SA(newSPIr).Children(); len(cs) != 1 || cs[0].InSPI != c.InSPI {
		t.Fatalf("children did not move to the new IKE SA: %+v", cs)
	}
	old.deleteIKE(r)
	if r.SA(newSPIr) == nil {
		t.Fatal("deleting the old IKE SA removed the new one")
	}
}

func TestAuthFailureForgetsSA(t *testing.T) {
	r := NewResponder(testConfig())
	in := newTestInitiator(t, r, suiteGCM256X25519, ChildSuite{Encr: EncrAESGCM16, KeyBits: 128})
	in.psk = []byte("wrong")
	in.ikeSA()
	inner, res := in.auth()
	n, _ := ParseNotify(find(inner, PayloadNotify).Body)
	if !errors.Is(res.Err, ErrAuthFailed) || n.Type != NotifyAuthFailed || r.SA(in.spir) != nil {
		t.Fatalf("wrong PSK: err %v, notify %d, SA kept %v", res.Err, n.Type, r.SA(in.spir) != nil)
	}
}

// TestInitErrors: a KE in another group than the one chosen gets
// INVALID_KE_PAYLOAD naming ours, nothing acceptable gets
// NO_PROPOSAL_CHOSEN; neither leaves state.
func TestInitErrors(t *testing.T) {
	cfg := testConfig()
	cfg.IKESuites = []Suite{suiteGCM256X25519}
	r := NewResponder(cfg)
	for _, tc := range []struct {
		offer Suite
		ke    uint16
		want  NotifyType
	}{
		{suiteGCM256X25519, DHECP256, NotifyInvalidKE},
		{suiteCBC256MODP, DHMODP2048, NotifyNoProposalChosen},
	} {
		in := newTestInitiator(t, r, tc.offer, ChildSuite{})
		dh, _ := newDH(tc.ke, rand.Reader)
		req := encodeMessage(Header{SPIi: 7, Exchange: ExchangeIKESAInit, Flags: FlagInitiator}, []Payload{
			{Type: PayloadSA, Body: appendSA(nil, []Proposal{tc.offer.proposal(1, nil)})},
			{Type: PayloadKE, Body: appendKE(nil, KE{Group: tc.ke, Data: dh.Public()})},
			{Type: PayloadNonce, Body: randBytes(32)},
		})
		res := r.Handle(Packet{Data: req, Local: in.peer, Remote: in.addr})
		m, _ := ParseMessage(res.Reply)
		n, _ := ParseNotify(m.Payloads[0].Body)
		if n.Type != tc.want || len(r.sas) != 0 {
			t.Errorf("offer %v KE %d: notify %d (%x), %d SAs", tc.offer, tc.ke, n.Type, n.Data, len(r.sas))
		}
		if tc.want == NotifyInvalidKE && binary.BigEndian.Uint16(n.Data) != DHCurve25519 {
			t.Errorf("INVALID_KE_PAYLOAD names group %x", n.Data)
		}
	}
}

// TestForgedAndStaleRequestsChangeNothing: a request with one flipped
// byte fails its integrity check, and an old message ID is dropped; the
// SA's record is unchanged by both.
func TestForgedAndStaleRequestsChangeNothing(t *testing.T) {
	r := NewResponder(testConfig())
	in := newTestInitiator(t, r, suiteCBC256MODP, ChildSuite{Encr: EncrAESGCM16, KeyBits: 128})
	establish(t, in)
	in.dpd()
	stale := in.lastReq
	in.dpd()
	before, _ := json.Marshal(r.SA(in.spir).Export())
	forged := append([]byte(nil), in.lastReq...)
	forged[len(forged)-20] ^= 1
	if res := r.Handle(Packet{Data: forged, Local: in.peer, Remote: in.addr}); !errors.Is(res.Err, ErrIntegrity) || res.Reply != nil {
		t.Fatalf("forged: %v", res.Err)
	}
	if res := r.Handle(Packet{Data: stale, Local: in.peer, Remote: in.addr}); !errors.Is(res.Err, ErrMessageID) || res.Reply != nil {
		t.Fatalf("stale: %v", res.Err)
	}
	after, _ := json.Marshal(r.SA(in.spir).Export())
	if !bytes.Equal(before, after) {
		t.Fatal("a dropped request changed the SA")
	}
}

// TestNATDetectionAndFloat: a NAT_DETECTION_SOURCE_IP that does not match
// marks the peer as behind a NAT, and the address of IKE_AUTH (port 4500)
// becomes the peer's address in the record.
func TestNATDetectionAndFloat(t *testing.T) {
	r := NewResponder(testConfig())
	in := newTestInitiator(t, r, suiteGCM256X25519, ChildSuite{Encr: EncrAESGCM16, KeyBits: 128})
	in.natFake = true
	in.ikeSA()
	in.addr, in.peer = netip.MustParseAddrPort("198.51.100.2:4500"), netip.MustParseAddrPort("203.0.113.1:4500")
	in.auth()
	rec := r.SA(in.spir).Export()
	if !rec.NATPeer || rec.NATLocal || rec.Peer != in.addr || rec.Local != in.peer {
		t.Fatalf("NAT state %+v", rec)
	}
}

func TestUnsupportedCriticalInsideSK(t *testing.T) {
	r := NewResponder(testConfig())
	in := newTestInitiator(t, r, suiteGCM256X25519, ChildSuite{Encr: EncrAESGCM16, KeyBits: 128})
	establish(t, in)
	inner, res := in.request(ExchangeInformational, []Payload{{Type: 222, Critical: true, Body: []byte{1}}})
	n, _ := ParseNotify(find(inner, PayloadNotify).Body)
	if n.Type != NotifyUnsupportedCritical || len(n.Data) != 1 || n.Data[0] != 222 || res.Err == nil {
		t.Fatalf("notify %+v err %v", n, res.Err)
	}
}

// TestInitRetransmit: a retransmitted IKE_SA_INIT gets the same response
// and no second SA.
func TestInitRetransmit(t *testing.T) {
	r := NewResponder(testConfig())
	in := newTestInitiator(t, r, suiteGCM256X25519, ChildSuite{Encr: EncrAESGCM16, KeyBits: 128})
	in.ikeSA()
	res := r.Handle(Packet{Data: in.lastReq, Local: in.peer, Remote: in.addr})
	if !res.Retransmit || !bytes.Equal(res.Reply, in.lastRsp) || len(r.sas) != 1 {
		t.Fatalf("retransmit=%v same=%v SAs=%d", res.Retransmit, bytes.Equal(res.Reply, in.lastRsp), len(r.sas))
	}
}

// TestHalfOpenBounded: a flood of IKE_SA_INIT keeps at most MaxHalfOpen
// SAs waiting, evicting the oldest, and established SAs are never evicted.
func TestHalfOpenBounded(t *testing.T) {
	cfg := testConfig()
	cfg.MaxHalfOpen = 4
	r := NewResponder(cfg)
	est := newTestInitiator(t, r, suiteGCM256X25519, ChildSuite{Encr: EncrAESGCM16, KeyBits: 128})
	establish(t, est)
	var first uint64
	for i := 0; i < 20; i++ {
		in := newTestInitiator(t, r, suiteGCM256X25519, ChildSuite{})
		in.ikeSA()
		if i == 0 {
			first = in.spir
		}
	}
	if len(r.sas) != 5 || len(r.halfOpen) != 4 || r.SA(first) != nil || r.SA(est.spir) == nil {
		t.Fatalf("%d SAs, %d half-open, first kept %v, established kept %v", len(r.sas), len(r.halfOpen), r.SA(first) != nil, r.SA(est.spir) != nil)
	}
	if len(r.halfOrder) > 8 {
		t.Fatalf("eviction queue of %d", len(r.halfOrder))
	}
}
