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
