package failover

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// helloFixture is an active primary in term 7, hello 42, inside up and
// outside down.
var helloFixture = []byte{
	0x02,       // version 2
	0x01,       // role: Primary
	0x05,       // state: Active
	0x02,       // 2 interfaces
	0, 0, 0, 0, // term (high)
	0, 0, 0, 7, // term (low) = 7
	0, 0, 0, 42, // seq = 42
	0x06, 'i', 'n', 's', 'i', 'd', 'e', 0x01, // "inside" up
	0x07, 'o', 'u', 't', 's', 'i', 'd', 'e', 0x00, // "outside" down
}

func TestHelloRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		hello Hello
		wire  []byte
	}{
		{
			name: "fixture",
			hello: Hello{Role: Primary, State: Active, Term: 7, Seq: 42, Interfaces: []MonitoredInterface{
				{Name: "inside", Up: true}, {Name: "outside", Up: false},
			}},
			wire: helloFixture,
		},
		{
			name:  "a standby asking for the active role",
			hello: Hello{Role: Secondary, State: StandbyReady, Term: 3, Seq: 9, WantActive: true},
			wire:  []byte{2, 2, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 9},
		},
		{
			name:  "no interfaces",
			hello: Hello{Role: Secondary, State: Negotiation, Term: 1<<64 - 1, Seq: 1<<32 - 1},
			wire: []byte{2, 2, 1, 0,
				0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				0xff, 0xff, 0xff, 0xff},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.hello.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wire, got); diff != "" {
				t.Errorf("marshal (-want +got):\n%s", diff)
			}
			var h Hello
			if err := h.UnmarshalBinary(tt.wire); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.hello, h); diff != "" {
				t.Errorf("unmarshal (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHelloUnmarshalErrors(t *testing.T) {
	with := func(i int, b byte) []byte {
		c := bytes.Clone(helloFixture)
		c[i] = b
		return c
	}
	tests := []struct {
		name string
		wire []byte
		want error
	}{
		{"empty", nil, io.ErrUnexpectedEOF},
		{"short header", helloFixture[:15], io.ErrUnexpectedEOF},
		{"short header of another version", []byte{9, 1}, ErrVersion},
		{"cut in a name", helloFixture[:20], io.ErrUnexpectedEOF},
		{"cut before the up flag", helloFixture[:23], io.ErrUnexpectedEOF},
		{"cut before the second interface", helloFixture[:24], io.ErrUnexpectedEOF},
		{"version 1", with(0, 1), ErrVersion},
		{"unknown flag", with(2, 0x25), ErrFlags},
		{"role 0", with(1, 0), ErrRole},
		{"role 3", with(1, 3), ErrRole},
		{"state 7", with(2, 7), ErrState},
		{"65 interfaces", with(3, 65), ErrTooManyInterfaces},
		{"fewer interfaces than sent", with(3, 1), ErrTrailingBytes},
		{"empty name", with(16, 0), ErrInterfaceName},
		{"name with a space", with(18, ' '), ErrInterfaceName},
		{"name with a control byte", with(18, 0x7f), ErrInterfaceName},
		{"name too long", append(append([]byte{}, helloFixture[:16]...), append([]byte{33}, bytes.Repeat([]byte{'a'}, 34)...)...), ErrInterfaceName},
		{"up flag 2", with(23, 2), ErrInterfaceUp},
		{"trailing byte", append(bytes.Clone(helloFixture), 0), ErrTrailingBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Hello{Seq: 99}
			err := h.UnmarshalBinary(tt.wire)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if h.Seq != 99 {
				t.Errorf("hello changed on error: %+v", h)
			}
		})
	}
}

func TestHelloMarshalErrors(t *testing.T) {
	many := make([]MonitoredInterface, MaxInterfaces+1)
	for i := range many {
		many[i].Name = "x"
	}
	tests := []struct {
		name  string
		hello Hello
		want  error
	}{
		{"no role", Hello{State: Active}, ErrRole},
		{"bad state", Hello{Role: Primary, State: 9}, ErrState},
		{"too many interfaces", Hello{Role: Primary, Interfaces: many}, ErrTooManyInterfaces},
		{"empty interface name", Hello{Role: Primary, Interfaces: []MonitoredInterface{{}}}, ErrInterfaceName},
		{"name too long", Hello{Role: Primary, Interfaces: []MonitoredInterface{{Name: string(bytes.Repeat([]byte{'a'}, 33))}}}, ErrInterfaceName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.hello.MarshalBinary(); !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzHelloUnmarshal checks that any input either fails cleanly or decodes to
// a hello that encodes back to the same bytes.
func FuzzHelloUnmarshal(f *testing.F) {
	f.Add(helloFixture)
	f.Add([]byte{2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{2, 2, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Hello
		if err := h.UnmarshalBinary(b); err != nil {
			return
		}
		got, err := h.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", h, err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("round trip changed bytes:\n in  %x\n out %x", b, got)
		}
	})
}

// FuzzHelloRoundTrip builds hellos from fuzzed fields and checks that every
// one that encodes decodes to itself.
func FuzzHelloRoundTrip(f *testing.F) {
	f.Add(uint8(1), uint8(5), uint64(7), uint32(42), "inside", true, "outside", false)
	f.Add(uint8(2), uint8(2), uint64(0), uint32(0), "a", false, "", false)
	f.Fuzz(func(t *testing.T, role, state uint8, term uint64, seq uint32, n1 string, up1 bool, n2 string, up2 bool) {
		h := Hello{Role: Role(role), State: State(state), Term: term, Seq: seq}
		for _, i := range []MonitoredInterface{{n1, up1}, {n2, up2}} {
			if i.Name != "" {
				h.Interfaces = append(h.Interfaces, i)
			}
		}
		b, err := h.MarshalBinary()
		if err != nil {
			return
		}
		var got Hello
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("own encoding %x of %+v does not decode: %v", b, h, err)
		}
		if diff := cmp.Diff(h, got); diff != "" {
			t.Fatalf("round trip (-in +out):\n%s", diff)
		}
	})
}

func BenchmarkHelloMarshal(b *testing.B) {
	var h Hello
	if err := h.UnmarshalBinary(helloFixture); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = h.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/hello")
}

func BenchmarkHelloUnmarshal(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var h Hello
		if err := h.UnmarshalBinary(helloFixture); err != nil {
			b.Fatal(err)
		}
	}
}
