package unit

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/failover"
	"github.com/falab/falab/replicate"
)

func testKey(b byte) replicate.Key {
	var k replicate.Key
	for i := range k {
		k[i] = b
	}
	return k
}

// clock is a manual clock for sealers and openers.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func sealerAt(key replicate.Key, purpose string, c *clock) *sealer {
	s := newSealer(key, purpose)
	s.now = c.now
	return s
}

func openerAt(key replicate.Key, purpose string, c *clock) *opener {
	o := newOpener(key, purpose)
	o.now = c.now
	return o
}

func TestSealOpen(t *testing.T) {
	c := newClock()
	k := testKey(1)
	msg := sealerAt(k, "hello", c).seal([]byte("payload"))
	got, r := openerAt(k, "hello", c).open(&window{}, msg)
	if r != accepted || string(got) != "payload" {
		t.Fatalf("open = %q, %v", got, r)
	}
	if _, r := openerAt(testKey(2), "hello", c).open(&window{}, msg); r != rejectAuth {
		t.Errorf("wrong key: %v, want bad auth", r)
	}
	if _, r := openerAt(k, "probe", c).open(&window{}, msg); r != rejectAuth {
		t.Errorf("a hello opened as a probe: %v, want bad auth (purposes must not mix)", r)
	}
	for _, i := range []int{8, 16, sealHeaderLen + 1, len(msg) - 1} {
		bad := append([]byte(nil), msg...)
		bad[i] ^= 1
		if _, r := openerAt(k, "hello", c).open(&window{}, bad); r != rejectAuth {
			t.Errorf("byte %d changed: %v, want bad auth", i, r)
		}
	}
	for n := 0; n < len(msg); n++ {
		if _, r := openerAt(k, "hello", c).open(&window{}, msg[:n]); r == accepted {
			t.Errorf("opened a message cut to %d bytes", n)
		}
	}
}

func TestOpenStale(t *testing.T) {
	c := newClock()
	k := testKey(1)
	s, o := sealerAt(k, "hello", c), openerAt(k, "hello", c)
	var w window
	old := s.seal([]byte("a"))
	c.advance(maxSealAge + time.Millisecond)
	if _, r := o.open(&w, old); r != rejectStale {
		t.Errorf("a hello %v old: %v, want stale", maxSealAge+time.Millisecond, r)
	}
	c.advance(-2 * (maxSealAge + time.Millisecond))
	if _, r := o.open(&w, old); r != rejectStale {
		t.Errorf("a hello from %v ahead: %v, want stale", maxSealAge+time.Millisecond, r)
	}
	if o.macs.Load() != 0 {
		t.Errorf("stale hellos cost %d HMACs, want 0", o.macs.Load())
	}
}

// TestOpenReplay: within the timestamp's tolerance, only a message newer
// than the last accepted one opens; a restarted peer's new epoch is taken,
// and its old epoch is dead.
func TestOpenReplay(t *testing.T) {
	c := newClock()
	k := testKey(1)
	before := sealerAt(k, "hello", c)
	o := openerAt(k, "hello", c)
	var w window
	open := func(msg []byte) rejectReason { _, r := o.open(&w, msg); return r }

	a1 := before.seal([]byte("1"))
	c.advance(10 * time.Millisecond)
	a2 := before.seal([]byte("2"))
	c.advance(10 * time.Millisecond)
	a3 := before.seal([]byte("3")) // recorded, never delivered
	if r := open(a1); r != accepted {
		t.Fatalf("first hello: %v", r)
	}
	macs := o.macs.Load()
	if r := open(a1); r != rejectReplay {
		t.Errorf("the same hello twice: %v, want replay", r)
	}
	if o.macs.Load() != macs {
		t.Error("a replay of the current epoch cost an HMAC")
	}
	if r := open(a2); r != accepted {
		t.Fatalf("next hello: %v", r)
	}
	if r := open(a1); r != rejectReplay {
		t.Errorf("an older sequence: %v, want replay", r)
	}

	c.advance(10 * time.Millisecond)
	after := sealerAt(k, "hello", c) // the peer restarted: a new epoch
	if after.epoch == before.epoch {
		t.Fatal("two boots drew the same epoch")
	}
	b1 := after.seal([]byte("b1"))
	if r := open(b1); r != accepted {
		t.Fatalf("a new epoch with a newer timestamp: %v, want accepted", r)
	}
	if r := open(a3); r != rejectReplay {
		t.Errorf("the old epoch's unseen hello (higher sequence, fresh): %v, want replay", r)
	}
	c.advance(10 * time.Millisecond)
	if r := open(before.seal([]byte("4"))); r != rejectReplay {
		t.Errorf("the old epoch, even timestamped after the restart: %v, want replay (it is dead)", r)
	}
	if r := open(after.seal([]byte("b2"))); r != accepted {
		t.Errorf("the new epoch goes on: %v", r)
	}

	// An epoch whose first message is no newer than what the current epoch
	// already said is a recording, not a restart.
	other := sealerAt(k, "hello", c)
	c.advance(-5 * time.Millisecond)
	if r := open(other.seal([]byte("x"))); r != rejectReplay {
		t.Errorf("a new epoch with an older timestamp: %v, want replay", r)
	}
}

func FuzzOpen(f *testing.F) {
	k := testKey(3)
	f.Add(newSealer(k, "probe").seal(probeBody(probeAsk, 1, "fw-a", false, failover.StandbyReady)))
	f.Add([]byte{})
	o := newOpener(k, "probe")
	f.Fuzz(func(t *testing.T, b []byte) {
		var w window
		if body, r := o.open(&w, b); r == accepted && len(body) > len(b) {
			t.Fatal("body longer than message")
		}
	})
}

func newTestUnit(t *testing.T, name, peer string, key replicate.Key) *Unit {
	t.Helper()
	cfg := testConfig(false)
	cfg.Name, cfg.Peer = name, peer
	cfg.LocalAddr, cfg.PeerAddr = netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1")
	u, err := New(cfg, key, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Source MACs of the interface hello tests: the peer's burned-in MAC
// (not configured, learnt from its first authenticated hello) and a host's.
var (
	peerUnitMAC = [6]byte{0x02, 0xfb, 0, 0, 0, 2}
	hostMAC     = [6]byte{0x02, 0x11, 0, 0, 0, 0x11}
)

// TestProbeRateLimit: a genuine probe round passes its source's bucket; a
// flood from a host is capped before any HMAC, at the bucket's size, and
// leaves the peer's own bucket alone: a genuine round passes in the middle
// of the flood.
func TestProbeRateLimit(t *testing.T) {
	c := newClock()
	a := newTestUnit(t, "fw-a", "fw-b", testKey(7))
	b := newTestUnit(t, "fw-b", "fw-a", testKey(7))
	a.probes.in.now, b.probes.out.now = c.now, c.now
	in := a.probes

	// A round at the defaults: an ask every 1 ms for 5 ms, per interface,
	// and the answers to ours.
	round := func(kind byte) {
		t.Helper()
		for i := range 6 {
			for _, iface := range []string{"inside", "outside"} {
				msg := b.probes.out.seal(probeBody(kind, uint64(i+1), "fw-b", false, failover.StandbyReady))
				if body, r := in.check(iface, peerUnitMAC, msg, c.now()); r != accepted || body == nil {
					t.Fatalf("genuine hello %d on %s: %v", i, iface, r)
				}
			}
			c.advance(time.Millisecond)
		}
	}
	round(probeAsk)
	round(probeAnswer)

	// A flood, all in one instant, on one interface: junk under a wrong
	// key but with the peer's name. handle counts the refusals.
	c.advance(time.Second) // a full bucket
	in.now = c.now
	forger := sealerAt(testKey(9), "probe", c)
	macs := in.in.macs.Load()
	const flood = 10000
	for range flood {
		in.handle("inside", hostMAC, forger.seal(probeBody(probeAnswer, 1, "fw-b", false, failover.StandbyReady)))
	}
	if got := in.in.macs.Load() - macs; got > probeBurst {
		t.Errorf("a flood of %d frames computed %d HMACs, want at most the burst (%d)", flood, got, probeBurst)
	}
	got := in.rejects.counts()
	if want := (api.RejectCounts{BadAuth: probeBurst, RateLimited: flood - probeBurst}); got != want {
		t.Errorf("rejects %+v, want %+v", got, want)
	}
	// The flood's frames cost the data plane's reader no allocation.
	junk := forger.seal(probeBody(probeAnswer, 1, "fw-b", false, failover.StandbyReady))
	if n := testing.AllocsPerRun(1000, func() { in.handle("inside", hostMAC, junk) }); n != 0 {
		t.Errorf("a rate-limited interface hello allocates %v times", n)
	}
	// The strangers' bucket is dry, even for a hello that would open, but
	// the peer's MAC has its own: a genuine round passes in the same
	// instant as the flood.
	if _, r := in.check("inside", hostMAC, b.probes.out.seal(probeBody(probeAsk, 9, "fw-b", false, failover.StandbyReady)), c.now()); r != rejectRateLimited {
		t.Errorf("a host's hello during the flood: %v, want rate-limited", r)
	}
	round(probeAsk)
	// A forged hello that fails the seal teaches nothing: its source
	// stays a stranger.
	c.advance(time.Second)
	if _, r := in.check("inside", hostMAC, forger.seal(probeBody(probeAsk, 1, "fw-b", false, failover.StandbyReady)), c.now()); r != rejectAuth {
		t.Errorf("a forged hello: %v, want bad auth", r)
	}
	if in.limits["inside"].knows(hostMAC) || !in.limits["inside"].knows(peerUnitMAC) {
		t.Errorf("trusted sources: the host's MAC learnt or the peer's not")
	}
	// Cheap refusals: foreign names, bad lengths, own hellos.
	for _, tc := range []struct {
		name string
		msg  []byte
		want rejectReason
	}{
		{"short", []byte{1, 2, 3}, rejectMalformed},
		{"another sender", b.probes.out.seal(probeBody(probeAsk, 1, "host", false, failover.StandbyReady)), rejectMalformed},
		{"trailing bytes", append(b.probes.out.seal(probeBody(probeAsk, 1, "fw-b", false, failover.StandbyReady)), 0), rejectMalformed},
		{"bad kind", b.probes.out.seal(probeBody(9, 1, "fw-b", false, failover.StandbyReady)), rejectMalformed},
		{"own", a.probes.out.seal(probeBody(probeAsk, 1, "fw-a", false, failover.StandbyReady)), accepted},
	} {
		if _, r := in.check("inside", peerUnitMAC, tc.msg, c.now()); r != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, r, tc.want)
		}
	}
	if _, r := in.check("nosuch", peerUnitMAC, b.probes.out.seal(probeBody(probeAsk, 1, "fw-b", false, failover.StandbyReady)), c.now()); r != rejectMalformed {
		t.Errorf("unknown interface: %v", r)
	}
}

// TestProbeReplay: a peer's interface hello replayed on the same interface
// is refused; each interface has its own stream.
func TestProbeReplay(t *testing.T) {
	a := newTestUnit(t, "fw-a", "fw-b", testKey(7))
	b := newTestUnit(t, "fw-b", "fw-a", testKey(7))
	msg := b.probes.out.seal(probeBody(probeAnswer, 5, "fw-b", false, failover.StandbyReady))
	if _, r := a.probes.check("inside", peerUnitMAC, msg, time.Now()); r != accepted {
		t.Fatalf("first: %v", r)
	}
	if _, r := a.probes.check("inside", peerUnitMAC, msg, time.Now()); r != rejectReplay {
		t.Errorf("replayed: %v, want replay", r)
	}
}

// TestHelloPortCheck: the peer's port-check datagrams are counted as
// such, not as authentication failures; hellos still arrive.
func TestHelloPortCheck(t *testing.T) {
	a := newTestUnit(t, "fw-a", "fw-b", testKey(7))
	b := newTestUnit(t, "fw-b", "fw-a", testKey(7))
	peer := a.cfg.PeerAddr
	if _, r := a.checkHello(peer, portCheckMagic); r != rejectPortCheck {
		t.Errorf("port check from the peer: %v", r)
	}
	if _, r := a.checkHello(netip.MustParseAddr("127.0.0.9"), portCheckMagic); r != rejectMalformed {
		t.Errorf("port check from elsewhere: %v", r)
	}

	// The whole read loop, on a loopback socket.
	hc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Skip("no loopback UDP:", err)
	}
	a.helloConn = hc
	done := make(chan struct{})
	go func() { a.readHellos(t.Context()); close(done) }()
	defer func() { hc.Close(); <-done }()
	c, err := net.DialUDP("udp4", nil, hc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hello, err := failover.Hello{Role: failover.Secondary, State: failover.StandbyReady}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.Write(portCheckMagic)
	}
	c.Write(make([]byte, 32)) // junk, shorter than any hello
	c.Write(b.helloOut.seal(hello))
	select {
	case <-a.evq.wake:
		evs := a.evq.take()
		if len(evs) != 1 {
			t.Fatalf("events %v", evs)
		}
		if _, ok := evs[0].(failover.HelloReceived); !ok {
			t.Fatalf("event %T", evs[0])
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no hello fed to the machine; rejects %+v", a.helloRejects.counts())
	}
	got := a.helloRejects.counts()
	if got != (api.RejectCounts{PortCheck: 3, Malformed: 1}) {
		t.Errorf("rejects %+v, want 3 port checks and 1 malformed", got)
	}
	if st := a.Status().HelloRejects.FailoverLink; st != got {
		t.Errorf("status shows %+v", st)
	}
}

// TestOpenOlderThanTheWindowAllows: a window with its own maxAge (the
// failover link's: the unit hold) refuses a hello older than that, which
// the default tolerance would take.
func TestOpenOlderThanTheWindowAllows(t *testing.T) {
	c := newClock()
	k := testKey(1)
	s, o := sealerAt(k, "hello", c), openerAt(k, "hello", c)
	w := window{maxAge: 100 * time.Millisecond}
	late := s.seal([]byte("negotiation"))
	c.advance(312 * time.Millisecond)
	if _, r := o.open(&w, late); r != rejectStale {
		t.Errorf("a hello 312 ms old on a 100 ms window: %v, want stale", r)
	}
	fresh := s.seal([]byte("active"))
	c.advance(99 * time.Millisecond)
	if _, r := o.open(&w, fresh); r != accepted {
		t.Errorf("a hello 99 ms old: %v, want accepted", r)
	}
	var def window
	old := s.seal([]byte("x"))
	c.advance(time.Second)
	if _, r := o.open(&def, old); r != accepted {
		t.Errorf("a hello 1 s old on a default window: %v, want accepted (maxSealAge %v)", r, maxSealAge)
	}
}

// TestHelloWindowIsTheHold: a unit refuses failover-link hellos older than
// its unit hold.
func TestHelloWindowIsTheHold(t *testing.T) {
	u := newTestUnit(t, "fw-a", "fw-b", testKey(1))
	if u.helloWindow.maxAge != u.cfg.UnitHold || u.cfg.UnitHold <= 0 {
		t.Errorf("hello window max age %v, unit hold %v", u.helloWindow.maxAge, u.cfg.UnitHold)
	}
}

// TestProbeRoleByte: an interface hello's role byte carries the active bit
// and the failover state, and reads back the same; a byte without a state
// (or with one out of range) says not known.
func TestProbeRoleByte(t *testing.T) {
	for _, active := range []bool{false, true} {
		for s := failover.Disabled; s.Valid(); s++ {
			body := probeBody(probeAnswer, 7, "fw-a", active, s)
			gotActive, gotState, known := parseRole(body[len(body)-1])
			if gotActive != active || gotState != s || !known {
				t.Errorf("active %v state %v: read back %v %v known %v", active, s, gotActive, gotState, known)
			}
		}
	}
	for _, b := range []byte{0, 1, 0xff} {
		if _, _, known := parseRole(b); known {
			t.Errorf("role byte %#x: a state known", b)
		}
	}
}
