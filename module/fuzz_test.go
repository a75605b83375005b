package module

import (
	"bytes"
	"encoding/binary"
	"testing"
)

var fuzzSigs = []string{"EVIL-PAYLOAD", "abab", "aab", "ba"}

// FuzzSegment cuts a stream into segments (cuts gives their lengths),
// delivers them with adjacent pairs swapped where swaps says and some sent
// twice, and checks the module's verdict against bytes.Contains on the
// whole stream: a signature is detected, in whatever segmentation and
// order, exactly when the stream contains one.
func FuzzSegment(f *testing.F) {
	f.Add([]byte("xxEVIL-PAYLOADxx"), []byte{3, 5, 1}, []byte{1, 0, 1}, uint32(1000))
	f.Add([]byte("aaab"), []byte{1}, []byte{1}, uint32(0xffff_fffe))
	f.Add([]byte("xyzxyz"), []byte{2}, []byte{0, 1}, uint32(7))
	f.Fuzz(func(t *testing.T, stream, cuts, swaps []byte, isn uint32) {
		if len(stream) > 4096 {
			return
		}
		sigs := make([]Signature, len(fuzzSigs))
		want := false
		for i, s := range fuzzSigs {
			sigs[i] = Signature{Name: s, Pattern: []byte(s)}
			want = want || bytes.Contains(stream, []byte(s))
		}
		m, err := New(Config{Signatures: sigs})
		if err != nil {
			t.Fatal(err)
		}
		m.Segment(key, ToServer, isn, SYN, nil, t0)
		type seg struct {
			seq  uint32
			data []byte
		}
		var segs []seg
		for off, i := 0, 0; off < len(stream); i++ {
			n := 1
			if len(cuts) > 0 {
				n = 1 + int(cuts[i%len(cuts)]%16)
			}
			n = min(n, len(stream)-off)
			segs = append(segs, seg{isn + 1 + uint32(off), stream[off : off+n]})
			off += n
		}
		for i := 0; i+1 < len(segs) && i < len(swaps); i += 2 {
			if swaps[i]&1 != 0 {
				segs[i], segs[i+1] = segs[i+1], segs[i]
			}
		}
		got := false
		for i, s := range segs {
			v := m.Segment(key, ToServer, s.seq, ACK, s.data, t0)
			if i < len(swaps) && swaps[i]&2 != 0 { // a retransmission
				if v2 := m.Segment(key, ToServer, s.seq, ACK, s.data, t0); v2 != v && v2 != DropDetected {
					t.Fatalf("retransmission of segment %d: %v, first %v", i, v2, v)
				}
			}
			switch v {
			case DropDetected:
				got = true
			case Pass:
			default:
				t.Fatalf("segment %d: %v", i, v)
			}
		}
		if got != want {
			t.Fatalf("detected %v, stream %q contains a signature: %v", got, stream, want)
		}
		if s := m.Stats(); !got && s.Buffered != 0 {
			t.Fatalf("%d bytes still held after the whole stream", s.Buffered)
		}
	})
}

// FuzzSegmentOps feeds arbitrary segments of a few flows (each op: flow,
// direction, flags, sequence number, payload length) and checks that the
// module never panics and keeps its bounds.
func FuzzSegmentOps(f *testing.F) {
	f.Add([]byte{0, 0, 2, 0, 0, 0, 1, 0, 1, 0, 0x10, 0, 0, 0, 2, 5})
	f.Fuzz(func(t *testing.T, ops []byte) {
		m, err := New(Config{Signatures: []Signature{{Name: "s", Pattern: []byte("zz")}},
			MaxFlows: 32, Window: 256, MaxBuffered: 16 * 300, FailMode: FailMode(len(ops) % 2)})
		if err != nil {
			t.Fatal(err)
		}
		payload := bytes.Repeat([]byte("z."), 128)
		for len(ops) >= 8 {
			k := key
			k.ClientPort = uint16(ops[0] % 40)
			seq := binary.BigEndian.Uint32(ops[3:7])
			n := int(ops[7])
			m.Segment(k, Dir(ops[1]), seq, Flags(ops[2]), payload[:n%len(payload)], t0)
			ops = ops[8:]
			if s := m.Stats(); s.Flows > 32 || s.Buffered > 16*300 || s.Buffered < 0 {
				t.Fatalf("bounds broken: %+v", s)
			}
		}
		m.Expire(t0.Add(2 * 3600e9))
		if s := m.Stats(); s.Flows != 0 || s.Buffered != 0 {
			t.Fatalf("after expiry: %+v", s)
		}
	})
}
