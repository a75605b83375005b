package ike

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sampleInit() []byte {
	props := []Proposal{
		{Number: 1, Protocol: ProtoIKE, Transforms: []Transform{
			{Type: TransformEncr, ID: EncrAESGCM16, KeyLength: 256},
			{Type: TransformPRF, ID: PRFHMACSHA256},
			{Type: TransformDH, ID: DHCurve25519},
			{Type: TransformDH, ID: DHMODP2048},
		}},
		{Number: 2, Protocol: ProtoIKE, Transforms: []Transform{
			{Type: TransformEncr, ID: EncrAESCBC, KeyLength: 128},
			{Type: TransformPRF, ID: PRFHMACSHA256},
			{Type: TransformInteg, ID: IntegSHA256},
			{Type: TransformDH, ID: DHECP256},
		}},
	}
	h := Header{SPIi: 0x1122334455667788, Exchange: ExchangeIKESAInit, Flags: FlagInitiator}
	return encodeMessage(h, []Payload{
		{Type: PayloadSA, Body: appendSA(nil, props)},
		{Type: PayloadKE, Body: appendKE(nil, KE{Group: DHCurve25519, Data: bytes.Repeat([]byte{9}, 32)})},
		{Type: PayloadNonce, Body: bytes.Repeat([]byte{7}, 32)},
		notifyPayload(NotifyNATSourceIP, bytes.Repeat([]byte{1}, 20)),
	})
}

func TestParseMessageRoundTrip(t *testing.T) {
	raw := sampleInit()
	m, err := ParseMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.SPIi != 0x1122334455667788 || m.Exchange != ExchangeIKESAInit || m.Flags != FlagInitiator || len(m.Payloads) != 4 {
		t.Fatalf("header %+v, %d payloads", m.Header, len(m.Payloads))
	}
	props, err := ParseSA(m.Payloads[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(props) != 2 || len(props[0].Transforms) != 4 || props[0].Transforms[0].KeyLength != 256 || props[1].Number != 2 {
		t.Fatalf("proposals %+v", props)
	}
	if got := appendSA(nil, props); !bytes.Equal(got, m.Payloads[0].Body) {
		t.Fatalf("SA re-encoded differs:\n%x\n%x", got, m.Payloads[0].Body)
	}
	if again := encodeMessage(m.Header, m.Payloads); !bytes.Equal(again, raw) {
		t.Fatal("message re-encoded differs")
	}
}

func TestParseMessageTruncatedEveryLength(t *testing.T) {
	raw := sampleInit()
	for n := 0; n < len(raw); n++ {
		if _, err := ParseMessage(raw[:n]); err == nil {
			t.Fatalf("prefix of %d bytes parsed", n)
		}
	}
	// Truncated but with a length field that agrees: must still fail.
	for n := HeaderLen; n < len(raw); n++ {
		b := append([]byte(nil), raw[:n]...)
		b[24], b[25], b[26], b[27] = 0, 0, byte(n>>8), byte(n)
		if _, err := ParseMessage(b); err == nil {
			t.Fatalf("cut message of %d bytes with consistent length parsed", n)
		}
	}
}

// TestUnknownPayloads: an unknown non-critical payload is skipped, an
// unknown critical one is reported for UNSUPPORTED_CRITICAL_PAYLOAD.
func TestUnknownPayloads(t *testing.T) {
	h := Header{Exchange: ExchangeIKESAInit, Flags: FlagInitiator}
	for _, critical := range []bool{false, true} {
		raw := encodeMessage(h, []Payload{{Type: PayloadNonce, Body: make([]byte, 16)}, {Type: 200, Critical: critical, Body: []byte{1, 2}}})
		m, err := ParseMessage(raw)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := checkCritical(m.Payloads)
		var uc *UnsupportedCriticalError
		switch {
		case !critical && (err != nil || len(ps) != 1):
			t.Errorf("non-critical: %v, %d payloads left", err, len(ps))
		case critical && (!errors.As(err, &uc) || uc.Type != 200):
			t.Errorf("critical: err = %v", err)
		}
	}
}

func TestTSRoundTripAndNarrow(t *testing.T) {
	sels := []Selector{
		{Protocol: 0, StartPort: 0, EndPort: 65535, Start: netip.MustParseAddr("10.0.0.0"), End: netip.MustParseAddr("10.255.255.255")},
		{Protocol: 6, StartPort: 80, EndPort: 80, Start: netip.MustParseAddr("192.0.2.1"), End: netip.MustParseAddr("192.0.2.1")},
	}
	got, err := ParseTS(appendTS(nil, sels))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(sels, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Fatal(d)
	}
	n := narrow(sels, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("172.16.0.0/12")})
	if len(n) != 1 || n[0].Start != netip.MustParseAddr("10.1.0.0") || n[0].End != netip.MustParseAddr("10.1.255.255") {
		t.Fatalf("narrowed %v", n)
	}
	if n := narrow(sels[1:], []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}); len(n) != 0 {
		t.Fatalf("disjoint narrowed to %v", n)
	}
}

func TestDeleteAndNotifyCodec(t *testing.T) {
	d := Delete{Protocol: ProtoESP, SPIs: [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}}
	got, err := ParseDelete(appendDelete(nil, d))
	if err != nil || got.Protocol != ProtoESP || len(got.SPIs) != 2 || !bytes.Equal(got.SPIs[1], d.SPIs[1]) {
		t.Fatalf("delete %+v %v", got, err)
	}
	if _, err := ParseDelete([]byte{3, 4, 0, 2, 1, 2, 3, 4}); err == nil {
		t.Fatal("delete with fewer SPI bytes than announced parsed")
	}
	n := Notify{Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, Type: NotifyRekeySA}
	gn, err := ParseNotify(appendNotify(nil, n))
	if err != nil || gn.Type != NotifyRekeySA || !bytes.Equal(gn.SPI, n.SPI) {
		t.Fatalf("notify %+v %v", gn, err)
	}
}

// FuzzParseMessage: no input panics the codec, the SK decryption or the
// typed payload decoders, and a parsed unencrypted message re-encodes to
// one that parses to the same payloads.
func FuzzParseMessage(f *testing.F) {
	f.Add(sampleInit())
	sk, _ := newSKCipher(Suite{Encr: EncrAESGCM16, KeyBits: 128}, make([]byte, 20), nil)
	cbc, _ := newSKCipher(Suite{Encr: EncrAESCBC, KeyBits: 128, Integ: IntegSHA256}, make([]byte, 16), make([]byte, 32))
	enc, _ := sk.seal(Header{SPIi: 1, SPIr: 2, Exchange: ExchangeInformational, Flags: FlagInitiator, MessageID: 3},
		[]Payload{{Type: PayloadDelete, Body: appendDelete(nil, Delete{Protocol: ProtoIKE})}}, bytes.NewReader(make([]byte, 64)))
	f.Add(enc)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			return
		}
		for _, p := range m.Payloads {
			decodeAny(p)
			if p.Type == PayloadSK {
				for _, c := range []*skCipher{sk, cbc} {
					if inner, err := c.open(m.Raw, p); err == nil {
						for _, q := range inner {
							decodeAny(q)
						}
					}
				}
			}
		}
		if find(m.Payloads, PayloadSK) == nil {
			again, err := ParseMessage(encodeMessage(m.Header, m.Payloads))
			if err != nil || len(again.Payloads) != len(m.Payloads) {
				t.Fatalf("re-encoded message: %v", err)
			}
		}
	})
}

func decodeAny(p Payload) {
	switch p.Type {
	case PayloadSA:
		ParseSA(p.Body)
	case PayloadKE:
		ParseKE(p.Body)
	case PayloadIDi, PayloadIDr:
		if id, err := ParseIdentity(p.Body); err == nil {
			_ = id.String()
		}
	case PayloadAuth:
		ParseAuth(p.Body)
	case PayloadNotify:
		ParseNotify(p.Body)
	case PayloadDelete:
		ParseDelete(p.Body)
	case PayloadTSi, PayloadTSr:
		if s, err := ParseTS(p.Body); err == nil {
			narrow(s, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
		}
	}
}
