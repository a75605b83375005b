package failover

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Machine is one unit's failover role state machine.
//
// A Machine is not safe for concurrent use: one goroutine of the unit owns it
// and calls Start, Step and Tick with non-decreasing times. Returned action
// slices belong to the caller.
type Machine struct {
	cfg Config

	state      State
	term       uint64
	reason     string // reason of the last transition
	lastChange time.Time
	now        time.Time

	seq       uint32
	nextHello time.Time

	negotiationDeadline time.Time
	// standbyWaits counts negotiation windows this unit let pass because
	// the peer answered as Standby Ready (negotiationVerdict).
	standbyWaits int

	// localDown holds the monitored interfaces reported down; absent means
	// up.
	localDown map[string]bool
	// failedByInterfaces is true while Failed was entered because of
	// monitored interfaces, so their recovery ends it.
	failedByInterfaces bool

	peer  peerView
	probe probe
	// forwardingSince is when Forwarding last became true.
	forwardingSince time.Time
	// handover is when this standby asked the active peer to stand down
	// (`failover active`); zero when it has not.
	handover time.Time
	// suspended: active, but resumed after a freeze and not yet told the
	// peer's role (Forwarding).
	suspended bool
	// resumedAt is when the machine was last called after a silence longer
	// than UnitHold: its process was frozen (a running unit's hello timer
	// calls it every UnitPoll).
	resumedAt time.Time
	// lastRound is the id of the last probe round started; ids only grow,
	// so a result for an old round is recognised as stale.
	lastRound uint64

	// noActiveSince is when this standby first heard a standby peer with no
	// active unit in between; zero when not in that situation.
	noActiveSince time.Time

	roleClashReported bool

	stats Stats
}

// peerView is what the machine believes about the peer.
type peerView struct {
	known     bool
	hello     Hello // last hello received
	lastHeard time.Time
	// failed: declared failed after a probe; hold timing stops until a
	// hello is heard again.
	failed bool
	// linkFailed: the failover link is declared failed while the peer
	// answers on data interfaces.
	linkFailed bool
}

// probe is a confirmation on the data interfaces in progress: rounds
// firstRound..round, the current one ending at deadline.
type probe struct {
	running    bool
	firstRound uint64
	round      uint64
	roundsLeft int // rounds still to run after the current one
	deadline   time.Time
	cause      string
	// negotiating: the confirmation asks whether a peer is alive before
	// a starting unit takes the active role alone.
	negotiating bool
	// resume: a suspended active asks the peer's role (setNow).
	resume bool
	// lateRounds counts rounds this unit's own timer ended late, each
	// given back (roundExpired).
	lateRounds int
}

// Stats counts what a Machine has seen and done.
type Stats struct {
	HellosSent     uint64
	HellosReceived uint64
	// HellosMissed counts gaps in the peer's hello sequence numbers.
	HellosMissed uint64
	Transitions  uint64
	Takeovers    uint64
	Probes       uint64
	// ProbeRoundsRetried counts rounds that went unanswered but were
	// not the confirmation's last.
	ProbeRoundsRetried uint64
	// StaleProbeResults counts results for a round no longer in flight.
	StaleProbeResults uint64
	// Suspensions counts resumptions of an active unit after a freeze.
	Suspensions uint64
}

// PeerInfo is the machine's view of the peer, for `show failover`.
type PeerInfo struct {
	// Known is false until the first hello from the peer.
	Known      bool
	Role       Role
	State      State
	Term       uint64
	LastHeard  time.Time
	Failed     bool
	LinkFailed bool
	Interfaces []MonitoredInterface
}

// Status is a snapshot of a Machine for `show failover`.
type Status struct {
	Role       Role
	State      State
	Term       uint64
	LastReason string
	LastChange time.Time
	Interfaces []MonitoredInterface
	Peer       PeerInfo
	Stats      Stats
	// Suspended is set while an active unit that was frozen asks its peer
	// before forwarding again (see Machine.Forwarding).
	Suspended bool
	// ForwardingSince is when Forwarding last became true (zero when it
	// is false): with the time of the observation it bounds an interval
	// in which the unit surely forwarded, so that two units' reports can
	// prove an overlap, or fail to.
	ForwardingSince time.Time
}

// New returns a Machine for cfg in state Disabled; Start begins negotiation.
func New(cfg Config) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Monitored = slices.Clone(cfg.Monitored)
	if cfg.ProbeRounds == 0 {
		cfg.ProbeRounds = DefaultProbeRounds
	}
	return &Machine{cfg: cfg, localDown: make(map[string]bool)}, nil
}

// Start enables failover at now: the machine enters Negotiation and sends its
// first hello. It does nothing if already started.
func (m *Machine) Start(now time.Time) []Action {
	if m.state != Disabled {
		return nil
	}
	m.now = now
	var out []Action
	m.startNegotiation(&out, "failover enabled")
	return out
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Role returns the configured role.
func (m *Machine) Role() Role { return m.cfg.Role }

// IsActive reports whether the unit holds the active role (Just Active or
// Active).
func (m *Machine) IsActive() bool { return m.state.IsActive() }

// Term returns the unit's current term.
func (m *Machine) Term() uint64 { return m.term }

// LastReason returns the reason of the last transition.
func (m *Machine) LastReason() string { return m.reason }

// Status returns a snapshot for `show failover`.
func (m *Machine) Status() Status {
	return Status{
		Role:       m.cfg.Role,
		State:      m.state,
		Term:       m.term,
		LastReason: m.reason,
		LastChange: m.lastChange,
		Interfaces: m.localInterfaces(),
		Peer: PeerInfo{
			Known:      m.peer.known,
			Role:       m.peer.hello.Role,
			State:      m.peer.hello.State,
			Term:       m.peer.hello.Term,
			LastHeard:  m.peer.lastHeard,
			Failed:     m.peer.failed,
			LinkFailed: m.peer.linkFailed,
			Interfaces: slices.Clone(m.peer.hello.Interfaces),
		},
		Stats:     m.stats,
		Suspended: m.suspended,
		ForwardingSince: func() time.Time {
			if m.Forwarding() {
				return m.forwardingSince
			}
			return time.Time{}
		}(),
	}
}

// Forwarding reports whether the unit may forward now: it is active and not
// suspended. An active unit whose process was frozen longer than UnitHold
// (SIGSTOP, a VM pause) may have been replaced by its peer meanwhile, so on
// resuming it stops forwarding until a hello or a probe answer tells it the
// peer's role: the unit renews its data plane's forwarding lease only
// while this holds, so the frames that queued up during the freeze are not
// forwarded by a unit that is no longer the active one.
func (m *Machine) Forwarding() bool { return m.state.IsActive() && !m.suspended }

// Suspended reports whether an active unit that resumed after a freeze has
// stopped forwarding until it knows its peer's role.
func (m *Machine) Suspended() bool { return m.suspended }

// NextDeadline returns when Tick must next be called: the next hello, the
// end of the negotiation window, of the peer's hold time or of a probe,
// whichever comes first. It is zero while Disabled.
func (m *Machine) NextDeadline() time.Time {
	if m.state == Disabled {
		return time.Time{}
	}
	d := m.nextHello
	earliest := func(t time.Time) {
		if !t.IsZero() && t.Before(d) {
			d = t
		}
	}
	if m.state == Negotiation {
		earliest(m.negotiationDeadline)
	}
	if m.probe.running {
		earliest(m.probe.deadline)
	}
	if h, ok := m.holdDeadline(); ok {
		earliest(h)
	}
	if n, ok := m.noActiveDeadline(); ok {
		earliest(n)
	}
	if h, ok := m.handoverDeadline(); ok {
		earliest(h)
	}
	return d
}

func (m *Machine) holdDeadline() (time.Time, bool) {
	if !m.peer.known || m.peer.failed || m.probe.running || m.state == Negotiation {
		return time.Time{}, false
	}
	// The confirmation on the data interfaces starts its length early, so
	// that a silent peer is declared failed when the unit hold expires,
	// not a confirmation's length after it.
	early := min(m.confirmationLength(), m.cfg.UnitHold/2)
	return m.peer.lastHeard.Add(m.cfg.UnitHold - early), true
}

// confirmationLength is how long a confirmation on the data interfaces
// lasts when no round is answered.
func (m *Machine) confirmationLength() time.Duration {
	return time.Duration(m.cfg.ProbeRounds) * m.cfg.InterfaceHold
}

// handoverDeadline is when a standby that asked the active to stand down
// takes the role anyway: the active may be unable to answer.
func (m *Machine) handoverDeadline() (time.Time, bool) {
	if m.handover.IsZero() || !m.state.IsStandby() {
		return time.Time{}, false
	}
	return m.handover.Add(m.cfg.UnitHold), true
}

func (m *Machine) noActiveDeadline() (time.Time, bool) {
	if m.noActiveSince.IsZero() || m.cfg.Role != Primary || !m.state.IsStandby() {
		return time.Time{}, false
	}
	return m.noActiveSince.Add(m.cfg.UnitHold), true
}

// Tick runs the timers due at now: the negotiation window, a probe's timeout,
// the peer's hold time, the both-standby guard and the next hello.
func (m *Machine) Tick(now time.Time) []Action {
	if m.state == Disabled {
		return nil
	}
	var out []Action
	m.setNow(&out, now)
	if m.state == Negotiation && !now.Before(m.negotiationDeadline) {
		m.negotiationExpired(&out)
	}
	if m.probe.running && !now.Before(m.probe.deadline) {
		m.roundExpired(&out)
	}
	if d, ok := m.handoverDeadline(); ok && !now.Before(d) {
		m.takeover(&out, fmt.Sprintf("manual failover (failover active): the active did not stand down within %v", m.cfg.UnitHold))
	}
	if m.suspended && !m.probe.running {
		m.startProbe(&out, "still suspended after a freeze", false)
		m.probe.resume = true
	}
	if h, ok := m.holdDeadline(); ok && !now.Before(h) {
		m.sign(&out, fmt.Sprintf("peer hello timeout (hold %v)", m.cfg.UnitHold))
	}
	if n, ok := m.noActiveDeadline(); ok && !now.Before(n) {
		m.takeover(&out, fmt.Sprintf("no active unit for %v (both units standby): primary becomes active", m.cfg.UnitHold))
	}
	if !now.Before(m.nextHello) {
		m.sendHello(&out)
	}
	return out
}

// setNow advances the machine's clock, noting a resumption after a freeze:
// an active unit then suspends forwarding and asks its peer (resume).
func (m *Machine) setNow(out *[]Action, now time.Time) {
	gap := now.Sub(m.now)
	m.now = now
	if m.state == Disabled || gap <= m.cfg.UnitHold {
		return
	}
	m.resumedAt = now
	if !m.state.IsActive() {
		return
	}
	cause := fmt.Sprintf("resumed after %v without running (frozen?)", gap.Round(time.Millisecond))
	if !m.peer.known || m.peer.failed {
		m.notice(out, cause+"; no live peer known: forwarding on")
		return
	}
	m.suspended = true
	m.stats.Suspensions++
	m.notice(out, cause+": forwarding suspended until the peer's role is known")
	m.probe = probe{} // settle the peer's role now, whatever was under way
	m.startProbe(out, cause, false)
	m.probe.resume = true
}

// unsuspend lets a suspended active forward again.
func (m *Machine) unsuspend(out *[]Action, why string) {
	if m.suspended {
		m.suspended = false
		m.forwardingSince = m.now
		m.notice(out, "forwarding resumed: "+why)
	}
}

// Step feeds one event at now and returns the actions to perform, in order.
// Before Start only InterfaceStatus is taken (recorded); other events are
// ignored.
func (m *Machine) Step(now time.Time, ev Event) []Action {
	var out []Action
	m.setNow(&out, now)
	if m.state == Disabled {
		if e, ok := ev.(InterfaceStatus); ok {
			m.setLocal(e)
		}
		return nil
	}
	switch e := ev.(type) {
	case HelloReceived:
		m.onHello(&out, e.Hello, e.SentAt)
	case PeerConnClosed:
		m.sign(&out, "peer process closed the failover connection")
	case LinkCarrier:
		if !e.Up {
			m.sign(&out, "failover link lost carrier")
		}
	case InterfaceStatus:
		m.onInterface(&out, e)
	case DataProbeResult:
		if !m.probe.running || e.Round < m.probe.firstRound || e.Round > m.probe.round {
			m.stats.StaleProbeResults++
			break // settled already, or an older confirmation's
		}
		how := e.How
		if how == "" {
			how = "on data interfaces"
		}
		m.probeResult(&out, e.PeerAlive, e.PeerActive, e.PeerState, how)
	case ManualFailover:
		m.onManual(&out, e.MakeActive)
	case Reset:
		if m.state != Failed {
			m.notice(&out, "failover reset: unit is not Failed ("+m.state.String()+"), nothing to clear")
			break
		}
		m.recover(&out, "failover reset")
	case BulkSyncDone:
		m.onBulkSync(&out, e.DigestsMatch)
	case SyncLost:
		if m.state.IsStandby() {
			m.resync(&out, "sync lost: "+e.Reason)
		}
	default:
		m.notice(&out, fmt.Sprintf("unknown event %T ignored", ev))
	}
	return out
}

func (m *Machine) onHello(out *[]Action, h Hello, sentAt time.Time) {
	if h.Role == m.cfg.Role {
		if !m.roleClashReported {
			m.roleClashReported = true
			m.notice(out, fmt.Sprintf("hello ignored: peer is also %v; check the failover unit roles", h.Role))
		}
		return
	}
	m.stats.HellosReceived++
	prev := m.peer
	if prev.known && h.Seq > prev.hello.Seq {
		m.stats.HellosMissed += uint64(h.Seq - prev.hello.Seq - 1)
	}
	h.Interfaces = slices.Clone(h.Interfaces)
	m.peer.known = true
	m.peer.hello = h
	m.peer.lastHeard = m.now
	if sentAt.IsZero() || !sentAt.Before(m.resumedAt) {
		m.probe = probe{} // a hello proves the peer alive (not one from a thawed unit's backlog)
	}
	peerBack := m.peer.failed
	if m.peer.failed {
		m.peer.failed = false
		m.emit(out, PeerStatus{Failed: false, Reason: "peer hello received (peer is " + h.State.String() + ")", At: m.now})
	}
	if m.peer.linkFailed {
		m.peer.linkFailed = false
		m.emit(out, FailoverLinkStatus{Up: true, Reason: "hello received on the failover link", At: m.now})
	}
	if !m.state.IsActive() && h.Term > m.term {
		m.term = h.Term
	}
	wasActive := prev.known && prev.hello.State.IsActive()
	if !m.state.IsStandby() || !h.State.IsStandby() {
		m.noActiveSince = time.Time{}
	}

	switch m.state {
	case Negotiation:
		switch {
		case h.State.IsActive():
			m.toStandby(out, fmt.Sprintf("peer is %v (term %d), no preemption", h.State, h.Term))
		case h.State == Failed:
			m.takeover(out, "peer is Failed and no unit is active"+peerDownSuffix(h))
		case h.State == Negotiation && m.cfg.Role == Primary:
			m.takeover(out, "both units negotiating: primary becomes active")
		}
		// Otherwise wait: a negotiating primary will become active, and a
		// standby peer takes over when it hears us negotiating.
	case BulkSync, StandbyReady:
		switch {
		case h.State.IsActive():
		case h.State == Negotiation || h.State == Disabled:
			m.takeover(out, "peer restarted (now "+h.State.String()+"), no active unit")
		case h.State == Failed:
			m.takeover(out, "peer is Failed"+peerDownSuffix(h))
		case wasActive && !m.handover.IsZero():
			m.takeover(out, "manual failover (failover active): the peer stood down (now "+h.State.String()+")")
		case wasActive:
			m.takeover(out, "peer stepped down (now "+h.State.String()+")")
		default:
			if m.noActiveSince.IsZero() {
				m.noActiveSince = m.now
			}
		}
	case JustActive, Active:
		if peerBack && !h.State.IsActive() {
			// A peer declared failed is back and already standing down
			// (a frozen unit thawed and heard our hellos first). It may
			// have forwarded its backlog with the active MAC meanwhile,
			// pulling the switches' entries to its ports: announce again.
			m.notice(out, "peer "+h.State.String()+" again after it was declared failed: announcing the addresses again")
			*out = append(*out, AnnounceAddresses{})
		}
		if !h.State.IsActive() && (sentAt.IsZero() || !sentAt.Before(m.resumedAt)) {
			m.unsuspend(out, "the peer's hello says it is "+h.State.String())
		}
		switch {
		case h.WantActive && h.State.IsStandby():
			m.toStandby(out, "peer asked for the active role (`failover active` on it): standing down")
		case h.State.IsActive():
			// A handover only if this unit was running all along: a
			// thawed unit's last news of the peer is from before its
			// freeze, and the peer took over because of it.
			handover := prev.known && !peerBack && prev.hello.State.IsStandby() && m.now.Sub(m.resumedAt) > m.cfg.UnitHold
			m.twoActives(out, h, handover)
		case h.State == Negotiation:
			// Answer at once so a starting peer need not wait a poll.
			m.sendHello(out)
		default:
			m.checkMonitoring(out, false)
		}
	}
}

// peerDownSuffix names the peer's monitored interfaces that its hello reports
// down.
func peerDownSuffix(h Hello) string {
	var down []string
	for _, i := range h.Interfaces {
		if !i.Up {
			down = append(down, i.Name)
		}
	}
	if len(down) == 0 {
		return ""
	}
	return " (peer's monitored interface " + strings.Join(down, ", ") + " down)"
}

// twoActives applies the two-actives rule: the higher term stays active (it
// took over later and carries the newest state); on equal terms the primary.
//
// wasStandby says the peer was a live standby until this hello: it took the
// role (an operator's `failover active` on it, or it judged this unit
// failed), which is a handover, not two actives meeting.
func (m *Machine) twoActives(out *[]Action, h Hello, wasStandby bool) {
	switch {
	case h.Term > m.term && wasStandby:
		reason := fmt.Sprintf("peer took the active role (term %d > %d): `failover active` on the peer, or it judged this unit failed", h.Term, m.term)
		m.term = h.Term
		m.toStandby(out, reason)
	case h.Term > m.term:
		reason := fmt.Sprintf("two actives met: peer became active later (term %d > %d)", h.Term, m.term)
		m.term = h.Term
		m.toStandby(out, reason)
	case h.Term == m.term && h.Role == Primary:
		m.toStandby(out, fmt.Sprintf("two actives met with equal term %d: primary stays active", h.Term))
	case h.Term == m.term:
		m.notice(out, fmt.Sprintf("two actives met with equal term %d: primary stays active (this unit)", h.Term))
		m.unsuspend(out, "this unit stays active")
		m.reannounce(out)
	default:
		m.notice(out, fmt.Sprintf("two actives met: this unit became active later (term %d > %d), stays active", m.term, h.Term))
		m.unsuspend(out, "this unit stays active")
		m.reannounce(out)
	}
}

// reannounce is what the unit that stays active does when two actives
// meet: the other one (a frozen unit that thawed, the far side of a healed
// partition) may have announced the pair's addresses or used the active
// MAC meanwhile, pulling the switches' entries to its ports; announcing
// again pulls them back. Then a hello tells the other to step down.
func (m *Machine) reannounce(out *[]Action) {
	*out = append(*out, AnnounceAddresses{})
	m.sendHello(out)
}

// maxStandbyWaits bounds the negotiation windows a starting unit leaves to
// a Standby Ready peer to take the role before the primary rule applies.
const maxStandbyWaits = 3

// negotiationExpired: no hello settled the roles within the window. Before
// taking the active role alone the unit asks on the data interfaces: a peer
// that answers there is alive behind a cut failover link (and likely
// active), and taking over would make two actives. An ASA does not ask; it
// becomes active (docs/architecture.md says why falab differs).
func (m *Machine) negotiationExpired(out *[]Action) {
	m.negotiationDeadline = m.now.Add(m.cfg.NegotiationWindow)
	if m.peer.known && m.now.Sub(m.peer.lastHeard) < m.cfg.UnitHold {
		return // the peer is alive and not active; the hello rules settle it
	}
	if m.probe.running {
		return
	}
	m.startProbe(out, fmt.Sprintf("no active peer heard within the negotiation window (%v)", m.cfg.NegotiationWindow), true)
}

// sign starts a confirmation on the data interfaces after a sign of peer
// failure, unless one runs or there is no live peer to suspect.
func (m *Machine) sign(out *[]Action, cause string) {
	if m.state == Negotiation || !m.peer.known || m.peer.failed || m.probe.running {
		return
	}
	m.startProbe(out, cause, false)
}

func (m *Machine) startProbe(out *[]Action, cause string, negotiating bool) {
	m.stats.Probes++
	rounds := m.cfg.ProbeRounds
	if m.peer.linkFailed {
		// The failover link is known cut and the peer answered on the
		// data interfaces: with no hellos, every hold brings another
		// confirmation, and on a loaded machine one of many can miss
		// its answers. Each gets twice the rounds: a peer that really
		// died meanwhile is found a little later; a live one is not
		// taken for dead.
		rounds *= 2
	}
	m.probe = probe{running: true, cause: cause, negotiating: negotiating, roundsLeft: rounds}
	m.nextRound(out)
	m.probe.firstRound = m.probe.round
}

// nextRound starts the confirmation's next round under a new id.
func (m *Machine) nextRound(out *[]Action) {
	m.lastRound++
	m.probe.round = m.lastRound
	m.probe.roundsLeft--
	m.probe.deadline = m.now.Add(m.cfg.InterfaceHold)
	m.emit(out, ProbeDataInterfaces{Round: m.probe.round, Poll: m.cfg.InterfacePoll, Timeout: m.cfg.InterfaceHold, Reason: m.probe.cause})
}

// roundExpired ends a silent round: the next one starts, or after the last
// the peer counts as dead on the data interfaces.
func (m *Machine) roundExpired(out *[]Action) {
	if late := m.now.Sub(m.probe.deadline); late > m.cfg.InterfaceHold && m.probe.lateRounds < m.cfg.ProbeRounds {
		// This unit's own timer fired a round late: it was starved of
		// CPU (or frozen) and could not have read an answer in time. A
		// round it could not watch is no evidence against the peer.
		m.probe.lateRounds++
		m.probe.roundsLeft++
	}
	if m.probe.roundsLeft > 0 {
		m.stats.ProbeRoundsRetried++
		m.nextRound(out)
		return
	}
	m.probeResult(out, false, false, Disabled, fmt.Sprintf("on data interfaces (no answer in %d rounds of %v)", m.probe.round-m.probe.firstRound+1, m.cfg.InterfaceHold))
}

func (m *Machine) probeResult(out *[]Action, alive, peerActive bool, peerState State, how string) {
	if !m.probe.running {
		return // stale: a hello already answered
	}
	cause := m.probe.cause
	negotiating, resume := m.probe.negotiating, m.probe.resume
	m.probe = probe{}
	if negotiating {
		m.negotiationVerdict(out, alive, peerActive, peerState, cause, how)
		return
	}
	if resume && alive && peerActive && m.state.IsActive() {
		// The peer took over while this unit was frozen; its hello
		// would say so too, but a cut failover link may carry none.
		m.suspended = false
		m.toStandby(out, cause+": the peer answers on the data interfaces as the active unit")
		return
	}
	if resume {
		m.unsuspend(out, "the peer "+map[bool]string{true: "answers and is not active", false: "is dead " + how}[alive])
	}
	if alive && (m.state == BulkSync || m.state == StandbyReady) && peerState == Negotiation {
		// The active this unit stands by for is gone: the peer answering
		// is a new process, starting (a restart behind a cut failover
		// link). As when its hello says so, the standby, which holds the
		// tables, takes the role; the starting peer waits for it
		// (negotiationVerdict).
		m.peer.lastHeard = m.now
		m.takeover(out, cause+"; the peer restarted (now "+peerState.String()+", heard "+how+"), no active unit")
		return
	}
	if alive {
		// Re-arm the hold: if the link stays silent, probe again after
		// another UnitHold, so a later death of the peer is caught.
		m.peer.lastHeard = m.now
		if !m.peer.linkFailed {
			m.peer.linkFailed = true
			m.emit(out, FailoverLinkStatus{Up: false, Reason: cause + ", but peer answers on data interfaces: failover link failed, no takeover", At: m.now})
		}
		return
	}
	m.peer.failed = true
	m.peer.linkFailed = false
	reason := cause + ", peer confirmed dead " + how
	m.emit(out, PeerStatus{Failed: true, Reason: reason, At: m.now})
	if m.state.IsStandby() {
		m.takeover(out, reason)
	}
}

// negotiationVerdict settles a negotiation that heard no hello. No answer:
// the unit is alone and takes the active role. An answer: the peer lives
// behind a failover link that carries nothing, so the failover link is
// declared failed; an active peer keeps its role (this unit waits in
// Negotiation and asks again each window), and between two negotiating
// units the primary takes the role, as it would with a working link. A
// peer that answers as Standby Ready holds the tables of an active that is
// gone (this unit, restarted): it takes the role when it hears this unit
// negotiating (probeResult), so this unit waits, for maxStandbyWaits
// windows at most.
func (m *Machine) negotiationVerdict(out *[]Action, alive, peerActive bool, peerState State, cause, how string) {
	if m.state != Negotiation {
		return
	}
	if !alive {
		m.takeover(out, cause+", and no peer answers "+how)
		return
	}
	if !m.peer.linkFailed {
		m.peer.linkFailed = true
		m.emit(out, FailoverLinkStatus{Up: false, Reason: cause + ", but the peer answers on the data interfaces: failover link failed", At: m.now})
	}
	switch {
	case peerActive:
		m.notice(out, "peer is active on the data interfaces but silent on the failover link: waiting in Negotiation (no takeover, no two actives)")
	case peerState == StandbyReady && m.standbyWaits < maxStandbyWaits:
		m.standbyWaits++
		m.notice(out, "peer is Standby Ready on the data interfaces with no active unit: it holds the tables and takes the role; waiting in Negotiation")
	case m.cfg.Role == Primary:
		m.takeover(out, cause+"; the peer answers on the data interfaces but is not active either: primary becomes active")
	default:
		m.notice(out, "peer answers on the data interfaces and is not active: waiting for the primary to take the role")
	}
}

func (m *Machine) onInterface(out *[]Action, e InterfaceStatus) {
	if !m.setLocal(e) {
		return
	}
	switch m.state {
	case Active, JustActive:
		m.checkMonitoring(out, true)
	case Failed:
		if m.failedByInterfaces && len(m.localDown) == 0 {
			m.recover(out, "monitored interfaces recovered")
		}
	}
	if !m.hasHello(*out) {
		// Tell the peer the new interface status now, not a poll later.
		m.sendHello(out)
	}
}

// setLocal records a monitored interface's status and reports whether it
// changed.
func (m *Machine) setLocal(e InterfaceStatus) bool {
	if !slices.Contains(m.cfg.Monitored, e.Name) {
		return false
	}
	if m.localDown[e.Name] == !e.Up {
		return false
	}
	if e.Up {
		delete(m.localDown, e.Name)
	} else {
		m.localDown[e.Name] = true
	}
	return true
}

// checkMonitoring fails the active over when the standby peer has more
// monitored interfaces up than this unit. report asks for a Notice when an
// interface is down but the rule keeps this unit active.
func (m *Machine) checkMonitoring(out *[]Action, report bool) {
	if len(m.localDown) == 0 {
		return
	}
	down := m.downNames()
	total := len(m.cfg.Monitored)
	ours := total - len(down)
	what := "monitored interface " + strings.Join(down, ", ") + " down"
	if !m.peerUsable() || !m.peer.hello.State.IsStandby() {
		if report {
			m.notice(out, what+"; no failover: no standby peer")
		}
		return
	}
	theirs := 0
	for _, i := range m.peer.hello.Interfaces {
		if i.Up && slices.Contains(m.cfg.Monitored, i.Name) {
			theirs++
		}
	}
	if theirs > ours {
		m.fail(out, fmt.Sprintf("%s (peer has %d/%d monitored interfaces up, this unit %d/%d)", what, theirs, total, ours, total))
		return
	}
	if report {
		m.notice(out, fmt.Sprintf("%s; no failover: peer has %d/%d monitored interfaces up, this unit %d/%d", what, theirs, total, ours, total))
	}
}

func (m *Machine) downNames() []string {
	var down []string
	for _, name := range m.cfg.Monitored {
		if m.localDown[name] {
			down = append(down, name)
		}
	}
	return down
}

// peerUsable reports whether the peer is alive and reachable over the
// failover link, so it can be handed the active role.
func (m *Machine) peerUsable() bool {
	return m.peer.known && !m.peer.failed && !m.peer.linkFailed && !m.probe.running
}

func (m *Machine) onManual(out *[]Action, makeActive bool) {
	switch {
	case makeActive && m.state.IsActive():
		m.notice(out, "failover active: unit is already active")
	case makeActive && m.state == Failed:
		m.notice(out, "failover active refused: unit is Failed (use failover reset)")
	case makeActive && m.peerUsable() && m.peer.hello.State.IsActive():
		// Ask the active to give the role up first; take it when it has
		// (onHello), so that the two never forward at once.
		m.handover = m.now
		m.notice(out, "failover active: asking the active peer to stand down first")
		m.sendHello(out)
	case makeActive:
		m.takeover(out, "manual failover (failover active)")
	case !m.state.IsActive():
		m.notice(out, "no failover active: unit is not active ("+m.state.String()+")")
	case !m.peerUsable() || !m.peer.hello.State.IsStandby():
		m.notice(out, "no failover active refused: no standby peer to take over")
	default:
		m.toStandby(out, "manual failover (no failover active)")
	}
}

func (m *Machine) onBulkSync(out *[]Action, match bool) {
	switch {
	case m.state == BulkSync && match:
		m.transition(out, StandbyReady, "bulk sync complete, digests match")
		m.sendHello(out)
	case m.state == BulkSync:
		m.notice(out, "bulk sync: digests differ, requesting bulk sync again")
		m.emit(out, RequestBulkSync{Reason: "digests differ after bulk sync"})
	case m.state == StandbyReady && !match:
		m.resync(out, "digests differ from the active's")
	}
}

// resync sends a standby back to Bulk Sync.
func (m *Machine) resync(out *[]Action, reason string) {
	if m.state != BulkSync {
		m.transition(out, BulkSync, reason)
	} else {
		m.notice(out, reason+", requesting bulk sync again")
	}
	m.emit(out, RequestBulkSync{Reason: reason})
	m.sendHello(out)
}

// takeover moves the unit to Active through Just Active. The action order is
// the contract: state in place (BecomeActive) before addresses are announced.
func (m *Machine) takeover(out *[]Action, cause string) {
	complete := m.state == StandbyReady
	if m.state == BulkSync {
		cause += "; standby was not Standby Ready (bulk sync unfinished): sessions may be lost"
	}
	m.term = max(m.term, m.peer.hello.Term) + 1
	m.handover = time.Time{}
	m.forwardingSince = m.now
	m.stats.Takeovers++
	m.failedByInterfaces = false
	m.transition(out, JustActive, cause)
	m.emit(out, BecomeActive{Reason: cause, Term: m.term, StateComplete: complete})
	m.emit(out, AnnounceAddresses{})
	m.transition(out, Active, "takeover complete: "+cause)
	m.sendHello(out)
}

// toStandby moves the unit into Bulk Sync and asks for the active's tables.
func (m *Machine) toStandby(out *[]Action, reason string) {
	m.suspended = false
	m.transition(out, BulkSync, reason)
	m.emit(out, BecomeStandby{Reason: reason})
	m.emit(out, RequestBulkSync{Reason: reason})
	m.sendHello(out)
}

// fail moves the active to Failed and hands the role to the peer, which takes
// over when it hears the Failed hello.
func (m *Machine) fail(out *[]Action, reason string) {
	m.failedByInterfaces = true
	m.transition(out, Failed, reason)
	m.emit(out, BecomeStandby{Reason: reason})
	m.sendHello(out)
}

// recover leaves Failed: standby under an active peer, else negotiate again.
func (m *Machine) recover(out *[]Action, reason string) {
	m.failedByInterfaces = false
	if m.peerUsable() && m.peer.hello.State.IsActive() {
		m.toStandby(out, reason+": peer is active, becoming standby")
		return
	}
	m.startNegotiation(out, reason+": no active peer, negotiating")
}

func (m *Machine) startNegotiation(out *[]Action, reason string) {
	m.negotiationDeadline = m.now.Add(m.cfg.NegotiationWindow)
	m.standbyWaits = 0
	m.transition(out, Negotiation, reason)
	m.sendHello(out)
}

func (m *Machine) transition(out *[]Action, to State, reason string) {
	if !to.IsActive() {
		m.suspended = false
	}
	from := m.state
	m.state = to
	m.reason = reason
	m.lastChange = m.now
	m.noActiveSince = time.Time{}
	m.stats.Transitions++
	m.emit(out, Transition{From: from, To: to, Reason: reason, At: m.now, Term: m.term})
}

func (m *Machine) notice(out *[]Action, reason string) {
	m.emit(out, Notice{Reason: reason, At: m.now})
}

func (m *Machine) emit(out *[]Action, a Action) { *out = append(*out, a) }

func (m *Machine) sendHello(out *[]Action) {
	m.seq++
	m.stats.HellosSent++
	m.nextHello = m.now.Add(m.cfg.UnitPoll)
	m.emit(out, SendHello{Hello: Hello{
		Role:       m.cfg.Role,
		State:      m.state,
		Term:       m.term,
		Seq:        m.seq,
		Interfaces: m.localInterfaces(),
		WantActive: !m.handover.IsZero() && m.state.IsStandby(),
	}})
}

func (m *Machine) hasHello(out []Action) bool {
	return slices.ContainsFunc(out, func(a Action) bool { _, ok := a.(SendHello); return ok })
}

func (m *Machine) localInterfaces() []MonitoredInterface {
	if len(m.cfg.Monitored) == 0 {
		return nil
	}
	ifs := make([]MonitoredInterface, len(m.cfg.Monitored))
	for i, name := range m.cfg.Monitored {
		ifs[i] = MonitoredInterface{Name: name, Up: !m.localDown[name]}
	}
	return ifs
}
