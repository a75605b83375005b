package recordio

import (
	"bytes"
	"math/bits"
	"testing"
)

// Every field reads back what was written; a short body reads zeros from
// the first missing byte on and says so once, at the end.
func TestReaderRoundTrip(t *testing.T) {
	var b []byte
	b = append(b, 7)
	b = append(b, 0x12, 0x34)
	b = append(b, 0xde, 0xad, 0xbe, 0xef)
	b = append(b, 0, 0, 0, 0, 0, 0, 1, 0)
	b = append(b, 198, 18, 0, 1)
	b = AppendStr8(b, "inside")
	r := NewReader(b)
	if r.U8() != 7 || r.U16() != 0x1234 || r.U32() != 0xdeadbeef || r.I64() != 256 || r.Addr4() != [4]byte{198, 18, 0, 1} || r.Str8() != "inside" {
		t.Fatal("fields did not read back")
	}
	if r.Short() || r.Len() != 0 {
		t.Fatalf("short %v, %d left", r.Short(), r.Len())
	}
	if r.U16() != 0 || !r.Short() {
		t.Fatal("a read past the end must give zeros and mark the reader short")
	}

	short := NewReader(b[:len(b)-2])
	short.U8()
	short.U16()
	short.U32()
	short.I64()
	short.Addr4()
	if s := short.Str8(); !short.Short() || s != "\x00\x00\x00\x00\x00\x00" {
		t.Errorf("a cut string read %q and short %v: want six zero bytes and short", s, short.Short())
	}
}

// Strings are cut at 255 bytes, the most one length byte says.
func TestAppendStr8Cuts(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 300)
	b := AppendStr8(nil, string(long))
	if b[0] != 255 || len(b) != 256 {
		t.Fatalf("length byte %d, %d bytes", b[0], len(b))
	}
}

// Records that differ in one byte get hashes that differ in about half
// their bits: the digests sum them, so a weak mix would let two different
// tables sum the same.
func TestHashSpreads(t *testing.T) {
	base := bytes.Repeat([]byte{0xa5}, 37)
	h0 := Hash(base)
	for i := range base {
		v := bytes.Clone(base)
		v[i] ^= 1
		if d := bits.OnesCount64(h0 ^ Hash(v)); d < 12 || d > 52 {
			t.Errorf("flipping byte %d changed %d bits of the hash", i, d)
		}
	}
	if Hash(base[:36]) == Hash(append(bytes.Clone(base[:36]), 0)) {
		t.Error("a trailing zero byte must change the hash (the length is mixed in)")
	}
}
