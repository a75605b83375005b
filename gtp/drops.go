package gtp

import "fmt"

// DropReason says why the inspector dropped a GTP message, named like a
// line of the ASA's "show asp drop". The zero value is not a drop.
type DropReason uint8

// Drop reasons.
const (
	dropNone               DropReason = iota
	DropMalformed                     // truncated, inconsistent length, missing mandatory IE, undecodable
	DropBadVersion                    // not GTPv1 (GTP' or GTPv0/v2 on a v1 port)
	DropUnknownMessage                // message type GTPv1 does not define for this port (the ASA drops unknown message IDs)
	DropUnexpectedResponse            // response matching no outstanding request
	DropRequestLimit                  // outstanding requests at the request-queue limit
	DropTunnelLimit                   // PDP contexts at the tunnel-limit
	DropUnknownTEID                   // G-PDU or signalling towards a (GSN address, TEID) of no context
	numDropReasons
)

// String returns the reason's asp-drop style name, e.g. "gtp-unknown-teid".
func (r DropReason) String() string {
	switch r {
	case dropNone:
		return "none"
	case DropMalformed:
		return "gtp-malformed"
	case DropBadVersion:
		return "gtp-bad-version"
	case DropUnknownMessage:
		return "gtp-unknown-message"
	case DropUnexpectedResponse:
		return "gtp-unexpected-response"
	case DropRequestLimit:
		return "gtp-request-limit"
	case DropTunnelLimit:
		return "gtp-tunnel-limit"
	case DropUnknownTEID:
		return "gtp-unknown-teid"
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// DropReasons lists every drop reason, for counters and listings.
var DropReasons = []DropReason{DropMalformed, DropBadVersion, DropUnknownMessage,
	DropUnexpectedResponse, DropRequestLimit, DropTunnelLimit, DropUnknownTEID}

// Verdict is the inspector's decision on one message: Drop is zero when it
// passes.
type Verdict struct {
	Drop DropReason
}

// Pass reports whether the message may be forwarded.
func (v Verdict) Pass() bool { return v.Drop == dropNone }

var pass = Verdict{}

func drop(r DropReason) Verdict { return Verdict{Drop: r} }
