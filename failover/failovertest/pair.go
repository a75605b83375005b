// Package failovertest simulates a failover pair: two failover.Machines joined
// by a fake failover link and fake data interfaces, driven by a manual clock,
// so whole scenarios (crash, freeze, link cut, interface failure, manual
// failover) run deterministically and in no wall-clock time.
// It must not import any falab package but failover: it tests the machines
// alone, without the unit process.
//
// The simulator plays the unit process: it performs each action the machines
// return (hellos go through the wire codec and across the link, probes are
// answered by whether the peer process runs, bulk syncs finish after a delay)
// and checks invariants as it goes (every transition has a reason and starts
// from the state the unit was in; state is put in place before addresses are
// announced). It measures how long two units were active at once and how long
// none was.
package failovertest

import (
	"fmt"
	"slices"
	"time"

	"github.com/falab/falab/failover"
)

// Unit is one simulated unit: its machine and what its process is doing.
type Unit struct {
	Name string
	Cfg  failover.Config
	// M is the unit's machine; Restart replaces it.
	M *failover.Machine
	// Running is false after Kill, until Restart.
	Running bool
	// Frozen is true between Freeze and Thaw (SIGSTOP): events queue up.
	Frozen bool
	// Forwarding follows BecomeActive / BecomeStandby.
	Forwarding bool
	// Announcements counts AnnounceAddresses.
	Announcements int
	// Mismatches is how many of the next bulk syncs report differing
	// digests.
	Mismatches int

	inbox     []failover.Event
	lastState failover.State // as the logged transitions tell it
}

// Record is one action a unit's machine returned, with when and whose.
type Record struct {
	Unit   string
	At     time.Time
	Action failover.Action
}

// Pair is two units, primary Units[0] and secondary Units[1], and the links
// between them. Set the exported knobs before running. A Pair is used by one
// goroutine.
type Pair struct {
	Units [2]*Unit
	// Now is the simulated time.
	Now time.Time
	// Latency is the failover link's one-way delay (also for the closed
	// connection notice).
	Latency time.Duration
	// ProbeAnswer is how long a data probe takes to report a live peer.
	ProbeAnswer time.Duration
	// ReportDeadProbes makes the simulated unit report PeerAlive false
	// after ProbeAnswer instead of letting the probe time out.
	ReportDeadProbes bool
	// BulkSyncTime is how long a requested bulk sync takes.
	BulkSyncTime time.Duration
	// LinkUp and DataUp say whether the failover link and the data
	// interfaces carry traffic between the units.
	LinkUp, DataUp bool

	// Log holds every action returned, in order.
	Log []Record
	// Violations lists broken invariants; a correct machine leaves it empty.
	Violations []string
	// DoubleActive and NoActive total the time during which two running
	// units (or none) claimed the active role.
	DoubleActive, NoActive time.Duration
	// DoubleForwarding totals the time during which two running units
	// forwarded (active and not suspended): the split brain that matters
	// on the wire.
	DoubleForwarding time.Duration

	queue   []pending
	nextSeq uint64
}

type pending struct {
	at   time.Time
	seq  uint64
	unit int
	ev   failover.Event
	// viaLink events are dropped if the failover link is down on arrival.
	viaLink bool
}

// Start is the simulated clock's origin.
var Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewPair returns a pair of units fw-a (primary, cfgA) and fw-b (secondary,
// cfgB), both not yet started, with links up, 1ms link latency, 5ms probe
// answers and 20ms bulk syncs.
func NewPair(cfgA, cfgB failover.Config) (*Pair, error) {
	p := &Pair{
		Now:          Start,
		Latency:      time.Millisecond,
		ProbeAnswer:  5 * time.Millisecond,
		BulkSyncTime: 20 * time.Millisecond,
		LinkUp:       true,
		DataUp:       true,
	}
	for i, c := range []failover.Config{cfgA, cfgB} {
		m, err := failover.New(c)
		if err != nil {
			return nil, err
		}
		p.Units[i] = &Unit{Name: [2]string{"fw-a", "fw-b"}[i], Cfg: c, M: m}
	}
	return p, nil
}

// StartUnit starts unit i's machine now (its process is running).
func (p *Pair) StartUnit(i int) {
	u := p.Units[i]
	u.Running = true
	p.perform(i, u.M.Start(p.Now))
}

// Kill crashes unit i's process: its peer sees the failover connection close
// one link latency later (if the link is up).
func (p *Pair) Kill(i int) {
	u := p.Units[i]
	u.Running, u.Frozen, u.Forwarding, u.inbox = false, false, false, nil
	p.schedule(p.Now.Add(p.Latency), 1-i, failover.PeerConnClosed{}, true)
}

// Restart starts a fresh machine for unit i, as a restarted process.
func (p *Pair) Restart(i int) error {
	u := p.Units[i]
	m, err := failover.New(u.Cfg)
	if err != nil {
		return err
	}
	u.M, u.Forwarding, u.Mismatches, u.lastState = m, false, 0, failover.Disabled
	p.StartUnit(i)
	return nil
}

// Freeze stops unit i's process (SIGSTOP): events and timers wait.
func (p *Pair) Freeze(i int) { p.Units[i].Frozen = true }

// Thaw resumes unit i: queued events are handled first, then its timers.
func (p *Pair) Thaw(i int) {
	u := p.Units[i]
	u.Frozen = false
	inbox := u.inbox
	u.inbox = nil
	for _, ev := range inbox {
		p.deliver(i, ev)
	}
}

// CutLink takes the failover link down; both units see carrier loss.
func (p *Pair) CutLink() {
	p.LinkUp = false
	for i := range p.Units {
		p.deliver(i, failover.LinkCarrier{Up: false})
	}
}

// HealLink brings the failover link back.
func (p *Pair) HealLink() {
	p.LinkUp = true
	for i := range p.Units {
		p.deliver(i, failover.LinkCarrier{Up: true})
	}
}

// Step delivers ev to unit i now.
func (p *Pair) Step(i int, ev failover.Event) { p.deliver(i, ev) }

// Active returns the index of the one running, unfrozen unit that is active,
// or -1 if there is none or two.
func (p *Pair) Active() int {
	found := -1
	for i, u := range p.Units {
		if u.Running && !u.Frozen && u.M.IsActive() {
			if found >= 0 {
				return -1
			}
			found = i
		}
	}
	return found
}

// States returns both units' states.
func (p *Pair) States() [2]failover.State {
	return [2]failover.State{p.Units[0].M.State(), p.Units[1].M.State()}
}

// Transitions returns the transitions logged since index from of Log.
func (p *Pair) Transitions(from int) []Record {
	var out []Record
	for _, r := range p.Log[from:] {
		if _, ok := r.Action.(failover.Transition); ok {
			out = append(out, r)
		}
	}
	return out
}

// RunFor advances the clock by d, handling every event and timer due.
func (p *Pair) RunFor(d time.Duration) { p.RunUntil(p.Now.Add(d), nil) }

// RunUntil advances the clock until cond holds (checked after every event)
// or end is reached; it reports whether cond held. A nil cond runs to end.
func (p *Pair) RunUntil(end time.Time, cond func() bool) bool {
	const maxSteps = 1_000_000
	for range maxSteps {
		if cond != nil && cond() {
			return true
		}
		next, unit, fromQueue := p.next()
		if next.IsZero() || next.After(end) {
			p.advance(end)
			return cond != nil && cond()
		}
		p.advance(next)
		if fromQueue {
			ev := p.queue[0]
			p.queue = p.queue[1:]
			if ev.viaLink && !p.LinkUp {
				continue
			}
			p.deliver(ev.unit, ev.ev)
			continue
		}
		u := p.Units[unit]
		before := u.M.NextDeadline()
		p.perform(unit, u.M.Tick(p.Now))
		if after := u.M.NextDeadline(); !after.After(p.Now) {
			p.violate("%s: Tick at %v left NextDeadline %v (was %v): timer would spin", u.Name, p.since(p.Now), p.since(after), p.since(before))
			return false
		}
	}
	p.violate("simulation did not reach %v within %d steps", p.since(end), maxSteps)
	return false
}

// next returns the earliest due queued event or unit timer.
func (p *Pair) next() (at time.Time, unit int, fromQueue bool) {
	if len(p.queue) > 0 {
		at, unit, fromQueue = p.queue[0].at, p.queue[0].unit, true
	}
	for i, u := range p.Units {
		if !u.Running || u.Frozen {
			continue
		}
		d := u.M.NextDeadline()
		if d.IsZero() {
			continue
		}
		if at.IsZero() || d.Before(at) {
			at, unit, fromQueue = d, i, false
		}
	}
	return at, unit, fromQueue
}

// advance moves the clock to t, adding the elapsed time to the double- and
// no-active totals.
func (p *Pair) advance(t time.Time) {
	if !t.After(p.Now) {
		return
	}
	n, fwd := 0, 0
	for _, u := range p.Units {
		if u.Running && !u.Frozen && u.M.IsActive() {
			n++
			if u.M.Forwarding() {
				fwd++
			}
		}
	}
	if fwd == 2 {
		p.DoubleForwarding += t.Sub(p.Now)
	}
	switch n {
	case 0:
		p.NoActive += t.Sub(p.Now)
	case 2:
		p.DoubleActive += t.Sub(p.Now)
	}
	p.Now = t
}

func (p *Pair) deliver(i int, ev failover.Event) {
	u := p.Units[i]
	switch {
	case !u.Running:
	case u.Frozen:
		u.inbox = append(u.inbox, ev)
	default:
		p.perform(i, u.M.Step(p.Now, ev))
	}
}

func (p *Pair) schedule(at time.Time, unit int, ev failover.Event, viaLink bool) {
	p.nextSeq++
	e := pending{at: at, seq: p.nextSeq, unit: unit, ev: ev, viaLink: viaLink}
	idx, _ := slices.BinarySearchFunc(p.queue, e, func(a, b pending) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return int(a.seq - b.seq)
	})
	p.queue = slices.Insert(p.queue, idx, e)
}

// perform carries out unit i's actions in order, checking the ordering
// contract of takeovers.
func (p *Pair) perform(i int, actions []failover.Action) {
	u := p.Units[i]
	peer := 1 - i
	for k, a := range actions {
		p.Log = append(p.Log, Record{Unit: u.Name, At: p.Now, Action: a})
		switch a := a.(type) {
		case failover.Transition:
			p.checkTransition(u, a, actions[:k])
		case failover.SendHello:
			b, err := a.Hello.MarshalBinary()
			if err != nil {
				p.violate("%s: marshal hello: %v", u.Name, err)
				continue
			}
			var h failover.Hello
			if err := h.UnmarshalBinary(b); err != nil {
				p.violate("%s: unmarshal own hello: %v", u.Name, err)
				continue
			}
			if p.LinkUp {
				p.schedule(p.Now.Add(p.Latency), peer, failover.HelloReceived{Hello: h, SentAt: p.Now}, true)
			}
		case failover.BecomeActive:
			if k == 0 || !isTransitionTo(actions[k-1], failover.JustActive) {
				p.violate("%s: BecomeActive not right after a transition to Just Active", u.Name)
			}
			u.Forwarding = true
		case failover.AnnounceAddresses:
			// Either right after BecomeActive (a takeover), or again by a
			// unit already Active (two actives met and it stays).
			afterBecome := false
			if k > 0 {
				_, afterBecome = actions[k-1].(failover.BecomeActive)
			}
			switch {
			case !u.Forwarding:
				p.violate("%s: addresses announced before state was put in place", u.Name)
			case !afterBecome && u.lastState != failover.Active:
				p.violate("%s: AnnounceAddresses neither follows BecomeActive nor comes from an Active unit", u.Name)
			}
			u.Announcements++
		case failover.BecomeStandby:
			u.Forwarding = false
		case failover.RequestBulkSync:
			match := u.Mismatches == 0
			if !match {
				u.Mismatches--
			}
			p.schedule(p.Now.Add(p.BulkSyncTime), i, failover.BulkSyncDone{DigestsMatch: match}, false)
		case failover.ProbeDataInterfaces:
			pu := p.Units[peer]
			if p.DataUp && pu.Running && !pu.Frozen {
				p.schedule(p.Now.Add(p.ProbeAnswer), i, failover.DataProbeResult{Round: a.Round, PeerAlive: true, PeerActive: pu.Forwarding, PeerState: pu.M.State()}, false)
			} else if p.ReportDeadProbes {
				p.schedule(p.Now.Add(p.ProbeAnswer), i, failover.DataProbeResult{Round: a.Round, PeerAlive: false}, false)
			}
		}
	}
}

func isTransitionTo(a failover.Action, s failover.State) bool {
	t, ok := a.(failover.Transition)
	return ok && t.To == s
}

func (p *Pair) checkTransition(u *Unit, t failover.Transition, earlier []failover.Action) {
	switch {
	case t.Reason == "":
		p.violate("%s: transition %v -> %v without a reason", u.Name, t.From, t.To)
	case t.From == t.To:
		p.violate("%s: transition %v -> %v goes nowhere (%s)", u.Name, t.From, t.To, t.Reason)
	case t.From != u.lastState:
		p.violate("%s: transition from %v but the unit was %v", u.Name, t.From, u.lastState)
	case !t.At.Equal(p.Now):
		p.violate("%s: transition at %v, clock says %v", u.Name, p.since(t.At), p.since(p.Now))
	}
	u.lastState = t.To
	if t.To == failover.Active {
		if len(earlier) == 0 {
			p.violate("%s: became Active without passing Just Active", u.Name)
		} else if _, ok := earlier[len(earlier)-1].(failover.AnnounceAddresses); !ok {
			p.violate("%s: became Active before announcing addresses", u.Name)
		}
	}
}

func (p *Pair) violate(format string, args ...any) {
	p.Violations = append(p.Violations, fmt.Sprintf("t=%v: ", p.since(p.Now))+fmt.Sprintf(format, args...))
}

// since prints t as an offset from Start, which reads better in failures.
func (p *Pair) since(t time.Time) time.Duration { return t.Sub(Start) }

// Timeline renders the transitions in Log from index from, one per line, for
// test failure messages.
func (p *Pair) Timeline(from int) string {
	s := ""
	for _, r := range p.Log[from:] {
		switch a := r.Action.(type) {
		case failover.Transition:
			s += fmt.Sprintf("%8v %s %v -> %v (term %d): %s\n", p.since(r.At), r.Unit, a.From, a.To, a.Term, a.Reason)
		case failover.Notice:
			s += fmt.Sprintf("%8v %s notice: %s\n", p.since(r.At), r.Unit, a.Reason)
		case failover.PeerStatus:
			s += fmt.Sprintf("%8v %s peer failed=%v: %s\n", p.since(r.At), r.Unit, a.Failed, a.Reason)
		case failover.FailoverLinkStatus:
			s += fmt.Sprintf("%8v %s failover link up=%v: %s\n", p.since(r.At), r.Unit, a.Up, a.Reason)
		}
	}
	return s
}
