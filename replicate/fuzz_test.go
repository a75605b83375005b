package replicate

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzMessage: any body of any type either fails to parse, or parses to a
// message that re-encodes to exactly the same bytes (the encoding is
// canonical) and parses back equal.
func FuzzMessage(f *testing.F) {
	for _, m := range sampleMessages() {
		b, _ := m.AppendBinary(nil)
		f.Add(byte(m.Type()), b)
	}
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		m, err := ParseMessage(MsgType(typ), body)
		if err != nil {
			return
		}
		b, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatalf("parsed %v does not re-encode: %v", m.Type(), err)
		}
		if !bytes.Equal(b, body) {
			t.Fatalf("%v re-encodes differently:\n in  %x\n out %x", m.Type(), body, b)
		}
		m2, err := ParseMessage(MsgType(typ), b)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if diff := cmp.Diff(m, m2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzHeader: a header that parses re-encodes to the same 20 bytes.
func FuzzHeader(f *testing.F) {
	h, _ := Header{Version: Version, Type: MsgRecords, Flags: FlagEncrypted, Length: 100, Seq: 9}.MarshalBinary()
	f.Add(h)
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		if err := h.UnmarshalBinary(b); err != nil {
			return
		}
		out, _ := h.MarshalBinary()
		if !bytes.Equal(out, b[:HeaderLen]) {
			t.Fatalf("header re-encodes differently:\n in  %x\n out %x", b[:HeaderLen], out)
		}
	})
}

// FuzzFrameReader feeds random bytes to the receiving path, sealed and
// cleartext: it must return errors, never panic or over-allocate. Seeds
// include real sealed frames, so mutations reach the AEAD and the parsers.
func FuzzFrameReader(f *testing.F) {
	key := Key{1, 2, 3}
	var transcript [32]byte
	w := sealer{dir: dirSenderToReceiver}
	w.aead, _ = deriveAEAD(key, transcript, dirSenderToReceiver)
	var stream []byte
	for _, m := range sampleMessages()[2:] {
		stream, _ = w.appendMessage(stream, m)
	}
	f.Add(false, stream)
	f.Add(true, stream)
	clear := sealer{}
	hello, _ := clear.appendMessage(nil, &Hello{Role: RoleSender})
	f.Add(false, hello)
	f.Fuzz(func(t *testing.T, sealed bool, b []byte) {
		r := frameReader{r: bufio.NewReader(bytes.NewReader(b)), dir: dirSenderToReceiver}
		if sealed {
			r.aead, _ = deriveAEAD(key, transcript, dirSenderToReceiver)
		}
		for range 64 {
			h, body, err := r.next()
			if err != nil {
				return
			}
			if cap(r.buf) > maxWireBody {
				t.Fatalf("reader buffer grew to %d", cap(r.buf))
			}
			_, _ = ParseMessage(h.Type, body)
		}
	})
}

// TestWriteSeedCorpus regenerates testdata/fuzz from the seeds above when
// REPLICATE_WRITE_CORPUS=1; otherwise it only checks the corpus exists.
func TestWriteSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz")
	if os.Getenv("REPLICATE_WRITE_CORPUS") != "1" {
		for _, name := range []string{"FuzzMessage", "FuzzHeader", "FuzzFrameReader"} {
			if ents, err := os.ReadDir(filepath.Join(dir, name)); err != nil || len(ents) == 0 {
				t.Errorf("seed corpus %s missing (run with REPLICATE_WRITE_CORPUS=1): %v", name, err)
			}
		}
		return
	}
	write := func(fuzz, name string, lines ...string) {
		p := filepath.Join(dir, fuzz)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		s := "go test fuzz v1\n"
		for _, l := range lines {
			s += l + "\n"
		}
		if err := os.WriteFile(filepath.Join(p, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range sampleMessages() {
		b, _ := m.AppendBinary(nil)
		write("FuzzMessage", fmt.Sprintf("seed-%02d-%v", i, m.Type()), fmt.Sprintf("byte(%q)", byte(m.Type())), fmt.Sprintf("[]byte(%q)", b))
	}
	h, _ := Header{Version: Version, Type: MsgAck, Flags: FlagEncrypted, Length: 32, Seq: 3}.MarshalBinary()
	write("FuzzHeader", "seed-ack", fmt.Sprintf("[]byte(%q)", h))
	key := Key{1, 2, 3}
	var transcript [32]byte
	w := sealer{dir: dirSenderToReceiver}
	w.aead, _ = deriveAEAD(key, transcript, dirSenderToReceiver)
	for i, m := range sampleMessages()[2:] {
		b, _ := w.appendMessage(nil, m)
		if i > 0 {
			continue // later frames need the earlier ones (sequence); keep one
		}
		write("FuzzFrameReader", "seed-sealed-auth", "bool(true)", fmt.Sprintf("[]byte(%q)", b))
	}
	clear := sealer{}
	hello, _ := clear.appendMessage(nil, &Hello{Role: RoleSender})
	write("FuzzFrameReader", "seed-hello", "bool(false)", fmt.Sprintf("[]byte(%q)", hello))
}
