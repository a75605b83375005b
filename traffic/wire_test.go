package traffic

import (
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFlowHeaderWire(t *testing.T) {
	h := FlowHeader{Direction: Both, FlowID: 0x01020304, Session: 0x1122334455667788}
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// magic "FLBS" | version 1, direction 3, reserved | flow id | session
	want, _ := hex.DecodeString("464c4253" + "01030000" + "01020304" + "1122334455667788")
	if diff := cmp.Diff(want, b); diff != "" {
		t.Fatalf("MarshalBinary (-want +got):\n%s", diff)
	}
	var got FlowHeader
	if err := got.UnmarshalBinary(b); err != nil || got != h {
		t.Fatalf("UnmarshalBinary = %+v, %v; want %+v", got, err, h)
	}

	tests := []struct {
		name string
		in   []byte
		want error // nil: any non-nil error
	}{
		{"short", b[:FlowHeaderLen-1], io.ErrUnexpectedEOF},
		{"empty", nil, io.ErrUnexpectedEOF},
		{"bad magic", append([]byte("GET "), b[4:]...), ErrBadMagic},
		{"bad version", append(append([]byte{}, b[:4]...), append([]byte{9}, b[5:]...)...), ErrBadVersion},
		{"bad direction", append(append([]byte{}, b[:5]...), append([]byte{0}, b[6:]...)...), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h FlowHeader
			err := h.UnmarshalBinary(tc.in)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("UnmarshalBinary error = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := (FlowHeader{Direction: 7}).MarshalBinary(); err == nil {
		t.Error("MarshalBinary accepted direction 7")
	}
}

func TestProbeWire(t *testing.T) {
	p := Probe{Kind: ProbeEcho, Session: 0xdeadbeef, Seq: 1 << 40, SentUnix: -5}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Probe
	if err := got.UnmarshalBinary(append(b, 0xff, 0xff)); err != nil || got != p {
		t.Fatalf("round trip (with padding) = %+v, %v; want %+v", got, err, p)
	}
	if err := got.UnmarshalBinary(b[:ProbeLen-1]); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short probe: %v, want io.ErrUnexpectedEOF", err)
	}
	b[0] = 'X'
	if err := got.UnmarshalBinary(b); !errors.Is(err, ErrBadMagic) {
		t.Errorf("bad magic: %v, want ErrBadMagic", err)
	}
	if _, err := (Probe{Kind: 0}).MarshalBinary(); err == nil {
		t.Error("MarshalBinary accepted kind 0")
	}
}

func TestParseDirection(t *testing.T) {
	for _, d := range []Direction{ClientToServer, ServerToClient, Both} {
		got, err := ParseDirection(d.String())
		if err != nil || got != d {
			t.Errorf("ParseDirection(%q) = %v, %v", d.String(), got, err)
		}
	}
	if _, err := ParseDirection("sideways"); err == nil {
		t.Error(`ParseDirection("sideways") succeeded`)
	}
}

// FuzzFlowHeader: any bytes decode or fail without panicking, and what
// decodes re-encodes to a header that decodes the same.
func FuzzFlowHeader(f *testing.F) {
	b, _ := FlowHeader{Direction: ClientToServer, FlowID: 3, Session: 9}.MarshalBinary()
	f.Add(b)
	f.Add([]byte("FLBS"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var h FlowHeader
		if h.UnmarshalBinary(in) != nil {
			return
		}
		out, err := h.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", h, err)
		}
		var h2 FlowHeader
		if err := h2.UnmarshalBinary(out); err != nil || h2 != h {
			t.Fatalf("round trip: %+v, %v; want %+v", h2, err, h)
		}
	})
}

// FuzzProbe is FuzzFlowHeader for probes.
func FuzzProbe(f *testing.F) {
	b, _ := Probe{Kind: ProbeRequest, Session: 1, Seq: 2, SentUnix: 3}.MarshalBinary()
	f.Add(b)
	f.Add([]byte("FLBP\x01\x02"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var p Probe
		if p.UnmarshalBinary(in) != nil {
			return
		}
		out, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", p, err)
		}
		var p2 Probe
		if err := p2.UnmarshalBinary(out); err != nil || p2 != p {
			t.Fatalf("round trip: %+v, %v; want %+v", p2, err, p)
		}
	})
}
