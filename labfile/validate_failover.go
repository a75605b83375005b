package labfile

import (
	"github.com/falab/falab/api"
)

// failover resolves the failover section: timers (with their ASA-like
// minimums), MAC mode, key, and the failover and state links.
func (v *validator) failover(s *Spec, l *Lab) Failover {
	fo := Failover{MACMode: MACVirtual}
	fs := s.Failover
	if fs == nil {
		v.errf("failover", "missing; every unit needs a failover link (expected failover.link with primary_address and secondary_address)")
		return fo
	}
	fo.UnitPoll = v.duration("failover.unit_poll", fs.UnitPoll, DefaultUnitPoll)
	fo.UnitHold = v.duration("failover.unit_hold", fs.UnitHold, DefaultUnitHold)
	fo.InterfacePoll = v.duration("failover.interface_poll", fs.InterfacePoll, DefaultInterfacePoll)
	fo.InterfaceHold = v.duration("failover.interface_hold", fs.InterfaceHold, DefaultInterfaceHold)
	fo.NegotiationWindow = v.duration("failover.negotiation_window", fs.NegotiationWindow, DefaultNegotiationWindow)
	if fo.UnitPoll > 0 && fo.UnitHold < 3*fo.UnitPoll {
		v.errf("failover.unit_hold", "%v is less than 3 x unit_poll (%v); expected at least %v, as an ASA requires", fo.UnitHold, fo.UnitPoll, 3*fo.UnitPoll)
	}
	if fo.InterfacePoll > 0 && fo.InterfaceHold < 3*fo.InterfacePoll {
		v.errf("failover.interface_hold", "%v is less than 3 x interface_poll (%v); expected at least %v", fo.InterfaceHold, fo.InterfacePoll, 3*fo.InterfacePoll)
	}
	switch fs.MACMode {
	case "":
	case MACVirtual, MACBurnedIn:
		fo.MACMode = fs.MACMode
	default:
		v.errf("failover.mac_mode", "%q is not a MAC mode (expected virtual or burned-in)", fs.MACMode)
	}
	if fs.HTTPReplication != nil {
		fo.HTTPReplication = *fs.HTTPReplication
	}
	switch k := fs.Key; {
	case k == "" || IsRawKey(k):
	case len(k) >= 2*minRawKeyHex && isHex(k):
		v.errf("failover.key", "%d hex digits: a raw key is exactly %d hex digits (32 bytes, e.g. from openssl rand -hex 32); a passphrase must not be all hex digits", len(k), 2*api.KeyLen)
	case len(k) < 8:
		v.errf("failover.key", "too short (expected a passphrase of at least 8 characters, a raw key of 64 hex digits, or leave it out for a random per-lab key)")
	}
	fo.Key = fs.Key
	fo.NoReplicate = v.replicate(fs.Replicate)
	if fs.Link == nil {
		v.errf("failover.link", "missing; every unit needs a failover link (expected interface, primary_address and secondary_address)")
	} else {
		fo.Link = v.failoverLink("failover.link", fs.Link, "failover")
	}
	if fs.StateLink != nil {
		sl := v.failoverLink("failover.state_link", fs.StateLink, "state")
		if sl.Interface == fo.Link.Interface {
			v.errf("failover.state_link.interface", "%q is the failover link's interface (expected a separate interface, or leave state_link out to share the failover link)", sl.Interface)
		}
		fo.StateLink = &sl
	}
	return fo
}

// failoverLink resolves the failover or state link at field f: both ends'
// addresses, in one subnet.
func (v *validator) failoverLink(f string, ls *FailoverLinkSpec, defIface string) FailoverLink {
	fl := FailoverLink{Interface: ls.Interface}
	if fl.Interface == "" {
		fl.Interface = defIface
	}
	v.checkIfname(f+".interface", fl.Interface)
	fl.PrimaryAddress = v.hostPrefix(f+".primary_address", ls.PrimaryAddress, true)
	fl.SecondaryAddress = v.hostPrefix(f+".secondary_address", ls.SecondaryAddress, true)
	if fl.PrimaryAddress.IsValid() {
		v.claimAddr(fl.PrimaryAddress.Addr(), f+".primary_address", "the primary's "+fl.Interface+" link")
	}
	if fl.SecondaryAddress.IsValid() {
		v.claimAddr(fl.SecondaryAddress.Addr(), f+".secondary_address", "the secondary's "+fl.Interface+" link")
	}
	if fl.PrimaryAddress.IsValid() && fl.SecondaryAddress.IsValid() && fl.PrimaryAddress.Masked() != fl.SecondaryAddress.Masked() {
		v.errf(f+".secondary_address", "%s is not in the primary's subnet %s (expected both ends in one subnet)", fl.SecondaryAddress, fl.PrimaryAddress.Masked())
	}
	return fl
}

// minRawKeyHex is half the length from which an all-hex failover.key is
// taken for a mistyped raw key rather than a passphrase.
const minRawKeyHex = 16

// IsRawKey says whether a lab file's failover.key is a raw key: exactly 64
// hex digits, used as the key itself.
func IsRawKey(s string) bool { return len(s) == 2*api.KeyLen && isHex(s) }

func isHex(s string) bool {
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
