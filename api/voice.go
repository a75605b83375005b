package api

import (
	"context"
	"time"
)

// Voice is a unit's voice inspection state: SIP's tables (replicated) and
// the CTIQBE lab model's session table (not replicated, as on an ASA).
// An engine that is off is nil.
type Voice struct {
	SIP    *SIPInspection    `json:"sip,omitempty"`
	CTIQBE *CTIQBEInspection `json:"ctiqbe,omitempty"`
}

// SIPInspection is inspect sip on one unit.
type SIPInspection struct {
	// Replicated says whether the unit replicates the tables (false: the
	// lab's failover.replicate.sip negative control).
	Replicated   bool         `json:"replicated"`
	Sessions     []SIPSession `json:"sessions"`
	Transactions int          `json:"transactions"`
	Pinholes     int          `json:"pinholes"`
	// Show and ServicePolicy are `show sip` and `show service-policy
	// inspect sip` as package sip words them (the ASA's formats).
	Show          string `json:"show"`
	ServicePolicy string `json:"service_policy"`
}

// SIPSession is one SIP session (dialog): the replicated record and this
// unit's idle time.
type SIPSession struct {
	CallID string        `json:"call_id"`
	State  string        `json:"state"` // as show sip words it: Call init, Active, ...
	Idle   time.Duration `json:"idle"`
}

// CTIQBEInspection is inspect ctiqbe, falab's lab model of CTIQBE (not
// wire-compatible), on one unit. Its table is never replicated.
type CTIQBEInspection struct {
	Model     string          `json:"model"` // the label every rendering carries
	Sessions  []CTIQBESession `json:"sessions"`
	NoSession uint64          `json:"no_session"` // ctiqbe-no-session drops
	// Show is `show ctiqbe` as package ctiqbe words it (the ASA's layout).
	Show string `json:"show"`
}

// CTIQBESession is one registered CTI device's connection.
type CTIQBESession struct {
	Phone   string `json:"phone"`   // address:port of the CTI device
	Manager string `json:"manager"` // address:port of the CallManager
	Device  string `json:"device"`
	State   string `json:"state"` // registering, registered, in call
	Calls   int    `json:"calls"`
}

// Voice returns the unit's voice inspection state.
func (c *Client) Voice(ctx context.Context) (Voice, error) {
	var v Voice
	return v, c.do(ctx, "GET", "/v1/voice", nil, &v)
}
