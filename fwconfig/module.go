package fwconfig

import "fmt"

// ModuleConfig is the security service module (the ASA's AIP-SSM/SFR
// slot): "class-map" Match selects the TCP connections diverted to it,
// "ips inline fail-open|fail-close" is FailMode, and Signatures are the
// byte strings it drops a flow for. Its state is never replicated.
type ModuleConfig struct {
	Enabled    bool              `json:"enabled"`
	FailMode   string            `json:"fail_mode"` // ModuleFailOpen (default when empty) or ModuleFailClose
	Signatures []ModuleSignature `json:"signatures"`
	// Match is an access list: permit entries divert, deny entries exempt,
	// no match is not diverted. Only TCP is ever diverted.
	Match []ACE `json:"match"`
}

// ModuleSignature is one byte string the module looks for, in either
// direction of a flow, across segment boundaries.
type ModuleSignature struct {
	Name    string `json:"name"`
	Pattern string `json:"pattern"`
}

// Fail modes of ModuleConfig.FailMode.
const (
	ModuleFailOpen  = "fail-open"
	ModuleFailClose = "fail-close"
)

// moduleMaxPatternBytes is package module's bound on the signatures' total
// length (its automaton takes 1 KiB per byte).
const moduleMaxPatternBytes = 16 * 1024

// module checks the service module's configuration.
func (v *checker) module() {
	m := v.c.Module
	if m == nil || !m.Enabled {
		return
	}
	switch m.FailMode {
	case "", ModuleFailOpen, ModuleFailClose:
	default:
		v.errf("module.fail_mode", "%q is not a fail mode (expected %s or %s)", m.FailMode, ModuleFailOpen, ModuleFailClose)
	}
	if len(m.Signatures) == 0 {
		v.errf("module.signatures", "an enabled module needs at least one signature")
	}
	total := 0
	for i, s := range m.Signatures {
		if s.Pattern == "" {
			v.errf(fmt.Sprintf("module.signatures[%d].pattern", i), "empty pattern")
		}
		total += len(s.Pattern)
	}
	if total > moduleMaxPatternBytes {
		v.errf("module.signatures", "patterns total %d bytes, the module takes at most %d", total, moduleMaxPatternBytes)
	}
	if len(m.Match) == 0 {
		v.errf("module.match", "an enabled module needs a match list (the traffic diverted to it)")
	}
	for i, a := range m.Match {
		if a.Protocol != "tcp" && a.Protocol != "ip" && a.Protocol != "" {
			v.errf(fmt.Sprintf("module.match[%d].protocol", i), "the module inspects TCP only (found %s)", a.Protocol)
		}
	}
}
