package sip

import "fmt"

// DropReason says why the inspector dropped a SIP message, named like a
// line of the ASA's "show asp drop". The zero value is not a drop.
type DropReason uint8

// Drop reasons.
const (
	dropNone       DropReason = iota
	DropMalformed             // not a SIP message Parse accepts (see the Err... values)
	DropUnexpected            // a response, ACK, BYE or CANCEL matching no transaction or session; a request the dialog's state forbids
	DropTableFull             // the session, transaction or pinhole table is at its limit
	numDropReasons
)

// String returns the reason's asp-drop style name, e.g. "sip-malformed".
func (r DropReason) String() string {
	switch r {
	case dropNone:
		return "none"
	case DropMalformed:
		return "sip-malformed"
	case DropUnexpected:
		return "sip-unexpected"
	case DropTableFull:
		return "sip-table-full"
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// DropReasons lists every drop reason, for counters and listings.
var DropReasons = []DropReason{DropMalformed, DropUnexpected, DropTableFull}
