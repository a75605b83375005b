package render

import (
	"fmt"
	"io"

	"github.com/falab/falab/api"
)

// ShowSIP writes `show sip` (the ASA's format, as the unit's SIP engine
// words it) and whether the unit replicates the tables.
func ShowSIP(w io.Writer, v api.Voice) error {
	if v.SIP == nil {
		_, err := io.WriteString(w, "SIP inspection is off (firewall.inspect.sip)\n")
		return err
	}
	if _, err := io.WriteString(w, v.SIP.Show); err != nil {
		return err
	}
	return replicatedLine(w, v.SIP.Replicated)
}

// ShowSIPServicePolicy writes `show service-policy inspect sip`.
func ShowSIPServicePolicy(w io.Writer, v api.Voice) error {
	if v.SIP == nil {
		_, err := io.WriteString(w, "SIP inspection is off (firewall.inspect.sip)\n")
		return err
	}
	_, err := io.WriteString(w, "Global policy:\n  Service-policy: global_policy\n    Class-map: inspection_default\n"+v.SIP.ServicePolicy)
	return err
}

// ShowCTIQBE writes `show ctiqbe` (the ASA's layout), headed by the lab
// model's label: falab's CTIQBE is a model of the protocol's behaviour.
func ShowCTIQBE(w io.Writer, v api.Voice) error {
	if v.CTIQBE == nil {
		_, err := io.WriteString(w, "CTIQBE inspection is off (firewall.inspect.ctiqbe)\n")
		return err
	}
	_, err := io.WriteString(w, v.CTIQBE.Show)
	return err
}

func replicatedLine(w io.Writer, on bool) error {
	s := "! SIP Session, SIP Tx, SIP Pinhole: replicated to the standby\n"
	if !on {
		s = "! SIP tables NOT replicated (failover.replicate.sip: false, a negative control)\n"
	}
	_, err := fmt.Fprint(w, s)
	return err
}

// VoiceRow is one row of the voice tables: a SIP session or a CTIQBE
// session, with whether its table is replicated.
type VoiceRow struct {
	Engine     string // SIP, or CTIQBE (lab model)
	Session    string // Call-ID, or phone -> CallManager
	State      string
	Replicated string
}

// VoiceRows lists a unit's SIP and CTIQBE sessions, SIP first.
func VoiceRows(v api.Voice) []VoiceRow {
	var out []VoiceRow
	if s := v.SIP; s != nil {
		repl := "replicated"
		if !s.Replicated {
			repl = "NOT replicated (lab knob)"
		}
		for _, se := range s.Sessions {
			out = append(out, VoiceRow{Engine: "SIP", Session: se.CallID, State: se.State, Replicated: repl})
		}
	}
	if c := v.CTIQBE; c != nil {
		for _, se := range c.Sessions {
			out = append(out, VoiceRow{Engine: "CTIQBE (lab model)", Session: se.Phone + " -> " + se.Manager,
				State: fmt.Sprintf("%s, %d call(s)", se.State, se.Calls), Replicated: "NOT replicated (as on an ASA)"})
		}
	}
	return out
}

// Voice is the Voice tab's table: SIP sessions (replicated) and CTIQBE
// sessions (never replicated) of both units side by side.
var Voice = Spec[VoiceRow]{
	Columns: []Column{
		{Title: "Engine", Width: 18}, {Title: "Session", Width: 44}, {Title: "State", Width: 22, PerUnit: true},
		{Title: "Table", Width: 29},
	},
	Key:     func(r *VoiceRow) string { return r.Engine + " " + r.Session },
	Cells:   func(r *VoiceRow) []string { return []string{r.Engine, r.Session, r.State, r.Replicated} },
	Standby: []StandbyColumn{{Column: Column{Title: "Standby", Width: 22}, From: 2, After: 2}},
}
