package failover

import "time"

// Event is something the unit tells the Machine through Step. The concrete
// types are the structs below; the set is closed.
type Event interface{ isEvent() }

// HelloReceived carries a hello the unit decoded from the failover link.
// SentAt is when the peer sent it (from its authenticated seal; zero when
// unknown): a unit resuming after a freeze reads a backlog of old hellos,
// and only one sent after it resumed may tell it the peer's role now.
type HelloReceived struct {
	Hello  Hello
	SentAt time.Time
}

// PeerConnClosed reports that the failover connection to the peer closed
// (its process died or closed it): a sign to probe at once, without waiting
// for UnitHold.
type PeerConnClosed struct{}

// LinkCarrier reports the failover interface's carrier. Losing it is a sign
// to probe at once; regaining it changes nothing until hellos flow again.
type LinkCarrier struct{ Up bool }

// InterfaceStatus reports a data interface's link status. Interfaces not in
// Config.Monitored are ignored. Until reported, a monitored interface counts
// as up.
type InterfaceStatus struct {
	Name string
	Up   bool
}

// DataProbeResult answers ProbeDataInterfaces: the peer answered interface
// hellos on a data interface (PeerAlive), or something proves it dead at
// once (PeerAlive false, e.g. its kernel refused a datagram to its failover
// port). Silence needs no result: the machine's own timer ends each round.
type DataProbeResult struct {
	// Round is the ProbeDataInterfaces round this answers. A result for a
	// round of an earlier confirmation (one a hello already settled) is
	// stale and ignored: applied to a newer confirmation it could make the
	// unit take over from a live peer.
	Round     uint64
	PeerAlive bool
	// PeerActive says the peer's answer reported it forwards as the active
	// unit (only meaningful with PeerAlive).
	PeerActive bool
	// PeerState is the failover state the peer's answer reported (only
	// meaningful with PeerAlive; Disabled when the answer did not say).
	PeerState State
	// How says how the answer was reached, for the transition's reason
	// (empty: "on data interfaces").
	How string
}

// ManualFailover is the operator's command: MakeActive true is `failover
// active` (on the standby), false is `no failover active` (on the active).
type ManualFailover struct{ MakeActive bool }

// Reset is `failover reset`: it clears the Failed state.
type Reset struct{}

// BulkSyncDone reports the end of a bulk sync (or a later digest check) from
// replicate: whether the standby's table digests matched the active's.
type BulkSyncDone struct{ DigestsMatch bool }

// SyncLost reports that the standby's replicated state can no longer be
// trusted (a gap in the update stream, a lost connection); it goes back to
// Bulk Sync.
type SyncLost struct{ Reason string }

func (HelloReceived) isEvent()   {}
func (PeerConnClosed) isEvent()  {}
func (LinkCarrier) isEvent()     {}
func (InterfaceStatus) isEvent() {}
func (DataProbeResult) isEvent() {}
func (ManualFailover) isEvent()  {}
func (Reset) isEvent()           {}
func (BulkSyncDone) isEvent()    {}
func (SyncLost) isEvent()        {}

// Action is something the Machine asks the unit to do. The unit performs a
// call's actions in the order returned; the order is part of the contract
// (see BecomeActive). The concrete types are the structs below.
type Action interface{ isAction() }

// Transition records a state change, for the log and `show failover`
// history. Every state change produces exactly one.
type Transition struct {
	From, To State
	Reason   string
	At       time.Time
	// Term is the unit's term after the change.
	Term uint64
}

// SendHello asks the unit to send Hello to the peer on the failover link.
type SendHello struct{ Hello Hello }

// BecomeActive asks the unit to put the replicated state in place and start
// forwarding. It always comes between a Transition to JustActive and an
// AnnounceAddresses, so the unit installs state before any host is told to
// send it traffic.
type BecomeActive struct {
	Reason string
	Term   uint64
	// StateComplete is false when the unit takes over before bulk sync
	// finished (or from Negotiation): sessions may be missing.
	StateComplete bool
}

// AnnounceAddresses asks the unit to announce the pair's addresses on the data
// interfaces (gratuitous ARP, or moving the virtual MAC). It follows
// BecomeActive.
type AnnounceAddresses struct{}

// BecomeStandby asks the unit to stop forwarding and stop answering for the
// pair's addresses. It is sent on every move into a standby or the Failed
// state, also from Negotiation, so the unit must treat it as idempotent.
type BecomeStandby struct{ Reason string }

// RequestBulkSync asks the unit to have replicate request a bulk sync from
// the active; its result comes back as BulkSyncDone.
type RequestBulkSync struct{ Reason string }

// ProbeDataInterfaces asks the unit to send interface hellos carrying Round
// to the peer on each data interface every Poll, and to report an answer
// (or a proof of death) as DataProbeResult with the same Round. A new round
// replaces the one in flight. The machine times the round itself (Timeout
// is for the unit's information): a confirmation is Config.ProbeRounds
// rounds, and the peer counts as dead only if none of them is answered.
type ProbeDataInterfaces struct {
	Round         uint64
	Poll, Timeout time.Duration
	Reason        string
}

// PeerStatus reports a change of verdict on the peer: declared failed, or
// heard again.
type PeerStatus struct {
	Failed bool
	Reason string
	At     time.Time
}

// FailoverLinkStatus reports a change of verdict on the failover link: failed
// while the peer still answers on the data interfaces, or working again.
type FailoverLinkStatus struct {
	Up     bool
	Reason string
	At     time.Time
}

// Notice is a decision worth logging that changes no state (a refused
// command, two actives met and this unit stays active, a monitored interface
// down with no failover).
type Notice struct {
	Reason string
	At     time.Time
}

func (Transition) isAction()          {}
func (SendHello) isAction()           {}
func (BecomeActive) isAction()        {}
func (AnnounceAddresses) isAction()   {}
func (BecomeStandby) isAction()       {}
func (RequestBulkSync) isAction()     {}
func (ProbeDataInterfaces) isAction() {}
func (PeerStatus) isAction()          {}
func (FailoverLinkStatus) isAction()  {}
func (Notice) isAction()              {}
