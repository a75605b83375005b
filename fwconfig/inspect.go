package fwconfig

import "time"

// Inspect turns on application inspection engines, as the ASA's default
// policy-map's "inspect" lines do. A nil engine is off.
type Inspect struct {
	// GTP is "inspect gtp" with its gtp-map: the PDP context database and
	// the GTP-U filter on UDP 2123 and 2152.
	GTP *GTPInspect `json:"gtp,omitempty"`
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

// GTPInspect is a gtp-map. Zero fields take the ASA's defaults (request
// queue 200, tunnel limit 500, pdp-context and gsn timeouts 30 minutes,
// request timeout 1 minute; package gtp holds them).
type GTPInspect struct {
	RequestQueue      int           `json:"request_queue"`
	TunnelLimit       int           `json:"tunnel_limit"`
	PDPContextTimeout time.Duration `json:"pdp_context_timeout"`
	GSNTimeout        time.Duration `json:"gsn_timeout"`
	RequestTimeout    time.Duration `json:"request_timeout"`
}

// inspect checks the engines' settings: zero takes the default, negative
// is a mistake.
func (v *checker) inspect() {
	g := v.c.Inspect.GTP
	if g == nil {
		return
	}
	for _, x := range []struct {
		name string
		neg  bool
	}{{"request_queue", g.RequestQueue < 0}, {"tunnel_limit", g.TunnelLimit < 0},
		{"pdp_context_timeout", g.PDPContextTimeout < 0}, {"gsn_timeout", g.GSNTimeout < 0},
		{"request_timeout", g.RequestTimeout < 0}} {
		if x.neg {
			v.errf("inspect.gtp."+x.name, "negative (expected 0 for the ASA's default, or more)")
		}
	}
}
