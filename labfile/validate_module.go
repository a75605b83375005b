package labfile

import (
	"fmt"

	"github.com/falab/falab/fwconfig"
)

// ModuleSpec is the security service module of the lab file:
//
//	module:
//	  enabled: true
//	  fail_mode: fail-open          # or fail-close (ASA "ips inline fail-open")
//	  signatures: [{name: evil, pattern: "EVILPAYLOAD"}]
//	  match:                        # the class: ACL entries, TCP only
//	    - {action: permit, protocol: tcp, destination: any, port: "9000"}
//
// Enabled defaults to true when the section is there. fwconfig.Check
// checks the fail mode, the signatures' sizes and the match's protocols.
type ModuleSpec struct {
	Enabled    *bool            `yaml:"enabled"`
	FailMode   string           `yaml:"fail_mode"`
	Signatures []*SignatureSpec `yaml:"signatures"`
	Match      []*ACESpec       `yaml:"match"`
}

// SignatureSpec is one signature: a name for show module and the drop
// log, and the bytes to find.
type SignatureSpec struct {
	Name    string `yaml:"name"`
	Pattern string `yaml:"pattern"`
}

// module resolves the module section, or nil when there is none.
func (v *validator) module(ms *ModuleSpec) *fwconfig.ModuleConfig {
	if ms == nil {
		return nil
	}
	m := &fwconfig.ModuleConfig{Enabled: ms.Enabled == nil || *ms.Enabled, FailMode: ms.FailMode}
	for i, s := range ms.Signatures {
		f := fmt.Sprintf("firewall.module.signatures[%d]", i)
		if s == nil {
			v.errf(f, "empty signature; expected name and pattern")
			continue
		}
		name := s.Name
		if name == "" {
			name = fmt.Sprintf("sig-%d", i+1)
		}
		m.Signatures = append(m.Signatures, fwconfig.ModuleSignature{Name: name, Pattern: s.Pattern})
	}
	for i, a := range ms.Match {
		f := fmt.Sprintf("firewall.module.match[%d]", i)
		if a == nil {
			v.errf(f, "empty entry; expected action, protocol, source, destination")
			continue
		}
		ace := v.ace(f, a)
		m.Match = append(m.Match, fwconfig.ACE{Permit: ace.Permit, Protocol: ace.Protocol, Source: ace.Source,
			Destination: ace.Destination, DstPortLow: ace.PortLow, DstPortHigh: ace.PortHigh})
	}
	return m
}
