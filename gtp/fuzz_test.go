package gtp

import (
	"bytes"
	"testing"

	"github.com/wmnsk/go-gtp/gtpv1/ie"
	"github.com/wmnsk/go-gtp/gtpv1/message"
)

// FuzzInspect feeds outside bytes to both inspection paths of an inspector
// holding one context and one outstanding request: neither may panic, and
// a dropped message must leave the database, the outstanding requests and
// the digest as they were.
func FuzzInspect(f *testing.F) {
	f.Add(createReq(f, 1, testIMSI, 6, 0x11, 0x21, sgsnC.Addr()))
	f.Add(createResp(f, 9, sgsnTEIDC, causeAccepted, 0x31, 0x41, ggsnC.Addr(), testMS))
	f.Add(marshal(f, message.NewUpdatePDPContextRequest(ggsnTEIDC, 3, ie.NewTEIDDataI(0x2002), ie.NewNSAPI(testNSAPI),
		ie.NewGSNAddress("198.18.1.11"), ie.NewGSNAddress("198.18.1.11"))))
	f.Add(marshal(f, message.NewDeletePDPContextRequest(ggsnTEIDC, 4, ie.NewNSAPI(testNSAPI))))
	f.Add(marshal(f, message.NewDeletePDPContextResponse(sgsnTEIDC, 9, ie.NewCause(causeAccepted))))
	f.Add(marshal(f, message.NewEchoRequest(1, ie.NewRecovery(3))))
	f.Add(gpdu(f, ggsnTEIDD))
	f.Add(gpdu(f, 0xdeadbeef))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, _ := established(t, Config{})
		// An outstanding Create (seq 9) for responses to match.
		mustPass(t, in.Control(sgsnC, ggsnC, createReq(t, 9, "001010000000009", 5, sgsnTEIDC, 0x29, sgsnC.Addr()), t0))
		orig := append([]byte(nil), b...)
		for _, fromGGSN := range []bool{false, true} {
			cs, cd := sgsnC, ggsnC
			us, ud := sgsnU, ggsnU
			if fromGGSN {
				cs, cd, us, ud = ggsnC, sgsnC, ggsnU, sgsnU
			}
			before := stateOf(in)
			if v := in.Control(cs, cd, b, t0); !v.Pass() && stateOf(in) != before {
				t.Fatalf("Control dropped (%v) and changed state %+v -> %+v", v.Drop, before, stateOf(in))
			}
			before = stateOf(in)
			if v := in.User(us, ud, b); !v.Pass() && stateOf(in) != before {
				t.Fatalf("User dropped (%v) and changed state", v.Drop)
			}
		}
		if !bytes.Equal(b, orig) {
			t.Fatalf("inspection modified the payload")
		}
	})
}

// FuzzChange: whatever parses re-encodes to a record that parses to the
// same change (a version 1 reader ignores body bytes past its fields, so
// the bytes themselves may differ), and applies.
func FuzzChange(f *testing.F) {
	b, _ := sampleChange(f).MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseChange(b)
		if err != nil {
			return
		}
		again, err := ParseChange(c.AppendBinary(nil))
		if err != nil || again != c {
			t.Fatalf("re-encoding of %x parses to %+v, %v; want %+v", b, again, err, c)
		}
		if err := New(Config{}).Apply(c); err != nil {
			t.Fatalf("parsed change does not apply: %v", err)
		}
	})
}
