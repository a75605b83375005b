package fwconfig

// Inspect turns on application inspection engines, as the ASA's default
// policy-map's "inspect" lines do. A nil engine is off.
type Inspect struct {
	// SIP is "inspect sip" on UDP and TCP 5060: sessions, transactions and
	// media pinholes, and NAT of the addresses SIP and SDP carry. Its
	// timeouts are the ASA's defaults (package sip).
	SIP *SIPInspect `json:"sip,omitempty"`
	// CTIQBE is "inspect ctiqbe" on TCP 2748, falab's lab model of the
	// protocol (package ctiqbe): not wire-compatible with Cisco's.
	CTIQBE *CTIQBEInspect `json:"ctiqbe,omitempty"`
}

// SIPInspect is inspect sip's settings; none yet beyond being on.
type SIPInspect struct{}

// CTIQBEInspect is inspect ctiqbe's settings; none yet beyond being on.
type CTIQBEInspect struct{}
