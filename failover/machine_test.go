package failover

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func cfg(role Role) Config {
	c := DefaultConfig(role)
	c.Monitored = []string{"inside", "outside"}
	return c
}

func mustNew(t testing.TB, c Config) *Machine {
	t.Helper()
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // in the error; "" for valid
	}{
		{"default", func(*Config) {}, ""},
		{"no role", func(c *Config) { c.Role = 0 }, "role 0 is neither"},
		{"zero poll", func(c *Config) { c.UnitPoll = 0 }, "UnitPoll 0s must be positive"},
		{"hold not above poll", func(c *Config) { c.UnitHold = c.UnitPoll }, "UnitHold 30ms must exceed UnitPoll 30ms"},
		{"zero interface poll", func(c *Config) { c.InterfacePoll = 0 }, "InterfacePoll"},
		{"interface hold below poll", func(c *Config) { c.InterfaceHold = time.Millisecond }, "InterfaceHold 1ms must be at least"},
		{"zero window", func(c *Config) { c.NegotiationWindow = 0 }, "NegotiationWindow"},
		{"empty interface name", func(c *Config) { c.Monitored = []string{""} }, "invalid interface name"},
		{"duplicate interface", func(c *Config) { c.Monitored = []string{"inside", "inside"} }, `"inside" listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg(Primary)
			tt.mutate(&c)
			_, err := New(c)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrConfig containing %q", err, tt.want)
			}
		})
	}
}

// standbyReady returns a secondary that heard an active primary and finished
// bulk sync at 20ms.
func standbyReady(t *testing.T) *Machine {
	t.Helper()
	m := mustNew(t, cfg(Secondary))
	m.Start(ms(0))
	m.Step(ms(1), HelloReceived{Hello: Hello{Role: Primary, State: Active, Term: 3, Seq: 1}})
	m.Step(ms(20), BulkSyncDone{DigestsMatch: true})
	if m.State() != StandbyReady {
		t.Fatalf("setup: state %v, want Standby Ready", m.State())
	}
	return m
}

// TestTakeoverActions pins the exact actions and their order for a takeover
// after the hold expires and every probe round stays silent. The
// confirmation (two rounds of 25ms) starts its length before the unit hold
// expires (capped at half of it: 50ms here), so that the verdict lands at
// the hold.
func TestTakeoverActions(t *testing.T) {
	m := standbyReady(t)
	// Hellos go out at 20ms (Standby Ready) and 50ms; the last hello heard
	// was at 1ms, so the confirmation starts at 1 + 100 - 50 = 51ms.
	m.Tick(ms(50))
	if got, want := m.NextDeadline(), ms(51); !got.Equal(want) {
		t.Fatalf("NextDeadline %v, want the confirmation at %v", got.Sub(t0), want.Sub(t0))
	}
	round := func(n uint64) []Action {
		return []Action{ProbeDataInterfaces{Round: n, Poll: 10 * time.Millisecond, Timeout: 25 * time.Millisecond, Reason: "peer hello timeout (hold 100ms)"}}
	}
	if diff := cmp.Diff(round(1), m.Tick(ms(51))); diff != "" {
		t.Fatalf("at the start of the confirmation (-want +got):\n%s", diff)
	}
	if got, want := m.NextDeadline(), ms(76); !got.Equal(want) {
		t.Fatalf("NextDeadline %v, want the first round's end at %v", got.Sub(t0), want.Sub(t0))
	}
	if diff := cmp.Diff(round(2), m.Tick(ms(76))); diff != "" {
		t.Fatalf("the first round silent (-want +got):\n%s", diff)
	}
	m.Tick(ms(80)) // a hello
	got := m.Tick(ms(101))
	reason := "peer hello timeout (hold 100ms), peer confirmed dead on data interfaces (no answer in 2 rounds of 25ms)"
	ifs := []MonitoredInterface{{"inside", true}, {"outside", true}}
	want := []Action{
		PeerStatus{Failed: true, Reason: reason, At: ms(101)},
		Transition{From: StandbyReady, To: JustActive, Reason: reason, At: ms(101), Term: 4},
		BecomeActive{Reason: reason, Term: 4, StateComplete: true},
		AnnounceAddresses{},
		Transition{From: JustActive, To: Active, Reason: "takeover complete: " + reason, At: ms(101), Term: 4},
		SendHello{Hello{Role: Secondary, State: Active, Term: 4, Seq: 6, Interfaces: ifs}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("at the last round's end (-want +got):\n%s", diff)
	}
	if m.LastReason() != "takeover complete: "+reason || !m.IsActive() || m.Term() != 4 {
		t.Errorf("after takeover: reason %q active %v term %d", m.LastReason(), m.IsActive(), m.Term())
	}
}

// TestProbeRoundLostThenAnswered: a loaded data path loses or delays the
// first round; an answer in the second proves the peer alive. No takeover,
// the failover link is reported failed.
func TestProbeRoundLostThenAnswered(t *testing.T) {
	m := standbyReady(t)
	m.Step(ms(40), LinkCarrier{Up: false})
	m.Tick(ms(65)) // round 1 silent: round 2 starts
	got := m.Step(ms(70), DataProbeResult{Round: 2, PeerAlive: true})
	if len(got) != 1 {
		t.Fatalf("answer in round 2: %v, want one FailoverLinkStatus", got)
	}
	if ls, ok := got[0].(FailoverLinkStatus); !ok || ls.Up {
		t.Fatalf("answer in round 2: %#v, want the failover link reported failed", got[0])
	}
	m.Tick(ms(95))
	if m.State() != StandbyReady {
		t.Errorf("state %v, want Standby Ready", m.State())
	}
}

// TestStaleProbeResult: carrier loss starts a confirmation, a hello settles
// it, a second sign starts another; then the first confirmation's late "no
// answer" (or "dead") arrives. It must not decide the second: applied to it,
// the unit would take over while its peer is alive. (On the old main a
// result carried no round and was applied to whatever probe ran.)
func TestStaleProbeResult(t *testing.T) {
	m := standbyReady(t)
	first := m.Step(ms(40), LinkCarrier{Up: false})
	if len(first) != 1 {
		t.Fatalf("carrier loss: %v, want a probe", first)
	}
	old := first[0].(ProbeDataInterfaces).Round
	m.Step(ms(41), HelloReceived{Hello: Hello{Role: Primary, State: Active, Term: 3, Seq: 2}})
	m.Step(ms(42), PeerConnClosed{})
	for _, got := range [][]Action{
		m.Step(ms(45), DataProbeResult{Round: old, PeerAlive: false, How: "late verdict of the first round"}),
		m.Step(ms(46), DataProbeResult{Round: old + 100, PeerAlive: false, How: "a round never started"}),
	} {
		if len(got) != 0 {
			t.Errorf("stale result: %v, want nothing", got)
		}
	}
	if m.State() != StandbyReady {
		t.Fatalf("state %v after a stale result, want Standby Ready", m.State())
	}
	if st := m.Status().Stats; st.StaleProbeResults != 2 {
		t.Errorf("StaleProbeResults %d, want 2", st.StaleProbeResults)
	}
}

// TestBecomeStandbyActions pins the order when a negotiating unit hears an
// active peer.
func TestBecomeStandbyActions(t *testing.T) {
	m := mustNew(t, cfg(Primary))
	m.Start(ms(0))
	got := m.Step(ms(5), HelloReceived{Hello: Hello{Role: Secondary, State: Active, Term: 9, Seq: 100}})
	reason := "peer is Active (term 9), no preemption"
	want := []Action{
		Transition{From: Negotiation, To: BulkSync, Reason: reason, At: ms(5), Term: 9},
		BecomeStandby{Reason: reason},
		RequestBulkSync{Reason: reason},
		SendHello{Hello{Role: Primary, State: BulkSync, Term: 9, Seq: 2, Interfaces: []MonitoredInterface{{"inside", true}, {"outside", true}}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestProbeAnsweredByHello(t *testing.T) {
	m := standbyReady(t)
	if got := m.Step(ms(40), PeerConnClosed{}); len(got) != 1 {
		t.Fatalf("conn closed: %v, want one probe", got)
	}
	// The peer reconnects and says hello before the probe ends: no verdict
	// (and the next confirmation would only start at 45 + 100 - 50 = 95ms,
	// after more silence; a hello at 80ms puts it off again).
	m.Step(ms(45), HelloReceived{Hello: Hello{Role: Primary, State: Active, Term: 3, Seq: 2}})
	m.Step(ms(80), HelloReceived{Hello: Hello{Role: Primary, State: Active, Term: 3, Seq: 3}})
	for _, got := range [][]Action{m.Step(ms(50), DataProbeResult{PeerAlive: false}), m.Tick(ms(100))} {
		for _, a := range got {
			if _, ok := a.(SendHello); !ok {
				t.Errorf("after the peer answered: %#v", a)
			}
		}
	}
	if m.State() != StandbyReady {
		t.Errorf("state %v, want Standby Ready", m.State())
	}
}

// TestOneProbeAtATime: a second sign during a probe neither starts another
// probe nor moves its deadline.
func TestOneProbeAtATime(t *testing.T) {
	m := standbyReady(t)
	m.Step(ms(40), PeerConnClosed{})
	if got := m.Step(ms(70), LinkCarrier{Up: false}); len(got) != 0 {
		t.Errorf("second sign: %v, want nothing", got)
	}
	m.Tick(ms(65)) // the first round ends silent
	m.Tick(ms(89))
	if m.State() != StandbyReady {
		t.Fatalf("state %v at 89ms, want Standby Ready until the confirmation ends at 90ms", m.State())
	}
	m.Tick(ms(90))
	if got := m.LastReason(); got != "takeover complete: peer process closed the failover connection, peer confirmed dead on data interfaces (no answer in 2 rounds of 25ms)" {
		t.Errorf("reason %q", got)
	}
}

// TestBothStandbyGuard: if both units stay standby with no active (here the
// active stepped down and the peer never took over), the primary takes over
// after UnitHold; the secondary waits.
func TestBothStandbyGuard(t *testing.T) {
	for _, role := range []Role{Primary, Secondary} {
		t.Run(role.String(), func(t *testing.T) {
			peerRole := Primary + Secondary - role
			m := mustNew(t, cfg(role))
			m.Start(ms(0))
			m.Tick(ms(300)) // the window ends: ask on the data interfaces
			m.Tick(ms(325))
			m.Tick(ms(350)) // no answer in two rounds: active
			m.Step(ms(351), HelloReceived{Hello: Hello{Role: peerRole, State: StandbyReady, Term: 1, Seq: 1}})
			m.Step(ms(360), ManualFailover{MakeActive: false})
			if m.State() != BulkSync {
				t.Fatalf("after no failover active: %v, want Bulk Sync", m.State())
			}
			for now := 370; now <= 750; now += 10 {
				m.Step(ms(now), HelloReceived{Hello: Hello{Role: peerRole, State: StandbyReady, Term: 1, Seq: uint32(now)}})
				m.Tick(ms(now))
			}
			if role == Secondary {
				if m.State() != BulkSync {
					t.Errorf("secondary state %v, want Bulk Sync", m.State())
				}
				return
			}
			want := "takeover complete: no active unit for 100ms (both units standby): primary becomes active; standby was not Standby Ready (bulk sync unfinished): sessions may be lost"
			if m.State() != Active || m.LastReason() != want || !m.lastChange.Equal(ms(470)) {
				t.Errorf("primary %v at %v: %q\nwant Active at 470ms: %q", m.State(), m.lastChange.Sub(t0), m.LastReason(), want)
			}
		})
	}
}

func TestBeforeStart(t *testing.T) {
	m := mustNew(t, cfg(Primary))
	for _, ev := range []Event{HelloReceived{Hello: Hello{Role: Secondary, State: Active}}, ManualFailover{MakeActive: true}, InterfaceStatus{Name: "inside", Up: false}} {
		if got := m.Step(ms(1), ev); got != nil {
			t.Errorf("%T before Start: %v", ev, got)
		}
	}
	if got := m.Tick(ms(1000)); got != nil || !m.NextDeadline().IsZero() || m.State() != Disabled {
		t.Errorf("Disabled machine acted: %v, deadline %v, state %v", got, m.NextDeadline(), m.State())
	}
	// The interface status reported before Start is in the first hello.
	out := m.Start(ms(2))
	h := out[len(out)-1].(SendHello).Hello
	if diff := cmp.Diff([]MonitoredInterface{{"inside", false}, {"outside", true}}, h.Interfaces); diff != "" {
		t.Errorf("first hello interfaces (-want +got):\n%s", diff)
	}
	if m.Start(ms(3)) != nil {
		t.Error("second Start did something")
	}
}

func TestRoleClash(t *testing.T) {
	m := mustNew(t, cfg(Primary))
	m.Start(ms(0))
	first := m.Step(ms(1), HelloReceived{Hello: Hello{Role: Primary, State: Active, Term: 5}})
	second := m.Step(ms(2), HelloReceived{Hello: Hello{Role: Primary, State: Active, Term: 5}})
	want := []Action{Notice{Reason: "hello ignored: peer is also Primary; check the failover unit roles", At: ms(1)}}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("first clash (-want +got):\n%s", diff)
	}
	if len(second) != 0 || m.State() != Negotiation {
		t.Errorf("second clash: %v, state %v", second, m.State())
	}
}

func TestHellosMissed(t *testing.T) {
	m := standbyReady(t)
	m.Step(ms(30), HelloReceived{Hello: Hello{Role: Primary, State: Active, Term: 3, Seq: 5}})
	m.Step(ms(60), HelloReceived{Hello: Hello{Role: Primary, State: Active, Term: 3, Seq: 6}})
	if got := m.Status().Stats.HellosMissed; got != 3 {
		t.Errorf("HellosMissed %d, want 3 (seq 2..4)", got)
	}
}

func TestStrings(t *testing.T) {
	var got []string
	for s := Disabled; s <= numStates; s++ {
		got = append(got, s.String())
	}
	got = append(got, Primary.String(), Secondary.String(), Role(0).String())
	want := []string{"Disabled", "Negotiation", "Bulk Sync", "Standby Ready", "Just Active", "Active", "Failed", "State(7)", "Primary", "Secondary", "Role(0)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// FuzzMachine drives one machine with arbitrary events and checks it never
// panics, every transition has a reason and starts where the last ended,
// takeovers keep their action order, and Tick always moves the deadline on.
func FuzzMachine(f *testing.F) {
	f.Add([]byte{0, 1, 3, 5, 0, 9, 2, 40, 4, 1, 7, 0, 8, 3})
	f.Add([]byte{1, 0, 1, 10, 3, 1, 9, 2, 9, 0, 6, 1, 6, 0, 7})
	f.Fuzz(func(t *testing.T, ops []byte) {
		m := mustNew(t, cfg(Role(1+len(ops)%2)))
		now := t0
		state := Disabled
		check := func(out []Action) {
			for k, a := range out {
				switch a := a.(type) {
				case Transition:
					if a.Reason == "" || a.From != state || a.From == a.To || !a.At.Equal(now) {
						t.Fatalf("bad transition %+v (unit was %v)", a, state)
					}
					state = a.To
				case BecomeActive:
					if k == 0 || out[k-1].(Transition).To != JustActive {
						t.Fatalf("BecomeActive not after Just Active: %v", out)
					}
				case AnnounceAddresses:
					// After BecomeActive (a takeover), or again from a unit
					// that is Active and stays so when two actives meet.
					if _, ok := out[max(k-1, 0)].(BecomeActive); !ok && state != Active {
						t.Fatalf("AnnounceAddresses neither after BecomeActive nor from an Active unit: %v", out)
					}
				case SendHello:
					if _, err := a.Hello.MarshalBinary(); err != nil {
						t.Fatalf("hello does not encode: %v", err)
					}
				}
			}
			if m.State() != state {
				t.Fatalf("State() %v, transitions say %v", m.State(), state)
			}
		}
		check(m.Start(now))
		peerState := []State{Negotiation, BulkSync, StandbyReady, Active, Failed, Disabled, JustActive}
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], ops[i+1]
			now = now.Add(time.Duration(arg%64) * time.Millisecond)
			var ev Event
			switch op % 11 {
			case 0:
				ev = HelloReceived{Hello: Hello{Role: Role(2 - len(ops)%2), State: peerState[arg%7], Term: uint64(arg % 5), Seq: uint32(i)}}
			case 1:
				ev = PeerConnClosed{}
			case 2:
				ev = LinkCarrier{Up: arg%2 == 0}
			case 3:
				ev = InterfaceStatus{Name: []string{"inside", "outside", "dmz"}[arg%3], Up: arg&4 == 0}
			case 4:
				ev = DataProbeResult{PeerAlive: arg%2 == 0}
			case 5:
				ev = ManualFailover{MakeActive: arg%2 == 0}
			case 6:
				ev = Reset{}
			case 7:
				ev = BulkSyncDone{DigestsMatch: arg%3 != 0}
			case 8:
				ev = SyncLost{Reason: "fuzz"}
			default:
				if d := m.NextDeadline(); d.After(now) {
					now = d
				}
				check(m.Tick(now))
				if !m.NextDeadline().After(now) {
					t.Fatalf("Tick at %v left deadline %v", now, m.NextDeadline())
				}
				continue
			}
			check(m.Step(now, ev))
		}
	})
}

func BenchmarkStepHello(b *testing.B) {
	m := mustNew(b, cfg(Secondary))
	m.Start(t0)
	h := Hello{Role: Primary, State: Active, Term: 1, Interfaces: []MonitoredInterface{{"inside", true}, {"outside", true}}}
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Millisecond)
		h.Seq++
		m.Step(now, HelloReceived{Hello: h})
	}
	b.ReportMetric(float64(m.Status().Stats.HellosReceived), "hellos")
}

// TestHandoverTimesOut: `failover active` on a standby asks the active to
// stand down; if no hello says it did within the hold, the standby takes
// the role anyway (the active may be hung), and the terms settle the rest.
func TestHandoverTimesOut(t *testing.T) {
	m := standbyReady(t)
	got := m.Step(ms(30), ManualFailover{MakeActive: true})
	if len(got) != 2 {
		t.Fatalf("failover active: %#v, want a notice and a hello", got)
	}
	if h, ok := got[1].(SendHello); !ok || !h.Hello.WantActive || h.Hello.State != StandbyReady {
		t.Fatalf("failover active: %#v, want a Standby Ready hello asking for the role", got[1])
	}
	// The active keeps saying hello (so no failure is suspected) but
	// never stands down.
	for now := 40; now < 130; now += 20 {
		m.Step(ms(now), HelloReceived{Hello: Hello{Role: Primary, State: Active, Term: 3, Seq: uint32(now)}})
		m.Tick(ms(now))
	}
	if m.State() != StandbyReady {
		t.Fatalf("took the role before the hold: %v", m.State())
	}
	m.Tick(ms(130))
	if want := "takeover complete: manual failover (failover active): the active did not stand down within 100ms"; !m.IsActive() || m.LastReason() != want {
		t.Errorf("state %v reason %q, want Active with %q", m.State(), m.LastReason(), want)
	}
}

// TestLateRoundIsNoEvidence: a round whose end this unit's own timer saw
// far too late (it was starved of CPU) is not counted against the peer:
// the confirmation runs one more round before declaring it dead.
func TestLateRoundIsNoEvidence(t *testing.T) {
	m := standbyReady(t)
	m.Step(ms(40), PeerConnClosed{}) // round 1 ends at 65
	m.Tick(ms(100))                  // 35 ms late: not counted
	m.Tick(ms(125))
	if m.State() != StandbyReady {
		t.Fatalf("took over at 125ms after a round it could not watch: %v (%s)", m.State(), m.LastReason())
	}
	m.Tick(ms(150))
	if !m.IsActive() {
		t.Errorf("state %v after every round it watched was silent, want Active", m.State())
	}
}
