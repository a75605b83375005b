package ctiqbe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	phoneAddr   = [4]byte{198, 18, 1, 10}
	managerAddr = [4]byte{198, 19, 2, 20}
)

// sampleMessages is one valid message of every type.
func sampleMessages() []Message {
	return []Message{
		{Type: TypeRegister, TxID: 1, Device: "SEP-falab_1.x"},
		{Type: TypeRegisterAck, TxID: 1, DeviceID: 27, Heartbeat: 120},
		{Type: TypeHeartbeat, TxID: 2},
		{Type: TypeHeartbeatAck, TxID: 2},
		{Type: TypeMakeCall, TxID: 3, Number: "1000*#", MediaAddr: phoneAddr, MediaPort: 26822},
		{Type: TypeCallSetup, TxID: 3, CallID: 7, MediaAddr: managerAddr, MediaPort: 16384},
		{Type: TypeCallSetupAck, TxID: 4, CallID: 7},
		{Type: TypeHangUp, TxID: 5, CallID: 7},
		{Type: TypeHangUpAck, TxID: 5, CallID: 7},
		{Type: TypeUnregister, TxID: 6},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		t.Run(m.Type.String(), func(t *testing.T) {
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if n, err := MessageLen(b); err != nil || n != len(b) {
				t.Fatalf("MessageLen = %d, %v; want %d", n, err, len(b))
			}
			var got Message
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(m, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			for i := range len(b) {
				if err := got.UnmarshalBinary(b[:i]); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrLength) {
					t.Errorf("truncated to %d: err = %v, want ErrUnexpectedEOF or ErrLength", i, err)
				}
			}
		})
	}
}

// TestCodecFixture pins the layout of one message, byte by byte.
func TestCodecFixture(t *testing.T) {
	m := Message{Type: TypeCallSetup, TxID: 0x01020304, CallID: 7, MediaAddr: managerAddr, MediaPort: 16384}
	want := []byte{
		0x00, 0x12, // length 18
		0x06, 0x00, // CallSetup, reserved
		0x01, 0x02, 0x03, 0x04, // transaction id
		0x00, 0x00, 0x00, 0x07, // call id
		198, 19, 2, 20, // remote media address
		0x40, 0x00, // RTP port 16384
	}
	got, err := m.MarshalBinary()
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("MarshalBinary = % x, %v; want % x", got, err, want)
	}
}

func TestCodecRejects(t *testing.T) {
	valid := func(m Message) []byte { b, _ := m.MarshalBinary(); return b }
	patch := func(b []byte, off int, v ...byte) []byte { c := bytes.Clone(b); copy(c[off:], v); return c }
	reg := valid(Message{Type: TypeRegister, Device: "abc"})
	mc := valid(sampleMessages()[4])
	cs := valid(sampleMessages()[5])
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"length under header", patch(reg, 0, 0, 4), ErrLength},
		{"length over max", patch(reg, 0, 0, 200), ErrLength},
		{"length beyond input", patch(reg, 0, 0, byte(len(reg)+1)), io.ErrUnexpectedEOF},
		{"trailing byte", append(bytes.Clone(reg), 0), ErrLength},
		{"type zero", patch(reg, 2, 0), ErrType},
		{"type unknown", patch(reg, 2, 99), ErrType},
		{"reserved", patch(reg, 3, 1), ErrReserved},
		{"name length lies", patch(reg, HeaderLen, 4), ErrLength},
		{"name empty", valid0(HeaderLen+1, TypeRegister, 0), ErrField},
		{"name bad char", patch(reg, HeaderLen+1, ' '), ErrField},
		{"number bad char", patch(mc, HeaderLen+1, 'a'), ErrField},
		{"zero media address", patch(cs, HeaderLen+4, 0, 0, 0, 0), ErrField},
		{"zero port", patch(cs, HeaderLen+8, 0, 0), ErrField},
		{"port 65535", patch(cs, HeaderLen+8, 0xff, 0xff), ErrField},
		{"zero call id", patch(cs, HeaderLen, 0, 0, 0, 0), ErrField},
		{"heartbeat body", append(patch(valid(Message{Type: TypeHeartbeat}), 1, HeaderLen+1), 0), ErrLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := Message{Type: TypeHeartbeat, TxID: 42}
			before := m
			if err := m.UnmarshalBinary(tc.b); !errors.Is(err, tc.want) {
				t.Errorf("UnmarshalBinary(% x) = %v, want %v", tc.b, err, tc.want)
			}
			if m != before {
				t.Errorf("a failed decode changed the message to %+v", m)
			}
		})
	}
	for _, m := range []Message{
		{Type: TypeRegister, Device: ""},
		{Type: TypeRegister, Device: string(make([]byte, MaxDeviceLen+1))},
		{Type: TypeMakeCall, Number: "12", MediaAddr: phoneAddr},
		{Type: TypeRegisterAck},
		{Type: 0},
	} {
		if _, err := m.MarshalBinary(); err == nil {
			t.Errorf("MarshalBinary(%+v) succeeded; the codec must not write what it would not read", m)
		}
	}
}

// valid0 returns a header of length n and type t followed by a body of
// n-HeaderLen bytes of v.
func valid0(n int, t Type, v byte) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint16(b, uint16(n))
	b[2] = byte(t)
	for i := HeaderLen; i < n; i++ {
		b[i] = v
	}
	return b
}

func TestReadWriteMessageStream(t *testing.T) {
	var buf bytes.Buffer
	for _, m := range sampleMessages() {
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range sampleMessages() {
		got, err := ReadMessage(&buf)
		if err != nil || got != want {
			t.Fatalf("ReadMessage = %+v, %v; want %+v", got, err, want)
		}
	}
	if _, err := ReadMessage(&buf); !errors.Is(err, io.EOF) {
		t.Errorf("at the end: %v, want EOF", err)
	}
	b, _ := (&Message{Type: TypeHangUp, CallID: 1}).MarshalBinary()
	if _, err := ReadMessage(bytes.NewReader(b[:5])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut message: %v, want ErrUnexpectedEOF", err)
	}
}

// FuzzCodec: whatever decodes re-encodes to the same bytes, and nothing
// panics.
func FuzzCodec(f *testing.F) {
	for _, m := range sampleMessages() {
		b, _ := m.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{0, 8, 3, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := m.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", m, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n in % x\nout % x", b, out)
		}
	})
}
