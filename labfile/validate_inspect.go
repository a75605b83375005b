package labfile

import (
	"slices"

	"github.com/falab/falab/fwconfig"
)

// InspectSpec turns on application inspection engines (the ASA's
// "inspect" lines under the global policy).
type InspectSpec struct {
	SIP    *EngineSpec `yaml:"sip"`
	CTIQBE *EngineSpec `yaml:"ctiqbe"`
}

// EngineSpec turns on an inspection engine that has no settings of its
// own (the ASA's defaults apply).
type EngineSpec struct {
	// Enable turns the engine on (default true once the section is there).
	Enable *bool `yaml:"enable"`
}

// on reports whether the engine's section turns it on.
func (e *EngineSpec) on() bool { return e != nil && (e.Enable == nil || *e.Enable) }

// ReplicateSpec turns the replication of an engine's table off (a
// negative control: the ASA always replicates them). Omitted means on.
type ReplicateSpec struct {
	// SIP is SIP inspection's session, transaction and pinhole tables
	// (table sip).
	SIP *bool `yaml:"sip"`
}

// TableSIP is SIP inspection's replicated table in `show failover` and
// the unit config.
const TableSIP = "sip"

// inspect resolves firewall.inspect.
func (v *validator) inspect(is *InspectSpec) fwconfig.Inspect {
	var out fwconfig.Inspect
	if is == nil {
		return out
	}
	if is.SIP.on() {
		out.SIP = &fwconfig.SIPInspect{}
	}
	if is.CTIQBE.on() {
		out.CTIQBE = &fwconfig.CTIQBEInspect{}
	}
	return out
}

// replicate resolves failover.replicate into the tables not replicated.
func (v *validator) replicate(rs *ReplicateSpec) []string { return rs.Off() }

// Off returns the engine tables rs turns off, sorted (a scenario's
// replicate: override uses it too).
func (rs *ReplicateSpec) Off() []string {
	if rs == nil {
		return nil
	}
	var off []string
	if rs.SIP != nil && !*rs.SIP {
		off = append(off, TableSIP)
	}
	slices.Sort(off)
	return off
}
