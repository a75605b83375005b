package ike

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"testing"
)

// testInitiator is a minimal IKEv2 initiator that drives the responder in
// tests. It shares the codec and the SK cipher with the package, but
// derives every key and AUTH value with the independent refPRFPlus and
// HMAC code of the tests, so an exchange that completes cross-checks the
// responder's derivation.
type testInitiator struct {
	t          *testing.T
	suite      Suite
	child      ChildSuite
	psk        []byte
	id         Identity
	addr, peer netip.AddrPort
	send       func(Packet) Result
	natFake    bool // send a NAT_DETECTION_SOURCE_IP that never matches
	midSync    bool // announce RFC 6311 message ID sync in IKE_AUTH

	spii, spir uint64
	keys       Keys
	enc, dec   *skCipher
	nextID     uint32
	lastReq    []byte
	lastRsp    []byte
	ni, nr     []byte
	childSPI   uint32 // ours: the responder's OutSPI
}

func newTestInitiator(t *testing.T, r *Responder, suite Suite, child ChildSuite) *testInitiator {
	return &testInitiator{
		t: t, suite: suite, child: child, psk: []byte("lab-psk"),
		id:   Identity{Type: IDFQDN, Data: []byte("branch")},
		addr: netip.MustParseAddrPort("198.51.100.2:500"), peer: netip.MustParseAddrPort("203.0.113.1:500"),
		send: r.Handle,
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func hm(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// ikeSA runs IKE_SA_INIT and derives the IKE SA keys independently.
func (in *testInitiator) ikeSA() Result {
	t := in.t
	t.Helper()
	in.spii = binary.BigEndian.Uint64(randBytes(8))
	in.ni = randBytes(32)
	dh, err := newDH(in.suite.DH, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	src := natHash(in.spii, 0, in.addr)
	if in.natFake {
		src = randBytes(20)
	}
	req := encodeMessage(Header{SPIi: in.spii, Exchange: ExchangeIKESAInit, Flags: FlagInitiator}, []Payload{
		{Type: PayloadSA, Body: appendSA(nil, []Proposal{in.suite.proposal(1, nil)})},
		{Type: PayloadKE, Body: appendKE(nil, KE{Group: in.suite.DH, Data: dh.Public()})},
		{Type: PayloadNonce, Body: in.ni},
		notifyPayload(NotifyNATSourceIP, src),
		notifyPayload(NotifyNATDestinationIP, natHash(in.spii, 0, in.peer)),
	})
	res := in.send(Packet{Data: req, Local: in.peer, Remote: in.addr})
	if res.Reply == nil {
		t.Fatalf("IKE_SA_INIT: no reply (%v)", res.Err)
	}
	m, err := ParseMessage(res.Reply)
	if err != nil {
		t.Fatal(err)
	}
	if n := find(m.Payloads, PayloadNotify); n != nil && len(m.Payloads) == 1 {
		return res // an error notify; the caller checks it
	}
	in.spir = m.SPIr
	in.nr = find(m.Payloads, PayloadNonce).Body
	ke, _ := ParseKE(find(m.Payloads, PayloadKE).Body)
	shared, err := dh.Shared(ke.Data)
	if err != nil {
		t.Fatal(err)
	}
	seed := hm(append(append([]byte{}, in.ni...), in.nr...), shared)
	ea, ee := in.suite.integKeyLen(), in.suite.encrKeyLen()
	s := append(append(append([]byte{}, in.ni...), in.nr...), spiBytes(in.spii, in.spir)...)
	km := refPRFPlus(seed, s, 3*32+2*ea+2*ee)
	cut := func(n int) []byte { k := km[:n]; km = km[n:]; return k }
	in.keys.D, in.keys.Ai, in.keys.Ar = cut(32), cut(ea), cut(ea)
	in.keys.Ei, in.keys.Er, in.keys.Pi, in.keys.Pr = cut(ee), cut(ee), cut(32), cut(32)
	in.setCiphers()
	in.lastReq, in.lastRsp, in.nextID = req, res.Reply, 1
	return res
}

func (in *testInitiator) setCiphers() {
	var err error
	if in.enc, err = newSKCipher(in.suite, in.keys.Ei, in.keys.Ai); err != nil {
		in.t.Fatal(err)
	}
	if in.dec, err = newSKCipher(in.suite, in.keys.Er, in.keys.Ar); err != nil {
		in.t.Fatal(err)
	}
}

// request sends one encrypted request and returns the response's inner
// payloads and the Result; it checks the response's header.
func (in *testInitiator) request(ex ExchangeType, ps []Payload) ([]Payload, Result) {
	t := in.t
	t.Helper()
	h := Header{SPIi: in.spii, SPIr: in.spir, Exchange: ex, Flags: FlagInitiator, MessageID: in.nextID}
	req, err := in.enc.seal(h, ps, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	res := in.send(Packet{Data: req, Local: in.peer, Remote: in.addr})
	if res.Reply == nil {
		t.Fatalf("%v #%d: no reply: %v", ex, in.nextID, res.Err)
	}
	m, err := ParseMessage(res.Reply)
	if err != nil {
		t.Fatal(err)
	}
	if !m.IsResponse() || m.MessageID != in.nextID || m.Exchange != ex || m.SPIi != in.spii || m.SPIr != in.spir {
		t.Fatalf("%v: response header %+v", ex, m.Header)
	}
	inner, err := in.dec.open(m.Raw, *find(m.Payloads, PayloadSK))
	if err != nil {
		t.Fatalf("%v: open response: %v", ex, err)
	}
	in.lastReq, in.lastRsp = req, res.Reply
	in.nextID++
	return inner, res
}

func (in *testInitiator) childProposal(spi uint32, dh uint16) []Payload {
	ts := []Transform{{Type: TransformEncr, ID: in.child.Encr, KeyLength: in.child.KeyBits}}
	if dh != DHNone {
		ts = append(ts, Transform{Type: TransformDH, ID: dh})
	}
	ts = append(ts, Transform{Type: TransformESN, ID: ESNNone})
	sel := func(p string) []Selector {
		pr := netip.MustParsePrefix(p)
		return []Selector{{EndPort: 0xffff, Start: pr.Addr(), End: lastAddr(pr)}}
	}
	return []Payload{
		{Type: PayloadSA, Body: appendSA(nil, []Proposal{{Number: 1, Protocol: ProtoESP, SPI: binary.BigEndian.AppendUint32(nil, spi), Transforms: ts}})},
		{Type: PayloadTSi, Body: appendTS(nil, sel("10.2.0.0/16"))},
		{Type: PayloadTSr, Body: appendTS(nil, sel("0.0.0.0/0"))},
	}
}

// auth runs IKE_AUTH with a child SA and returns the response payloads.
func (in *testInitiator) auth() ([]Payload, Result) {
	t := in.t
	t.Helper()
	in.childSPI = binary.BigEndian.Uint32(randBytes(4)) | 0x100
	macedID := hm(in.keys.Pi, []byte{in.id.Type, 0, 0, 0}, in.id.Data)
	authData := hm(hm(in.psk, []byte("Key Pad for IKEv2")), in.lastReq, in.nr, macedID)
	ps := []Payload{
		{Type: PayloadIDi, Body: append([]byte{in.id.Type, 0, 0, 0}, in.id.Data...)},
		{Type: PayloadAuth, Body: append([]byte{AuthMethodPSK, 0, 0, 0}, authData...)},
		notifyPayload(NotifyInitialContact, nil),
	}
	if in.midSync {
		ps = append(ps, notifyPayload(NotifyMessageIDSyncSupported, nil))
	}
	ps = append(ps, in.childProposal(in.childSPI, DHNone)...)
	initRsp := in.lastRsp
	inner, res := in.request(ExchangeIKEAuth, ps)
	if a := find(inner, PayloadAuth); a != nil {
		idr := find(inner, PayloadIDr)
		want := hm(hm(in.psk, []byte("Key Pad for IKEv2")), initRsp, in.ni, hm(in.keys.Pr, idr.Body))
		if got, _ := ParseAuth(a.Body); !bytes.Equal(got.Data, want) {
			t.Fatalf("responder AUTH does not verify")
		}
	}
	return inner, res
}

// checkChild verifies the child the responder reports against KEYMAT
// computed independently from the exchange's nonces (and g^ir if PFS).
func (in *testInitiator) checkChild(c ChildRecord, ni, nr, shared []byte) {
	t := in.t
	t.Helper()
	n := int(in.child.KeyBits)/8 + 4
	km := refPRFPlus(in.keys.D, append(append(append([]byte{}, shared...), ni...), nr...), 2*n)
	if !bytes.Equal(append(append([]byte{}, c.InKey...), c.InSalt...), km[:n]) ||
		!bytes.Equal(append(append([]byte{}, c.OutKey...), c.OutSalt...), km[n:]) {
		t.Fatalf("child keys differ from the independent KEYMAT")
	}
	if c.OutSPI != in.childSPI {
		t.Fatalf("child OutSPI %08x, want ours %08x", c.OutSPI, in.childSPI)
	}
}
