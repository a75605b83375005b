package ctiqbe

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	testConn = ConnKey{Phone: phoneAddr, PhonePort: 40000, Manager: managerAddr, ManagerPort: Port}
	t0       = time.Unix(1_700_000_000, 0)
)

// wire feeds an engine one connection's two byte streams, keeping each
// direction's TCP sequence number as a sender would.
type wire struct {
	t    testing.TB
	e    *Engine
	conn ConnKey
	seq  [2]uint32 // next sequence number: 0 from the phone, 1 from the manager
	now  time.Time
}

func newWire(t testing.TB, e *Engine) *wire {
	return &wire{t: t, e: e, conn: testConn, seq: [2]uint32{1000, 5000}, now: t0}
}

func enc(t testing.TB, ms ...Message) []byte {
	t.Helper()
	var b []byte
	for _, m := range ms {
		var err error
		if b, err = m.AppendBinary(b); err != nil {
			t.Fatalf("encoding %+v: %v", m, err)
		}
	}
	return b
}

func dirOf(fromPhone bool) int {
	if fromPhone {
		return 0
	}
	return 1
}

// segment sends payload as one segment at the current sequence number and
// advances it if the engine let it pass (a dropped segment is
// retransmitted by TCP with the same sequence number).
func (w *wire) segment(fromPhone bool, payload []byte) Result {
	d := dirOf(fromPhone)
	var r Result
	w.e.Inspect(&Packet{Conn: w.conn, FromPhone: fromPhone, Seq: w.seq[d], Payload: payload, Now: w.now}, &r)
	if !r.Drop {
		w.seq[d] += uint32(len(payload))
	}
	return r
}

// send sends messages as one segment and fails the test if it is dropped.
func (w *wire) send(fromPhone bool, ms ...Message) Result {
	w.t.Helper()
	r := w.segment(fromPhone, enc(w.t, ms...))
	if r.Drop {
		w.t.Fatalf("%v dropped: %s", ms[0].Type, r.Reason)
	}
	return r
}

var (
	mRegister    = Message{Type: TypeRegister, TxID: 1, Device: "SEP-falab"}
	mRegisterAck = Message{Type: TypeRegisterAck, TxID: 1, DeviceID: 27, Heartbeat: 120}
	mMakeCall    = Message{Type: TypeMakeCall, TxID: 2, Number: "1000", MediaAddr: phoneAddr, MediaPort: 26822}
	mCallSetup   = Message{Type: TypeCallSetup, TxID: 2, CallID: 7, MediaAddr: managerAddr, MediaPort: 16384}
	mSetupAck    = Message{Type: TypeCallSetupAck, TxID: 3, CallID: 7}
	mHeartbeat   = Message{Type: TypeHeartbeat, TxID: 4}
	mHeartbeatOK = Message{Type: TypeHeartbeatAck, TxID: 4}
	mHangUp      = Message{Type: TypeHangUp, TxID: 5, CallID: 7}
	mHangUpAck   = Message{Type: TypeHangUpAck, TxID: 5, CallID: 7}
	mUnregister  = Message{Type: TypeUnregister, TxID: 6}
)

// The pinholes of the sample call.
var (
	toPhoneAny = []Pinhole{
		{Proto: ProtoUDP, Dst: phoneAddr, DstPort: 26822, Timeout: DefaultPinholeTimeout},
		{Proto: ProtoUDP, Dst: phoneAddr, DstPort: 26823, Timeout: DefaultPinholeTimeout},
	}
	callPinholes = []Pinhole{
		{Proto: ProtoUDP, Src: phoneAddr, Dst: managerAddr, DstPort: 16384, Timeout: DefaultPinholeTimeout},
		{Proto: ProtoUDP, Src: phoneAddr, Dst: managerAddr, DstPort: 16385, Timeout: DefaultPinholeTimeout},
		{Proto: ProtoUDP, Src: managerAddr, Dst: phoneAddr, DstPort: 26822, Timeout: DefaultPinholeTimeout},
		{Proto: ProtoUDP, Src: managerAddr, Dst: phoneAddr, DstPort: 26823, Timeout: DefaultPinholeTimeout},
	}
)

// setUpCall registers the phone and sets up call 7.
func setUpCall(w *wire) {
	w.send(true, mRegister)
	w.send(false, mRegisterAck)
	w.send(true, mMakeCall)
	w.send(false, mCallSetup)
	w.send(true, mSetupAck)
}

func TestEngineFullCall(t *testing.T) {
	e := NewEngine(Config{})
	w := newWire(t, e)
	w.send(true, mRegister)
	if s := e.Sessions(); len(s) != 1 || s[0].State != 0 || s[0].Device != "SEP-falab" {
		t.Fatalf("after Register: %+v", s)
	}
	w.send(false, mRegisterAck)
	w.send(true, mHeartbeat)
	w.send(false, mHeartbeatOK)
	if r := w.send(true, mMakeCall); !cmp.Equal(r.Open, toPhoneAny) || len(r.Close) != 0 {
		t.Errorf("MakeCall opened %v closed %v; want %v", r.Open, r.Close, toPhoneAny)
	}
	if r := w.send(false, mCallSetup); !cmp.Equal(r.Open, callPinholes) {
		t.Errorf("CallSetup opened (-want +got):\n%s", cmp.Diff(callPinholes, r.Open))
	}
	w.send(true, mSetupAck)
	want := []SessionInfo{{Conn: testConn, Device: "SEP-falab", DeviceID: 27, State: 2, Heartbeat: 120,
		Calls: []CallInfo{{CallID: 7, Phone: phoneAddr, Remote: managerAddr, PhonePort: 26822, RemotePort: 16384}}}}
	if diff := cmp.Diff(want, e.Sessions()); diff != "" {
		t.Errorf("in the call (-want +got):\n%s", diff)
	}
	r := w.send(true, mHangUp)
	if wantClose := append(append([]Pinhole{}, toPhoneAny...), callPinholes...); !cmp.Equal(r.Close, wantClose) || len(r.Open) != 0 {
		t.Errorf("HangUp closed (-want +got):\n%s", cmp.Diff(wantClose, r.Close))
	}
	if r := w.send(false, mHangUpAck); len(r.Close) != 0 {
		t.Errorf("HangUpAck closed again: %v", r.Close)
	}
	if s := e.Sessions(); len(s) != 1 || s[0].State != 1 || len(s[0].Calls) != 0 {
		t.Errorf("after the hang-up: %+v", s)
	}
	w.send(true, mUnregister)
	if s := e.Sessions(); len(s) != 0 {
		t.Errorf("after Unregister: %+v", s)
	}
	if c := e.Counters(); c != (Counters{Messages: 10}) {
		t.Errorf("counters = %+v, want 10 messages and no drops", c)
	}
}

// TestEngineFraming delivers the same conversation with its segments cut
// at arbitrary points (messages spanning segments, several per segment)
// and wants the same pinholes and session table as unsplit.
func TestEngineFraming(t *testing.T) {
	type run struct {
		fromPhone bool
		ms        []Message
	}
	convo := []run{
		{true, []Message{mRegister}}, {false, []Message{mRegisterAck}},
		{true, []Message{mHeartbeat, mMakeCall}}, {false, []Message{mHeartbeatOK, mCallSetup}},
		{true, []Message{mSetupAck, mHeartbeat, mHangUp}}, {false, []Message{mHeartbeatOK, mHangUpAck}},
	}
	play := func(t *testing.T, cut func(n int) []int) (Result, []SessionInfo) {
		e := NewEngine(Config{})
		w := newWire(t, e)
		var all Result
		for _, r := range convo {
			b := enc(t, r.ms...)
			prev := 0
			for _, at := range append(cut(len(b)), len(b)) {
				got := w.segment(r.fromPhone, b[prev:at])
				if got.Drop {
					t.Fatalf("segment [%d:%d] of %v dropped: %s", prev, at, r.ms, got.Reason)
				}
				all.Open, all.Close = append(all.Open, got.Open...), append(all.Close, got.Close...)
				prev = at
			}
		}
		if c := e.Counters(); c.Messages != 11 {
			t.Fatalf("counted %d messages, want 11", c.Messages)
		}
		return all, e.Sessions()
	}
	wantR, wantS := play(t, func(int) []int { return nil })
	check := func(t *testing.T, cut func(n int) []int) {
		t.Helper()
		r, s := play(t, cut)
		if !cmp.Equal(r, wantR) || !cmp.Equal(s, wantS) {
			t.Errorf("split delivery differs:\n%s\n%s", cmp.Diff(wantR, r), cmp.Diff(wantS, s))
		}
	}
	for k := 1; k < 60; k++ { // every single cut point
		check(t, func(n int) []int {
			if k < n {
				return []int{k}
			}
			return nil
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		check(t, func(n int) []int {
			var cuts []int
			for at := 1 + rng.IntN(5); at < n; at += 1 + rng.IntN(9) {
				cuts = append(cuts, at)
			}
			return cuts
		})
	}
	check(t, func(n int) []int { // one byte per segment
		cuts := make([]int, 0, n)
		for at := 1; at < n; at++ {
			cuts = append(cuts, at)
		}
		return cuts
	})
}

// snapshot is the engine's whole state, for no-change checks.
func snapshot(e *Engine) map[ConnKey]connState {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := make(map[ConnKey]connState, len(e.conns))
	for k, c := range e.conns {
		m[k] = *c
	}
	return m
}

// TestEngineNoSession is the mission's story on the new active unit: the
// connection arrives mid-stream, with no session record, and the hang-up
// is dropped and counted, as is its retransmission.
func TestEngineNoSession(t *testing.T) {
	e := NewEngine(Config{})
	w := newWire(t, e)
	w.seq = [2]uint32{123456, 654321} // mid-stream
	for i := range 2 {
		r := w.segment(true, enc(t, mHangUp))
		if !r.Drop || r.Reason != ReasonNoSession || r.Reason.String() != "ctiqbe-no-session" {
			t.Fatalf("HangUp without a session: %+v, want dropped as ctiqbe-no-session", r)
		}
		if c := e.Counters(); c.NoSession != uint64(i+1) {
			t.Errorf("no-session count = %d, want %d", c.NoSession, i+1)
		}
	}
	for _, m := range []Message{mHeartbeat, mMakeCall, mSetupAck, mUnregister} {
		if r := w.segment(true, enc(t, m)); r.Reason != ReasonNoSession {
			t.Errorf("%s without a session: %+v", m.Type, r)
		}
	}
	if r := w.segment(false, enc(t, mCallSetup)); r.Reason != ReasonNoSession {
		t.Errorf("CallSetup without a session: %+v", r)
	}
	if len(snapshot(e)) != 0 {
		t.Errorf("drops left state: %+v", snapshot(e))
	}

	// With a session, a call id it does not know, and a CallSetup with
	// no MakeCall, have no record either.
	w2 := newWire(t, e)
	w2.send(true, mRegister)
	w2.send(false, mRegisterAck)
	before := snapshot(e)
	if r := w2.segment(false, enc(t, mCallSetup)); r.Reason != ReasonNoSession {
		t.Errorf("CallSetup with no MakeCall: %+v", r)
	}
	if r := w2.segment(true, enc(t, mHangUp)); r.Reason != ReasonNoSession {
		t.Errorf("HangUp of an unknown call: %+v", r)
	}
	if !reflect.DeepEqual(before, snapshot(e)) {
		t.Error("no-session drops changed the state")
	}
}

// TestEngineHostile: malformed and hostile segments are dropped whole,
// open and close nothing, and change no state; the honest segment sent
// after them at the same sequence number then passes.
func TestEngineHostile(t *testing.T) {
	hangUp := enc(t, mHangUp)
	regAck := enc(t, mRegisterAck)
	tests := []struct {
		name      string
		fromPhone bool
		payload   []byte
		want      DropReason
	}{
		{"length over max", true, []byte{0x7f, 0xff, 8, 0, 0, 0, 0, 0}, ReasonMalformed},
		{"length under header", true, []byte{0, 3, 8, 0, 0, 0, 0, 0}, ReasonMalformed},
		{"unknown type", true, []byte{0, 8, 99, 0, 0, 0, 0, 0}, ReasonMalformed},
		{"wrong side", true, regAck, ReasonMalformed},
		{"hang-up then garbage", true, append(bytes.Clone(hangUp), 0, 2), ReasonMalformed},
		{"heartbeat then bad hang-up", true, append(enc(t, mHeartbeat), append(bytes.Clone(hangUp[:8]), 0, 0, 0, 0)...), ReasonMalformed},
		{"second device", true, enc(t, Message{Type: TypeRegister, Device: "other"}), ReasonMalformed},
		{"call id in use", false, enc(t, mCallSetup), ReasonMalformed},
		{"ahead of the stream", true, nil, ReasonOutOfOrder},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEngine(Config{})
			w := newWire(t, e)
			setUpCall(w)
			w.send(true, mMakeCall) // a pending MakeCall, so the duplicate call id is what fails
			before, counted := snapshot(e), e.Counters()
			r := Result{Open: []Pinhole{{}}}
			p := Packet{Conn: testConn, FromPhone: tc.fromPhone, Seq: w.seq[dirOf(tc.fromPhone)], Payload: tc.payload, Now: t0}
			if tc.want == ReasonOutOfOrder {
				p.Seq, p.Payload = p.Seq+10, hangUp
			}
			e.Inspect(&p, &r)
			if !r.Drop || r.Reason != tc.want || len(r.Open) != 1 || len(r.Close) != 0 {
				t.Errorf("result %+v; want dropped as %s, pinholes untouched", r, tc.want)
			}
			if !reflect.DeepEqual(before, snapshot(e)) {
				t.Error("the drop changed the engine's state")
			}
			if got := e.Counters(); got.Messages != counted.Messages {
				t.Errorf("messages counted %d -> %d", counted.Messages, got.Messages)
			}
			if r := w.send(true, mHangUp); len(r.Close) != 6 {
				t.Errorf("the honest HangUp after the drop closed %d pinholes, want 6", len(r.Close))
			}
		})
	}
}

// TestEngineRetransmission: bytes already inspected pass again without
// being applied twice; a segment overlapping them is applied from the new
// bytes on.
func TestEngineRetransmission(t *testing.T) {
	e := NewEngine(Config{})
	w := newWire(t, e)
	w.send(true, mRegister)
	w.send(false, mRegisterAck)
	mc := enc(t, mMakeCall)
	start := w.seq[0]
	w.send(true, mMakeCall)
	var r Result
	e.Inspect(&Packet{Conn: testConn, FromPhone: true, Seq: start, Payload: mc, Now: t0}, &r)
	if r.Drop || len(r.Open) != 0 {
		t.Errorf("retransmitted MakeCall: %+v, want passed and not applied again", r)
	}
	hb := enc(t, mHeartbeat)
	e.Inspect(&Packet{Conn: testConn, FromPhone: true, Seq: start, Payload: append(bytes.Clone(mc), hb...), Now: t0}, &r)
	if r.Drop || len(r.Open) != 0 || e.Counters().Messages != 4 {
		t.Errorf("overlapping segment: %+v, counters %+v; want only the heartbeat applied", r, e.Counters())
	}
}

func TestEngineBoundsAndExpiry(t *testing.T) {
	e := NewEngine(Config{MaxConns: 1, SessionIdle: time.Minute})
	w := newWire(t, e)
	setUpCall(w)
	other := newWire(t, e)
	other.conn.PhonePort++
	if r := other.segment(true, enc(t, mRegister)); r.Reason != ReasonTableFull {
		t.Fatalf("second connection with room for one: %+v", r)
	}
	other.now = t0.Add(2 * time.Minute)
	r := other.segment(true, enc(t, mRegister))
	if r.Drop || len(r.Close) != 6 {
		t.Errorf("after the first went idle: %+v; want it expired (its 6 pinholes closed) and the new one admitted", r)
	}
	if closed := e.Forget(other.conn); len(closed) != 0 || len(e.Sessions()) != 0 {
		t.Errorf("Forget: closed %v, sessions %v", closed, e.Sessions())
	}
	w2 := newWire(t, NewEngine(Config{}))
	w2.send(true, mRegister)
	w2.send(false, mRegisterAck)
	for i := range MaxCallsPerSession + 1 {
		w2.send(true, mMakeCall)
		cs := mCallSetup
		cs.CallID = uint32(100 + i)
		r := w2.segment(false, enc(t, cs))
		if wantFull := i == MaxCallsPerSession; r.Drop != wantFull || wantFull && r.Reason != ReasonTableFull {
			t.Errorf("call %d: %+v", i, r)
		}
	}
	if closed := w2.e.Expire(t0.Add(time.Hour)); len(closed) != 6*MaxCallsPerSession+2 {
		t.Errorf("Expire closed %d pinholes, want %d", len(closed), 6*MaxCallsPerSession+2)
	}
}

func TestShowCTIQBE(t *testing.T) {
	e := NewEngine(Config{})
	w := newWire(t, e)
	setUpCall(w)
	w.segment(true, enc(t, Message{Type: TypeHangUp, CallID: 99}))
	want := `! CTIQBE: a lab model of CTIQBE's behaviour, not wire-compatible; its session table is not replicated
Total: 1
      LOCAL                 FOREIGN               STATE HEARTBEAT
---------------------------------------------------------------
1     198.18.1.10/40000     198.19.2.20/2748      2     120
----------------------------------------------
MEDIA: Device ID 27   Call ID 7
  Foreign 198.18.1.10     (26822 - 26823)
  Local   198.19.2.20     (16384 - 16385)
----------------------------------------------
! STATE: 0 registering, 1 registered, 2 in a call. Drops: ctiqbe-no-session 1, ctiqbe-malformed 0, ctiqbe-out-of-order 0, ctiqbe-table-full 0
`
	if got := e.Show(); got != want {
		t.Errorf("show ctiqbe:\n%s\nwant:\n%s\ndiff:\n%s", got, want, cmp.Diff(want, got))
	}
	if !strings.Contains(e.Show(), "not wire-compatible") || e.Replicated() {
		t.Error("the model label or the not-replicated declaration is missing")
	}
}

// TestEngineHeartbeatAllocs: a heartbeat on an established session, the
// engine's steady traffic, allocates nothing.
func TestEngineHeartbeatAllocs(t *testing.T) {
	e := NewEngine(Config{})
	w := newWire(t, e)
	setUpCall(w)
	hb, ack := enc(t, mHeartbeat), enc(t, mHeartbeatOK)
	var r Result
	allocs := testing.AllocsPerRun(200, func() {
		r.Open, r.Close = r.Open[:0], r.Close[:0]
		if r = w.segment(true, hb); r.Drop {
			t.Fatal(r.Reason)
		}
		if r = w.segment(false, ack); r.Drop {
			t.Fatal(r.Reason)
		}
	})
	if allocs != 0 {
		t.Errorf("a heartbeat and its ack allocate %.1f times, want 0", allocs)
	}
}

func BenchmarkEngineHeartbeat(b *testing.B) {
	e := NewEngine(Config{})
	w := newWire(b, e)
	setUpCall(w)
	hb := enc(b, mHeartbeat)
	b.ReportAllocs()
	for b.Loop() {
		w.segment(true, hb)
	}
}
