package module

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

var key = FlowKey{Client: [4]byte{198, 18, 1, 11}, Server: [4]byte{203, 0, 113, 5}, ClientPort: 40000, ServerPort: 80}

const sig = "EVIL-PAYLOAD"

func newModule(t testing.TB, mod func(*Config)) *Module {
	t.Helper()
	cfg := Config{Signatures: []Signature{{Name: "evil", Pattern: []byte(sig)}, {Name: "other", Pattern: []byte("xyzzy")}}}
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// conn drives one flow through the module: handshake, then data in either
// direction with sequence numbers tracked as the endpoints would.
type conn struct {
	t   testing.TB
	m   *Module
	k   FlowKey
	seq [2]uint32
}

func open(t testing.TB, m *Module, k FlowKey, isn uint32) *conn {
	c := &conn{t: t, m: m, k: k, seq: [2]uint32{isn + 1, 7001}}
	for _, s := range []struct {
		d   Dir
		seq uint32
		f   Flags
	}{{ToServer, isn, SYN}, {ToClient, 7000, SYN | ACK}, {ToServer, isn + 1, ACK}} {
		if v := m.Segment(k, s.d, s.seq, s.f, nil, t0); v != Pass {
			t.Fatalf("handshake segment %v: %v", s.f, v)
		}
	}
	return c
}

// send sends data in direction d at the current sequence number and
// advances it.
func (c *conn) send(d Dir, data string) Verdict {
	v := c.m.Segment(c.k, d, c.seq[d], ACK, []byte(data), t0)
	c.seq[d] += uint32(len(data))
	return v
}

func TestSignatureAcrossSegments(t *testing.T) {
	for _, parts := range [][]string{
		{"GET /" + sig + " HTTP/1.0"},
		{"GET /EVIL-", "PAYLOAD HTTP/1.0"},
		{"GET /EV", "IL-PAY", "LOAD"},
		{"E", "V", "I", "L", "-", "P", "A", "Y", "L", "O", "A", "D"},
	} {
		t.Run(strings.Join(parts, "|"), func(t *testing.T) {
			m := newModule(t, nil)
			c := open(t, m, key, 1000)
			for i, p := range parts {
				want := Pass
				if i == len(parts)-1 {
					want = DropDetected
				}
				if v := c.send(ToServer, p); v != want {
					t.Fatalf("segment %d %q: %v, want %v", i, p, v, want)
				}
			}
			// The verdict is cached: the flow is dropped both ways from now on.
			if v := c.send(ToClient, "HTTP/1.0 200 OK"); v != DropDetected {
				t.Fatalf("reply after detection: %v", v)
			}
			if s := m.Stats(); s.Detected != 1 || s.DetectedDrops != 2 || s.DetectedSignatures["evil"] != 1 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestCleanFlowPasses(t *testing.T) {
	m := newModule(t, nil)
	c := open(t, m, key, 1000)
	// Halves of the signature in different directions are no signature.
	for _, s := range []struct {
		d    Dir
		data string
	}{{ToServer, "EVIL-"}, {ToClient, "PAYLOAD"}, {ToServer, "PAYLOAX"}} {
		if v := c.send(s.d, s.data); v != Pass {
			t.Fatalf("%q: %v", s.data, v)
		}
	}
}

func TestOutOfOrder(t *testing.T) {
	m := newModule(t, nil)
	c := open(t, m, key, 1000)
	base := c.seq[ToServer]
	// The second half arrives first: held, passed.
	if v := m.Segment(key, ToServer, base+5, ACK, []byte("PAYLOAD"), t0); v != Pass {
		t.Fatalf("out-of-order half: %v", v)
	}
	if s := m.Stats(); s.OutOfOrder != 1 || s.Buffered != 7 {
		t.Fatalf("after holding: %+v", s)
	}
	// The gap filler completes the signature: dropped.
	if v := m.Segment(key, ToServer, base, ACK, []byte("EVIL-"), t0); v != DropDetected {
		t.Fatalf("gap filler: %v", v)
	}
	if s := m.Stats(); s.Buffered != 0 {
		t.Fatalf("buffer not released: %d", s.Buffered)
	}
}

func TestOutOfOrderClean(t *testing.T) {
	m := newModule(t, nil)
	c := open(t, m, key, 1000)
	base := c.seq[ToServer]
	m.Segment(key, ToServer, base+10, ACK, []byte("cccc"), t0)
	m.Segment(key, ToServer, base+5, ACK, []byte("bbbbb"), t0)
	m.Segment(key, ToServer, base+5, ACK, []byte("bbbbb"), t0) // duplicate while held
	if v := m.Segment(key, ToServer, base, ACK, []byte("aaaaa"), t0); v != Pass {
		t.Fatalf("gap filler: %v", v)
	}
	// All 14 bytes are in order now: the next in-order byte is base+14.
	c.seq[ToServer] = base + 14
	if v := c.send(ToServer, sig); v != DropDetected {
		t.Fatalf("after the drain the stream position is wrong: %v", v)
	}
	if s := m.Stats(); s.OutOfOrder != 2 || s.Retransmits != 1 || s.Bytes != 14+uint64(len(sig)) {
		t.Fatalf("stats %+v", s)
	}
}

func TestRetransmits(t *testing.T) {
	m := newModule(t, nil)
	c := open(t, m, key, 1000)
	base := c.seq[ToServer]
	c.send(ToServer, "hello EVIL-")
	// A full retransmission is not inspected again (nor counted twice).
	if v := m.Segment(key, ToServer, base, ACK, []byte("hello EVIL-"), t0); v != Pass {
		t.Fatalf("retransmission: %v", v)
	}
	// An overlapping one: only its new bytes are inspected, and they
	// complete the signature.
	if v := m.Segment(key, ToServer, base+6, ACK, []byte("EVIL-PAYLOAD"), t0); v != DropDetected {
		t.Fatalf("overlap: %v", v)
	}
	if s := m.Stats(); s.Retransmits != 2 || s.Bytes != 11+7 {
		t.Fatalf("stats %+v", s)
	}
}

func TestSequenceWrap(t *testing.T) {
	m := newModule(t, nil)
	c := open(t, m, key, 0xffff_fffa) // the data straddles 2^32
	if c.send(ToServer, "EVIL-") != Pass || c.send(ToServer, "PAYLOAD") != DropDetected {
		t.Fatal("signature across the sequence wrap missed")
	}
}

func TestMidStream(t *testing.T) {
	for _, mode := range []FailMode{FailOpen, FailClose} {
		t.Run(mode.String(), func(t *testing.T) {
			m := newModule(t, func(c *Config) { c.FailMode = mode })
			want := Pass
			if mode == FailClose {
				want = DropFailClose
			}
			// A flow that started before this module saw it, e.g. on the
			// old active: its first segment here is mid-stream data.
			for i, data := range []string{"PAYLOAD", "more", "EVIL-PAYLOAD"} {
				if v := m.Segment(key, ToServer, 5000+uint32(i*100), ACK, []byte(data), t0); v != want {
					t.Fatalf("segment %d: %v, want %v", i, v, want)
				}
			}
			s := m.Stats()
			if s.UninspectedFlows != 1 || s.UninspectedPackets != 3 || s.Detected != 0 || s.Bytes != 0 {
				t.Fatalf("stats %+v", s)
			}
			if mode == FailClose && s.FailCloseDrops != 3 || mode == FailOpen && s.FailCloseDrops != 0 {
				t.Fatalf("fail-close drops %d", s.FailCloseDrops)
			}
		})
	}
}

func TestDown(t *testing.T) {
	m := newModule(t, func(c *Config) { c.FailMode = FailClose })
	c := open(t, m, key, 1000)
	m.SetUp(false)
	if v := c.send(ToServer, "data"); v != DropFailClose {
		t.Fatalf("while down: %v", v)
	}
	if s := m.Stats(); s.Up || s.UninspectedPackets != 1 || s.FailCloseDrops != 1 {
		t.Fatalf("stats %+v", s)
	}
	m.SetUp(true)
	// The 4 bytes sent while down were never seen: the flow's next bytes
	// are out of order until they are retransmitted.
	c.seq[ToServer] -= 4
	if v := c.send(ToServer, "data"); v != Pass {
		t.Fatalf("after coming up: %v", v)
	}
}

func TestFlowsBounded(t *testing.T) {
	m := newModule(t, func(c *Config) { c.MaxFlows = 64 })
	k := key
	for i := range 10000 {
		k.ClientPort = uint16(i)
		k.Client[3] = byte(i >> 8)
		m.Segment(k, ToServer, 1, SYN, nil, t0)
	}
	s := m.Stats()
	if s.Flows > 64 || s.Flows+int(s.Evicted) != 10000 {
		t.Fatalf("flows %d, evicted %d", s.Flows, s.Evicted)
	}
	// The most recent flow survives, and an evicted one is mid-stream now.
	if v := m.Segment(k, ToServer, 2, ACK, []byte("x"), t0); v != Pass || m.Stats().UninspectedFlows != 0 {
		t.Fatal("the newest flow was evicted")
	}
}

func TestBufferBounded(t *testing.T) {
	m := newModule(t, func(c *Config) { c.Window = 1000; c.MaxBuffered = 16 * 1500 })
	c := open(t, m, key, 1000)
	base := c.seq[ToServer]
	seg := bytes.Repeat([]byte("z"), 300)
	var drops int
	for i := 1; i <= 10; i++ {
		if m.Segment(key, ToServer, base+uint32(i*300), ACK, seg, t0) == DropBufferFull {
			drops++
		}
	}
	if s := m.Stats(); s.Buffered > 1000 || drops == 0 || s.BufferFullDrops != uint64(drops) {
		t.Fatalf("buffered %d, drops %d, stats %+v", s.Buffered, drops, s)
	}
	// Many flows each within their window still meet the module's budget.
	k := key
	for i := range 100 {
		k.ClientPort = uint16(i + 1)
		cc := open(t, m, k, 1)
		m.Segment(k, ToServer, cc.seq[ToServer]+10, ACK, seg, t0)
	}
	if s := m.Stats(); s.Buffered > 16*1500 {
		t.Fatalf("buffered %d beyond the budget", s.Buffered)
	}
}

func TestExpire(t *testing.T) {
	m := newModule(t, nil)
	c := open(t, m, key, 1000)
	k2 := key
	k2.ClientPort++
	c2 := open(t, m, k2, 1)
	c2.m.Segment(k2, ToServer, c2.seq[ToServer], RST|ACK, nil, t0)
	if n := m.Expire(t0.Add(10 * time.Second)); n != 1 {
		t.Fatalf("expired %d at 10s, want the reset flow only", n)
	}
	c.send(ToServer, "keepalive")
	if n := m.Expire(t0.Add(time.Hour)); n != 1 || m.Stats().Flows != 0 {
		t.Fatalf("expired %d at 1h", n)
	}
}

func TestEstablishedSegmentAllocatesNothing(t *testing.T) {
	m := newModule(t, nil)
	c := open(t, m, key, 1000)
	data := []byte("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
	seq := c.seq[ToServer]
	if a := testing.AllocsPerRun(1000, func() {
		if m.Segment(key, ToServer, seq, ACK, data, t0) != Pass {
			t.Fatal("not passed")
		}
		seq += uint32(len(data))
	}); a != 0 {
		t.Fatalf("an in-order segment allocates %v", a)
	}
}

func TestShow(t *testing.T) {
	m := newModule(t, func(c *Config) { c.FailMode = FailClose })
	c := open(t, m, key, 1000)
	c.send(ToServer, sig)
	m.Segment(FlowKey{ClientPort: 9}, ToServer, 1, ACK, []byte("mid"), t0)
	var b strings.Builder
	if err := m.Show(&b, Unit{Name: "fw-a", Model: "falab", Version: "1.0"}); err != nil {
		t.Fatal(err)
	}
	want := `Mod  Card Type                                    Model              Serial No.
---- -------------------------------------------- ------------------ -----------
   1 falab firewall unit fw-a                     falab              fw-a
 ips falab Inspection Module (signature engine)   falab-ips          fw-a-ips

Mod  SSM Application Name           Status           SSM Application Version
---- ------------------------------ ---------------- --------------------------
 ips falab ips                      Up               1.0

Mod  Status             Data Plane Status     Compatibility
---- ------------------ --------------------- -------------
   1 Up Sys             Not Applicable
 ips Up                 Up

Module ips on fw-a: fail-close, 2 signatures
  flows 2 (most 2), out-of-order bytes held 0
  packets 5, bytes inspected 12
  detected flows 1, drops 1
  uninspected flows 1, packets 1, fail-close drops 1
  retransmits 0, out of order 0, reassembly-full drops 0
  flows evicted 0, expired 0, closed 0
`
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Fatalf("show module (-want +got):\n%s", d)
	}
	m.SetUp(false)
	b.Reset()
	m.Show(&b, Unit{Name: "fw-a", Model: "falab", Version: "1.0"})
	if !strings.Contains(b.String(), " ips Down               Down") {
		t.Fatalf("down module:\n%s", b.String())
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := New(Config{Signatures: []Signature{{Name: "empty"}}}); err == nil {
		t.Error("an empty signature was accepted")
	}
	if _, err := New(Config{Signatures: []Signature{{Name: "huge", Pattern: make([]byte, MaxPatternBytes+1)}}}); err == nil {
		t.Error("signatures beyond MaxPatternBytes were accepted")
	}
}

func TestKeyReuse(t *testing.T) {
	m := newModule(t, nil)
	c := open(t, m, key, 1000)
	if c.send(ToServer, sig) != DropDetected {
		t.Fatal("not detected")
	}
	// A retransmitted SYN of the detected flow does not clear its verdict...
	if v := m.Segment(key, ToServer, 1000, SYN, nil, t0); v != DropDetected {
		t.Fatalf("retransmitted SYN: %v", v)
	}
	// ...but a new connection on the same ports starts clean.
	c = open(t, m, key, 50000)
	if v := c.send(ToServer, "hello"); v != Pass {
		t.Fatalf("new connection on a reused key: %v", v)
	}
	if s := m.Stats(); s.Flows != 1 {
		t.Fatalf("%d flows", s.Flows)
	}
}

func BenchmarkSegmentInOrder(b *testing.B) {
	m := newModule(b, nil)
	c := open(b, m, key, 1000)
	data := bytes.Repeat([]byte("GET /index.html "), 1400/16)
	seq := c.seq[ToServer]
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		m.Segment(key, ToServer, seq, ACK, data, t0)
		seq += uint32(len(data))
	}
}
