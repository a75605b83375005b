package api

import (
	"net/netip"
	"time"
)

// The replication view: what the standby gets and what it does not. A
// unit lists, in its Status, each replicated table with its entries on this
// unit (Stateful) and each table it keeps to itself with why (Local); the
// stream counters per table are in Replication.Tables. `falab show
// failover` and the TUI put two units' lists side by side as the ASA's
// "Stateful Failover Logical Update Statistics".

// StatefulTable is one replicated table and its live entries on this unit.
// Table is the stream's name for it (conn, xlate, arp, bridge, or an
// engine's, e.g. gtp-pdp). Entries is -1 when the table cannot count
// itself.
type StatefulTable struct {
	Table   string `json:"table"`
	Entries int    `json:"entries"`
}

// LocalTable is a table this unit keeps and never sends to its peer:
// the uauth table, the routes, the service module's flows, HTTP
// connections while HTTP replication is off, CTIQBE sessions. Reason says
// why it is local.
type LocalTable struct {
	Table   string `json:"table"`
	Entries int    `json:"entries"`
	Reason  string `json:"reason"`
}

// ModuleInfo is a unit's security service module, for `show module` and
// `show failover`. Text is `show module` as the ASA prints it (only in the
// module's own answer, not in Status).
type ModuleInfo struct {
	Unit               string `json:"unit"`
	Slot               string `json:"slot"`
	Status             string `json:"status"` // Up or Down
	FailMode           string `json:"fail_mode"`
	Signatures         int    `json:"signatures"`
	Flows              int    `json:"flows"`
	Packets            uint64 `json:"packets"`
	Detected           uint64 `json:"detected"`
	DetectedDrops      uint64 `json:"detected_drops"`
	UninspectedFlows   uint64 `json:"uninspected_flows"`
	UninspectedPackets uint64 `json:"uninspected_packets"`
	FailCloseDrops     uint64 `json:"fail_close_drops"`
	Text               string `json:"text,omitempty"`
}

// UAuthInfo is a unit's uauth table, for `show uauth`: never replicated,
// so the two units' tables differ. Text is the ASA's `show uauth`.
type UAuthInfo struct {
	Unit     string       `json:"unit"`
	Entries  []UAuthEntry `json:"entries"`
	Steered  int          `json:"steered"`  // flows steered to the listener now
	Listener string       `json:"listener"` // where the listener runs, or why it does not
	Text     string       `json:"text"`
}

// UAuthEntry is one authenticated source.
type UAuthEntry struct {
	User               string     `json:"user"`
	Addr               netip.Addr `json:"addr"`
	AuthenticatedAt    time.Time  `json:"authenticated_at"`
	AbsoluteDeadline   time.Time  `json:"absolute_deadline,omitzero"`
	InactivityDeadline time.Time  `json:"inactivity_deadline,omitzero"`
}
