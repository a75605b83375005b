package esp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

var (
	testKey  = bytes.Repeat([]byte{0x42}, 16)
	testSalt = []byte{0xca, 0xfe, 0xba, 0xbe}
)

// inner is a 20-byte IPv4 header followed by n payload bytes.
func inner(n int) []byte {
	p := make([]byte, 20+n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	for i := 20; i < len(p); i++ {
		p[i] = byte(i)
	}
	return p
}

func pair(t testing.TB, window int) (*Outbound, *Inbound) {
	t.Helper()
	o, err := NewOutbound(0x1234, testKey, testSalt, 1)
	if err != nil {
		t.Fatal(err)
	}
	o.Grant(1 << 20)
	in, err := NewInbound(0x1234, testKey, testSalt, window)
	if err != nil {
		t.Fatal(err)
	}
	return o, in
}

// TestEncapLayout builds the expected packet independently from RFC 4303
// and RFC 4106 (nonce = salt | IV, AAD = SPI | sequence number, IV = the
// sequence number, monotonic padding to 4 bytes, next header 4) and
// compares Encap's output byte for byte.
func TestEncapLayout(t *testing.T) {
	o, _ := pair(t, 64)
	o.Encap(nil, inner(1)) // seq 1
	pkt := inner(5)        // 25 bytes: pad 1 so that 25+1+2 = 28
	got, err := o.Encap(nil, pkt)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(testKey)
	g, _ := cipher.NewGCM(block)
	hdr := []byte{0, 0, 0x12, 0x34, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2}
	plain := append(append([]byte{}, pkt...), 1, 1, 4)
	nonce := append(append([]byte{}, testSalt...), hdr[8:]...)
	want := g.Seal(append([]byte{}, hdr...), nonce, plain, hdr[:8])
	if !bytes.Equal(got, want) {
		t.Fatalf("Encap:\n got %x\nwant %x", got, want)
	}
}

func TestRoundTripSizes(t *testing.T) {
	o, in := pair(t, 64)
	for n := 0; n < 70; n++ {
		pkt := inner(n)
		enc, err := o.Encap(nil, pkt)
		if err != nil {
			t.Fatal(err)
		}
		if (len(enc)-headerLen-icvLen)%4 != 0 || len(enc) > len(pkt)+Overhead {
			t.Fatalf("%d bytes: ESP of %d bytes", len(pkt), len(enc))
		}
		dec, err := in.Decap(nil, enc)
		if err != nil || !bytes.Equal(dec, pkt) {
			t.Fatalf("%d bytes: %v", len(pkt), err)
		}
	}
}

// TestTamperEveryByte: flipping any bit of the packet fails, and does not
// move the replay window.
func TestTamperEveryByte(t *testing.T) {
	o, in := pair(t, 64)
	enc, _ := o.Encap(nil, inner(30))
	for i := range enc {
		bad := append([]byte(nil), enc...)
		bad[i] ^= 0x10
		if _, err := in.Decap(nil, bad); err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
	if in.Window().Top() != 0 {
		t.Fatalf("forgeries moved the window to %d", in.Window().Top())
	}
	if _, err := in.Decap(nil, enc); err != nil {
		t.Fatalf("the genuine packet after the forgeries: %v", err)
	}
}

func TestReplayWindowEdges(t *testing.T) {
	for _, size := range []int{64, 1024} {
		w, _ := NewWindow(size)
		top := uint32(5000)
		w.Accept(top)
		s := uint32(size)
		cases := []struct {
			seq  uint32
			want bool
		}{
			{0, false},          // never valid
			{top, false},        // replay of the top
			{top + 1, true},     // right of the window
			{top - s + 1, true}, // leftmost in the window
			{top - s, false},    // just left of it
			{top - 1, true},     // not seen yet
		}
		for _, c := range cases {
			if got := w.Check(c.seq); got != c.want {
				t.Errorf("window %d, top %d: Check(%d) = %v, want %v", size, top, c.seq, got, c.want)
			}
		}
		w.Accept(top - s + 1)
		if w.Check(top - s + 1) {
			t.Errorf("window %d: leftmost accepted twice", size)
		}
		// A jump of exactly the window clears everything old.
		w.Accept(top + s)
		if !w.Check(top+1) || w.Check(top) {
			t.Errorf("window %d after a jump of %d: Check(top+1)=%v Check(top)=%v", size, s, w.Check(top+1), w.Check(top))
		}
	}
}

// TestReplayWindowAgainstModel compares the ring with a map-based model
// on an adversarial sequence of arrivals.
func TestReplayWindowAgainstModel(t *testing.T) {
	const size = 128
	w, _ := NewWindow(size)
	seen := map[uint32]bool{}
	var top uint32
	x := uint32(12345)
	for i := 0; i < 20000; i++ {
		x = x*1103515245 + 12345
		seq := top + 40 - (x>>8)%200 // mostly near the top, some far left
		if int32(seq) <= 0 {
			seq = 1 + x%7
		}
		want := seq != 0 && !seen[seq] && (seq > top || top-seq < size)
		if got := w.Check(seq); got != want {
			t.Fatalf("step %d: Check(%d) top %d = %v, want %v", i, seq, top, got, want)
		}
		if want {
			w.Accept(seq)
			seen[seq] = true
			top = max(top, seq)
		}
	}
}

func TestReplayDecap(t *testing.T) {
	o, in := pair(t, 64)
	var pkts [][]byte
	for i := 0; i < 100; i++ {
		p, _ := o.Encap(nil, inner(8))
		pkts = append(pkts, p)
	}
	if _, err := in.Decap(nil, pkts[99]); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Decap(nil, pkts[99]); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	if _, err := in.Decap(nil, pkts[50]); err != nil { // seq 51, in window (top 100)
		t.Fatalf("late packet in the window: %v", err)
	}
	if _, err := in.Decap(nil, pkts[20]); !errors.Is(err, ErrReplay) { // seq 21: left of it
		t.Fatalf("packet left of the window: %v", err)
	}
}

// TestWindowAdvance: a synced top makes everything at or below it refused,
// and numbers above it, even in the same word, accepted.
func TestWindowAdvance(t *testing.T) {
	w, _ := NewWindow(64)
	w.Accept(10)
	w.Advance(100)
	if w.Check(100) || w.Check(99) || w.Check(37) || !w.Check(101) {
		t.Fatal("Advance(100) window wrong")
	}
	w.Accept(105)
	if !w.Check(103) || w.Check(105) {
		t.Fatal("after Accept(105) following Advance(100)")
	}
}

// TestLease: nothing is sent before a grant, exactly the granted numbers
// are sent, NeedGrant rises at half the block, and a takeover starting at
// the acknowledged limit never repeats a number.
func TestLease(t *testing.T) {
	o, err := NewOutbound(1, testKey, testSalt, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Encap(nil, inner(1)); !errors.Is(err, ErrLeaseExhausted) {
		t.Fatalf("before any grant: %v", err)
	}
	o.Grant(101) // numbers 1..100
	sent := 0
	needAt := -1
	for {
		if _, err := o.Encap(nil, inner(1)); err != nil {
			if !errors.Is(err, ErrLeaseExhausted) {
				t.Fatal(err)
			}
			break
		}
		sent++
		if needAt < 0 && o.NeedGrant() {
			needAt = sent
		}
	}
	if sent != 100 || needAt != 51 {
		t.Fatalf("sent %d (want 100), NeedGrant after %d (want 51)", sent, needAt)
	}
	o.Grant(50) // a lower grant never shrinks nor re-opens numbers
	if _, err := o.Encap(nil, inner(1)); !errors.Is(err, ErrLeaseExhausted) {
		t.Fatal("lower grant re-opened the lease")
	}
	// Takeover: the new active starts at the acknowledged limit.
	b, _ := NewOutbound(1, testKey, testSalt, o.Limit())
	b.Grant(o.Limit() + 10)
	p, _ := b.Encap(nil, inner(1))
	if seq := binary.BigEndian.Uint32(p[4:]); seq != 101 {
		t.Fatalf("new active's first sequence number %d, want 101", seq)
	}
}

func TestLeaseStopsAtSequenceSpace(t *testing.T) {
	o, _ := NewOutbound(1, testKey, testSalt, maxSeq)
	o.Grant(1 << 40)
	if _, err := o.Encap(nil, inner(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Encap(nil, inner(1)); !errors.Is(err, ErrLeaseExhausted) {
		t.Fatalf("sequence number wrapped: %v", err)
	}
}

func TestDecapErrors(t *testing.T) {
	o, in := pair(t, 64)
	enc, _ := o.Encap(nil, inner(4))
	other, _ := NewInbound(0x9999, testKey, testSalt, 64)
	if _, err := other.Decap(nil, enc); !errors.Is(err, ErrSPI) {
		t.Fatalf("wrong SPI: %v", err)
	}
	if _, err := in.Decap(nil, enc[:20]); !errors.Is(err, ErrShort) {
		t.Fatalf("short: %v", err)
	}
	if _, err := NewInbound(1, testKey[:5], testSalt, 64); !errors.Is(err, ErrKey) {
		t.Fatalf("bad key: %v", err)
	}
	if !IsIKE([]byte{0, 0, 0, 0, 1}) || IsIKE(enc) || !IsKeepalive([]byte{0xff}) {
		t.Fatal("UDP-encapsulation classifiers")
	}
}

func TestEncapDecapAllocateNothing(t *testing.T) {
	o, in := pair(t, 1024)
	pkt := inner(1400)
	buf := make([]byte, 0, 2000)
	out := make([]byte, 0, 2000)
	allocs := testing.AllocsPerRun(200, func() {
		enc, err := o.Encap(buf[:0], pkt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.Decap(out[:0], enc); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}

// FuzzDecap: no input panics Decap, and whatever it accepts round-trips.
func FuzzDecap(f *testing.F) {
	o, _ := pair(f, 64)
	for _, n := range []int{0, 1, 2, 3, 40} {
		p, _ := o.Encap(nil, inner(n))
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, _ := NewInbound(0x1234, testKey, testSalt, 64)
		out, err := in.Decap(nil, b)
		if err == nil && len(out) > len(b) {
			t.Fatalf("inner of %d bytes from %d", len(out), len(b))
		}
	})
}

func BenchmarkEncapDecap1400(b *testing.B) {
	o, in := pair(b, 1024)
	o.Grant(1 << 32)
	pkt := inner(1380)
	buf, out := make([]byte, 0, 2000), make([]byte, 0, 2000)
	b.SetBytes(int64(len(pkt)))
	for i := 0; i < b.N; i++ {
		enc, _ := o.Encap(buf[:0], pkt)
		in.Decap(out[:0], enc)
	}
}

// TestWindowSnapshotRestore: a window restored from another's snapshot
// answers Check exactly as the original for every number (a replay inside
// the window refused, a number never received accepted, left of the window
// refused), keeps doing so as both move on, and a smaller window's
// snapshot leaves the numbers it does not cover refused.
func TestWindowSnapshotRestore(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	for _, top := range []uint32{5, 63, 64, 1000, 70000} {
		a, _ := NewWindow(1024)
		for range 3000 {
			s := top - uint32(rng.IntN(int(min(top, 1300))))
			if a.Check(s) {
				a.Accept(s)
			}
		}
		a.Accept(top)
		b, _ := NewWindow(1024)
		b.Restore(a.Top(), a.Snapshot(nil))
		same := func(when string) {
			t.Helper()
			lo := uint32(1)
			if a.Top() > 1300 {
				lo = a.Top() - 1300
			}
			for s := lo; s < a.Top()+200; s++ {
				if a.Check(s) != b.Check(s) {
					t.Fatalf("top %d %s: Check(%d) original %v restored %v", top, when, s, a.Check(s), b.Check(s))
				}
			}
		}
		same("restored")
		for _, s := range []uint32{top + 3, top + 1, top + 70, top + 69} {
			a.Accept(s)
			b.Accept(s)
		}
		same("after moving on")
	}
	small, _ := NewWindow(64)
	small.Accept(1000)
	small.Accept(990)
	big, _ := NewWindow(1024)
	big.Restore(small.Top(), small.Snapshot(nil))
	if big.Check(1000) || big.Check(990) || !big.Check(991) || big.Check(900) || !big.Check(1001) {
		t.Error("a 64-bit snapshot restored into a 1024-bit window: received or uncovered numbers accepted, or a fresh one refused")
	}
	big.Restore(500, nil) // behind: ignored
	if big.Top() != 1000 {
		t.Errorf("Restore moved the top back to %d", big.Top())
	}
}
