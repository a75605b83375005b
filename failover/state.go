package failover

import "strconv"

// Role is a unit's configured place in the pair (`failover lan unit`). It
// never changes at run time; it breaks ties.
type Role uint8

// Roles. The zero value is not a role, so an unset Config is rejected.
const (
	Primary   Role = 1
	Secondary Role = 2
)

// String returns the role as `show failover` prints it.
func (r Role) String() string {
	switch r {
	case Primary:
		return "Primary"
	case Secondary:
		return "Secondary"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// Valid reports whether r is Primary or Secondary.
func (r Role) Valid() bool { return r == Primary || r == Secondary }

// State is a unit's failover state as `show failover` reports it.
type State uint8

// States, in the order a unit usually passes through them.
const (
	// Disabled: the machine exists but Start has not been called.
	Disabled State = iota
	// Negotiation: listening for the peer to decide which role to take.
	Negotiation
	// BulkSync: standby, receiving the active's tables in bulk.
	BulkSync
	// StandbyReady: standby with tables in step with the active.
	StandbyReady
	// JustActive: taking over; replicated state is being put in place and
	// addresses are not announced yet.
	JustActive
	// Active: forwarding and owning the pair's addresses.
	Active
	// Failed: a monitored interface failed; the unit does not forward.
	Failed

	numStates
)

var stateNames = [numStates]string{
	Disabled:     "Disabled",
	Negotiation:  "Negotiation",
	BulkSync:     "Bulk Sync",
	StandbyReady: "Standby Ready",
	JustActive:   "Just Active",
	Active:       "Active",
	Failed:       "Failed",
}

// String returns the state as `show failover` prints it.
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool { return s < numStates }

// IsActive reports whether a unit in state s owns the active role (Just
// Active counts: it is taking the role).
func (s State) IsActive() bool { return s == JustActive || s == Active }

// IsStandby reports whether a unit in state s is a standby (Bulk Sync or
// Standby Ready), that is a unit able to take over.
func (s State) IsStandby() bool { return s == BulkSync || s == StandbyReady }
