package replicate

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// sampleMessages has one filled-in message of every type. The fuzz seeds
// use it too, so it stays small; bigMessages adds limit-sized ones.
func sampleMessages() []Message {
	var nonce [NonceLen]byte
	for i := range nonce {
		nonce[i] = byte(i)
	}
	return []Message{
		&Hello{Role: RoleSender, Nonce: nonce},
		&Hello{Role: RoleReceiver},
		&Auth{Transcript: [32]byte{1, 2, 3}},
		&BulkStart{BulkID: 7, Tables: []uint8{1, 2, 3}},
		&BulkStart{BulkID: 1, Tables: []uint8{}},
		&Records{SentAt: 1_700_000_000_000_000_000, FirstSeq: 42, Records: []Record{
			{Table: 1, Op: OpUpsert, Payload: []byte("conn 198.18.0.10:443")},
			{Table: 2, Op: OpDelete, Payload: []byte{}},
			{Table: 3, Op: OpUpsert, Payload: bytes.Repeat([]byte{0xAB}, 300)},
		}},
		&Records{FirstSeq: 1, Records: []Record{}}, // keepalive
		&BulkEnd{BulkID: 7, Records: 100_000},
		&DigestMarker{RecordSeq: 99, Digests: []TableDigest{{1, 0xDEADBEEF}, {2, 0}, {255, ^uint64(0)}}},
		&DigestMarker{Digests: []TableDigest{}},
		&Ack{Seq: 12345, EchoSentAt: -1},
		&Ack{Seq: 1, EchoSentAt: 7, Synced: true},
		&ResyncRequest{Reason: "digest mismatch in tables [1]"},
		&Close{Code: CloseAuthFailed, Reason: "your Auth frame did not open"},
	}
}

func bigMessages() []Message {
	return []Message{
		&Records{FirstSeq: 1, Records: []Record{{Table: 3, Op: OpUpsert, Payload: bytes.Repeat([]byte{0xAB}, MaxRecordPayload)}}},
		&Close{Code: CloseAuthFailed, Reason: strings.Repeat("x", MaxReasonLen)},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range append(sampleMessages(), bigMessages()...) {
		t.Run(m.Type().String(), func(t *testing.T) {
			b, err := m.AppendBinary(nil)
			if err != nil {
				t.Fatalf("AppendBinary: %v", err)
			}
			got, err := ParseMessage(m.Type(), b)
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			if diff := cmp.Diff(m, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			// Every strict prefix is short input.
			for n := range len(b) {
				if n > 512 && n < len(b)-512 && n%1021 != 0 {
					continue // the middle of a long payload teaches nothing new
				}
				if _, err := ParseMessage(m.Type(), b[:n]); err == nil {
					t.Errorf("prefix of %d/%d bytes parsed without error", n, len(b))
				}
			}
			if _, err := ParseMessage(m.Type(), append(b, 0)); !errors.Is(err, ErrTrailingBytes) {
				t.Errorf("trailing byte: err = %v, want ErrTrailingBytes", err)
			}
		})
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{Version: Version, Type: MsgRecords, Flags: FlagEncrypted, Length: maxWireBody, Seq: 1<<63 + 5}
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != HeaderLen {
		t.Fatalf("header is %d bytes, want %d", len(b), HeaderLen)
	}
	var got Header
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(h, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestHeaderErrors(t *testing.T) {
	good, _ := Header{Version: Version, Type: MsgAck, Length: 16}.MarshalBinary()
	mut := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"short", good[:HeaderLen-1], io.ErrUnexpectedEOF},
		{"magic", mut(func(b []byte) { b[0] = 'G' }), ErrBadMagic},
		{"version", mut(func(b []byte) { b[offVersion] = 2 }), ErrVersion},
		{"reserved", mut(func(b []byte) { b[offReserved+2] = 1 }), ErrReserved},
		{"flags", mut(func(b []byte) { b[offFlags] = 0x80 }), ErrBadFlags},
		// A huge length is refused from the header alone: nothing is
		// allocated for it.
		{"length", mut(func(b []byte) { b[offLength] = 0xFF }), ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Header
			if err := h.UnmarshalBinary(tt.b); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMessageErrors(t *testing.T) {
	tests := []struct {
		name string
		t    MsgType
		body []byte
		want error
	}{
		{"unknown type", MsgType(200), nil, ErrUnknownType},
		{"hello role", MsgHello, append([]byte{9}, make([]byte, NonceLen)...), ErrBadRole},
		{"bulkstart too many tables", MsgBulkStart, []byte{0, 0, 0, 1, 0x01, 0x01}, ErrTooLong},
		// 0xFFFFFFFF records announced in a 20-byte body: refused before
		// anything is walked or allocated.
		{"records huge count", MsgRecords, append(make([]byte, 16), 0xFF, 0xFF, 0xFF, 0xFF), ErrBadCount},
		{"records bad op", MsgRecords, append(append(make([]byte, 16), 0, 0, 0, 1), 1, 3, 0, 0), ErrBadOp},
		{"records short payload", MsgRecords, append(append(make([]byte, 16), 0, 0, 0, 1), 1, 1, 0, 5, 'a'), io.ErrUnexpectedEOF},
		{"digest unsorted", MsgDigest, append(append(make([]byte, 8), 0, 2), 5, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0), ErrUnsorted},
		{"digest too many", MsgDigest, append(make([]byte, 8), 0x01, 0x01), ErrTooLong},
		{"reason too long", MsgResync, []byte{0xFF, 0xFF}, ErrTooLong},
		{"close short", MsgClose, []byte{0}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseMessage(tt.t, tt.body); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		want error
	}{
		{"bad role", &Hello{Role: 0}, ErrBadRole},
		{"bad op", &Records{Records: []Record{{Op: 0}}}, ErrBadOp},
		{"payload too long", &Records{Records: []Record{{Op: OpUpsert, Payload: make([]byte, MaxRecordPayload+1)}}}, ErrTooLong},
		{"unsorted digests", &DigestMarker{Digests: []TableDigest{{2, 0}, {1, 0}}}, ErrUnsorted},
		{"too many tables", &BulkStart{Tables: make([]uint8, MaxTables+1)}, ErrTooLong},
		{"reason too long", &Close{Reason: strings.Repeat("x", MaxReasonLen+1)}, ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.m.AppendBinary(nil); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRecordsViewAllocs(t *testing.T) {
	m := &Records{FirstSeq: 1, Records: []Record{{1, OpUpsert, []byte("abc")}, {2, OpDelete, nil}}}
	b, _ := m.AppendBinary(nil)
	v := RecordsView(b)
	var n int
	fn := func(uint8, Op, []byte) { n++ }
	allocs := testing.AllocsPerRun(100, func() {
		if err := v.Validate(); err != nil {
			t.Fatal(err)
		}
		v.Each(fn)
	})
	if allocs != 0 {
		t.Errorf("RecordsView validate+walk allocates %v times, want 0", allocs)
	}
}

func TestStringers(t *testing.T) {
	got := []string{MsgDigest.String(), MsgType(99).String(), OpDelete.String(), Op(9).String(),
		RoleReceiver.String(), Role(0).String(), CloseReplaced.String(), CloseCode(77).String()}
	want := []string{"DigestMarker", "MsgType(99)", "delete", "Op(9)", "receiver", "Role(0)", "replaced", "CloseCode(77)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
