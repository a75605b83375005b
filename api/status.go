package api

import "time"

// Status is a unit's answer to `show failover`: who it is, its role and
// state, its peer as it sees it, and the replication counters.
type Status struct {
	Unit      string    `json:"unit"`
	Peer      string    `json:"peer"`
	Lab       string    `json:"lab"`
	Role      string    `json:"role"` // primary or secondary
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	State     string    `json:"state"` // Active, Standby Ready, Bulk Sync, ...
	Active    bool      `json:"active"`
	// Forwarding is false for an active unit that resumed after a freeze
	// and has not yet settled its role with the peer (its data plane's
	// lease lapsed); always false on a standby.
	Forwarding bool `json:"forwarding"`
	// ForwardingSince is when forwarding last began; At is when this
	// status was taken. Together they bound an interval in which the unit
	// surely forwarded (the chaos sampler compares two units' intervals).
	ForwardingSince time.Time `json:"forwarding_since,omitzero"`
	At              time.Time `json:"at"`
	Term            uint64    `json:"term"`
	LastReason      string    `json:"last_reason"`
	LastChange      time.Time `json:"last_change"`
	MACMode         string    `json:"mac_mode"`
	Mode            string    `json:"mode"` // routed or transparent
	HTTPReplication bool      `json:"http_replication"`

	PeerState      string    `json:"peer_state"`
	PeerKnown      bool      `json:"peer_known"`
	PeerLastHeard  time.Time `json:"peer_last_heard"`
	PeerFailed     bool      `json:"peer_failed"`
	FailoverLinkUp bool      `json:"failover_link_up"`
	LinkReason     string    `json:"failover_link_reason,omitempty"`

	Monitored     []MonitoredStatus `json:"monitored"`
	PeerMonitored []MonitoredStatus `json:"peer_monitored"`

	Hellos       HelloStats       `json:"hellos"`
	HelloRejects HelloRejects     `json:"hello_rejects"`
	Counts       TableCounts      `json:"counts"`
	Replication  ReplicationStats `json:"replication"`
	// Stateful and Local are the replication view (view.go).
	Stateful []StatefulTable `json:"stateful,omitempty"`
	Local    []LocalTable    `json:"local,omitempty"`
	// Module is the service module; nil when the unit has none.
	Module *ModuleInfo `json:"module,omitempty"`

	History []TransitionInfo `json:"history"`
}

// MonitoredStatus is one monitored interface's link.
type MonitoredStatus struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
}

// HelloStats counts the failover link's hellos.
type HelloStats struct {
	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
	Missed   uint64 `json:"missed"`
	// The delay of the last accepted hellos (at most 4096), from the
	// peer's send time (in the hello's authenticated seal) to this unit's
	// read: the link, the socket's queue, and the wait for the unit's
	// reader to run, which a saturated data path could stretch to 10 ms.
	DelaySamples int           `json:"delay_samples"`
	DelayP50     time.Duration `json:"delay_p50_ns"`
	DelayP99     time.Duration `json:"delay_p99_ns"`
	DelayMax     time.Duration `json:"delay_max_ns"`
}

// HelloRejects counts the hellos refused on the failover link and the
// interface hellos refused on the data interfaces, by reason.
type HelloRejects struct {
	FailoverLink   RejectCounts `json:"failover_link"`
	DataInterfaces RejectCounts `json:"data_interfaces"`
}

// RejectCounts counts refused messages by reason. PortCheck is the peer's
// own datagram asking whether this unit's hello port is open (no failure);
// RateLimited applies to interface hellos only.
type RejectCounts struct {
	BadAuth     uint64 `json:"bad_auth"`
	Stale       uint64 `json:"stale"`
	Replay      uint64 `json:"replay"`
	PortCheck   uint64 `json:"port_check"`
	RateLimited uint64 `json:"rate_limited"`
	Malformed   uint64 `json:"malformed"`
}

// TableCounts are the sizes of the unit's tables.
type TableCounts struct {
	Conns  int `json:"conns"`
	Xlates int `json:"xlates"`
	ARP    int `json:"arp"`
	Bridge int `json:"bridge"`
}

// TransitionInfo is one state change, for the history.
type TransitionInfo struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
	Term   uint64    `json:"term"`
}

// Event is one entry of a unit's timeline: a role change, a hello missed,
// a GARP sent, a fault seen. Times are wall-clock with millisecond meaning.
// The lab's own timeline uses the same form, with Unit "lab".
type Event struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Unit string    `json:"unit"`
	Kind string    `json:"kind"` // e.g. transition, peer-failed, garp, sync, link
	Msg  string    `json:"msg"`
}
