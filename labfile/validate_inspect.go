package labfile

import (
	"slices"
	"time"

	"github.com/falab/falab/fwconfig"
)

// InspectSpec turns on application inspection engines (the ASA's
// "inspect" lines under the global policy).
type InspectSpec struct {
	GTP    *GTPInspectSpec `yaml:"gtp"`
	SIP    *EngineSpec     `yaml:"sip"`
	CTIQBE *EngineSpec     `yaml:"ctiqbe"`
}

// EngineSpec turns on an inspection engine that has no settings of its
// own (the ASA's defaults apply).
type EngineSpec struct {
	// Enable turns the engine on (default true once the section is there).
	Enable *bool `yaml:"enable"`
}

// on reports whether the engine's section turns it on.
func (e *EngineSpec) on() bool { return e != nil && (e.Enable == nil || *e.Enable) }

// GTPInspectSpec is "inspect gtp" and its gtp-map. Omitted values take the
// ASA's defaults: request_queue 200, tunnel_limit 500, timeouts
// pdp_context 30m, gsn 30m, request 1m.
type GTPInspectSpec struct {
	// Enable turns the engine on (default true once the section is there).
	Enable       *bool            `yaml:"enable"`
	RequestQueue *int             `yaml:"request_queue"`
	TunnelLimit  *int             `yaml:"tunnel_limit"`
	Timeouts     *GTPTimeoutsSpec `yaml:"timeouts"`
}

// GTPTimeoutsSpec are the gtp-map's timeouts.
type GTPTimeoutsSpec struct {
	PDPContext *Duration `yaml:"pdp_context"`
	GSN        *Duration `yaml:"gsn"`
	Request    *Duration `yaml:"request"`
}

// ASA defaults of a gtp-map (Cisco ASA CLI Configuration Guide, "Defaults
// for GTP Inspection"), written into the resolved lab so that `falab
// validate` and the unit show the values in force.
const (
	defaultGTPRequestQueue      = 200
	defaultGTPTunnelLimit       = 500
	DefaultGTPPDPContextTimeout = 30 * time.Minute
	DefaultGTPGSNTimeout        = 30 * time.Minute
	DefaultGTPRequestTimeout    = time.Minute
)

// ReplicateSpec turns the replication of an engine's table off (a
// negative control: the ASA always replicates them). Omitted means on.
type ReplicateSpec struct {
	// GTP is the PDP context database (table gtp-pdp).
	GTP *bool `yaml:"gtp"`
	// IPsec is the IKE and IPsec SA table (ipsec-sa).
	IPsec *bool `yaml:"ipsec"`
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
	if is.GTP == nil || (is.GTP.Enable != nil && !*is.GTP.Enable) {
		return out
	}
	g := is.GTP
	m := &fwconfig.GTPInspect{RequestQueue: defaultGTPRequestQueue, TunnelLimit: defaultGTPTunnelLimit}
	for _, x := range []struct {
		f   string
		src *int
		dst *int
	}{{"request_queue", g.RequestQueue, &m.RequestQueue}, {"tunnel_limit", g.TunnelLimit, &m.TunnelLimit}} {
		if x.src == nil {
			continue
		}
		if *x.src < 1 {
			v.errf("firewall.inspect.gtp."+x.f, "%d (expected at least 1, or leave it out for the ASA's default)", *x.src)
		}
		*x.dst = *x.src
	}
	var t GTPTimeoutsSpec
	if g.Timeouts != nil {
		t = *g.Timeouts
	}
	m.PDPContextTimeout = v.duration("firewall.inspect.gtp.timeouts.pdp_context", t.PDPContext, DefaultGTPPDPContextTimeout)
	m.GSNTimeout = v.duration("firewall.inspect.gtp.timeouts.gsn", t.GSN, DefaultGTPGSNTimeout)
	m.RequestTimeout = v.duration("firewall.inspect.gtp.timeouts.request", t.Request, DefaultGTPRequestTimeout)
	out.GTP = m
	return out
}

// Replicated engine tables a lab may turn off, by their names in `show
// failover` and the unit config.
const TableGTP = "gtp-pdp"

// TableIPsec is the IKE and IPsec SA table's name (unit's engine_ipsec.go).
const TableIPsec = "ipsec-sa"

// replicate resolves failover.replicate into the tables not replicated.
func (v *validator) replicate(rs *ReplicateSpec) []string { return NoReplicate(rs) }

// NoReplicate names the engine tables rs turns off, sorted (a scenario's
// replicate: override uses it too).
func NoReplicate(rs *ReplicateSpec) []string {
	var off []string
	if rs == nil {
		return nil
	}
	if rs.GTP != nil && !*rs.GTP {
		off = append(off, TableGTP)
	}
	if rs.IPsec != nil && !*rs.IPsec {
		off = append(off, TableIPsec)
	}
	if rs.SIP != nil && !*rs.SIP {
		off = append(off, TableSIP)
	}
	slices.Sort(off)
	return off
}

// Off returns the engine tables rs turns off, sorted (NoReplicate).
func (rs *ReplicateSpec) Off() []string { return NoReplicate(rs) }
