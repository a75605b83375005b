package fwconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// Problem is one thing wrong with a Config: Path names the field, in the
// JSON names of the schema (interfaces[1].mtu, nat[0].mapped,
// access_lists.outside_in[2].protocol), and Msg says what is wrong and what
// was expected.
type Problem struct {
	Path string
	Msg  string
}

func (p Problem) String() string { return p.Path + ": " + p.Msg }

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("invalid firewall config")

// InvalidError is Validate's error: every problem of the config.
type InvalidError struct {
	Problems []Problem
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return ErrInvalid.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Validate checks c and returns nil or an *InvalidError listing every
// problem, in the order of the config's fields.
func Validate(c Config) error {
	if ps := Check(c); len(ps) > 0 {
		return &InvalidError{Problems: ps}
	}
	return nil
}

// Check returns every problem of c, in the order of the config's fields;
// none means the data plane can compile c.
func Check(c Config) []Problem {
	v := &checker{c: c, ifs: map[string]InterfaceConfig{}}
	v.mode()
	v.interfaces()
	if !v.transparent() { // else reported whole by mode
		v.routes()
		v.nat()
		v.cryptoMaps()
	}
	v.accessLists()
	v.accessGroups()
	v.limits()
	v.inspect()
	v.module()
	v.uauth()
	return v.probs
}

// checker collects the problems of one config.
type checker struct {
	c     Config
	ifs   map[string]InterfaceConfig // by name, the first of each name
	probs []Problem
}

func (v *checker) errf(path, format string, args ...any) {
	v.probs = append(v.probs, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *checker) transparent() bool { return v.c.Mode == ModeTransparent }

// mode checks the mode and what only one mode may have.
func (v *checker) mode() {
	c := v.c
	switch c.Mode {
	case "", ModeRouted:
		if c.ManagementAddr.IsValid() {
			v.errf("management_address", "only transparent mode has a management address (routed mode uses the interface addresses)")
		}
		if c.ManagementStandbyAddr.IsValid() {
			v.errf("management_standby_address", "only transparent mode has a management address (routed mode uses the interface addresses)")
		}
		if len(c.AllowEtherTypes) > 0 {
			v.errf("allow_ether_types", "only transparent mode bridges other EtherTypes")
		}
	case ModeTransparent:
		v.transparentMode()
	default:
		v.errf("mode", "%q is not a mode (expected %s or %s)", c.Mode, ModeRouted, ModeTransparent)
	}
}

func (v *checker) transparentMode() {
	c := v.c
	if len(c.Routes) > 0 {
		v.errf("routes", "transparent mode has no routing (the units bridge within one subnet)")
	}
	if len(c.NAT) > 0 {
		v.errf("nat", "transparent mode has no NAT (the units bridge within one subnet)")
	}
	m := c.ManagementAddr
	if m.IsValid() && !hostPrefix(m) {
		v.errf("management_address", "%s is not an IPv4 address with a /1 to /30 mask", m)
	}
	if s := c.ManagementStandbyAddr; s.IsValid() {
		switch {
		case !m.IsValid():
			v.errf("management_standby_address", "a standby address needs a management_address")
		case !s.Is4() || !m.Masked().Contains(s):
			v.errf("management_standby_address", "%s is outside the management subnet %s (expected an address in it)", s, m.Masked())
		case s == m.Addr():
			v.errf("management_standby_address", "%s is the active management address (expected another address of %s)", s, m.Masked())
		}
	}
	for i, et := range c.AllowEtherTypes {
		if et < 0x0600 {
			v.errf(fmt.Sprintf("allow_ether_types[%d]", i), "%#04x is an 802.3 length, not an EtherType (expected 0x0600 or above)", et)
		}
	}
}

// hostPrefix reports whether p is an IPv4 address with a /1 to /30 mask:
// room for a network, a broadcast and at least two hosts.
func hostPrefix(p netip.Prefix) bool {
	return p.IsValid() && p.Addr().Is4() && p.Bits() > 0 && p.Bits() <= 30
}

// interfaces checks each data interface on its own.
func (v *checker) interfaces() {
	switch n := len(v.c.Interfaces); {
	case n == 0:
		v.errf("interfaces", "none; expected at least one data interface")
	case n > 255:
		v.errf("interfaces", "%d interfaces, at most 255", n)
	}
	for i, ic := range v.c.Interfaces {
		f := fmt.Sprintf("interfaces[%d]", i)
		if ic.Name == "" || len(ic.Name) > 15 {
			v.errf(f+".name", "%q must be 1 to 15 bytes (a Linux interface name)", ic.Name)
		} else if _, dup := v.ifs[ic.Name]; dup {
			v.errf(f+".name", "duplicate interface %q", ic.Name)
		} else {
			v.ifs[ic.Name] = ic
		}
		v.interfaceAddrs(f, ic)
		if len(ic.ActiveMAC) != 6 {
			v.errf(f+".active_mac", "%q is not a 6-byte MAC", ic.ActiveMAC)
		}
		if len(ic.StandbyMAC) != 6 {
			v.errf(f+".standby_mac", "%q is not a 6-byte MAC", ic.StandbyMAC)
		}
		if ic.SecurityLevel < 0 || ic.SecurityLevel > 100 {
			v.errf(f+".security_level", "%d is out of range (expected 0 to 100)", ic.SecurityLevel)
		}
		if ic.MTU != 0 && (ic.MTU < MinMTU || ic.MTU > MaxMTU) {
			v.errf(f+".mtu", "%d is out of range (expected %d to %d, or 0 for %d)", ic.MTU, MinMTU, MaxMTU, DefaultMTU)
		}
	}
}

func (v *checker) interfaceAddrs(f string, ic InterfaceConfig) {
	if v.transparent() {
		if ic.Prefix.IsValid() || ic.StandbyAddr.IsValid() {
			v.errf(f+".address", "transparent mode has no interface addresses (expected the management address instead)")
		}
		return
	}
	if !hostPrefix(ic.Prefix) {
		v.errf(f+".address", "%v is not an IPv4 address with a /1 to /30 mask", ic.Prefix)
		return
	}
	if s := ic.StandbyAddr; s.IsValid() {
		switch {
		case !s.Is4() || !ic.Prefix.Masked().Contains(s):
			v.errf(f+".standby_address", "%s is outside the interface's subnet %s (expected an address in it)", s, ic.Prefix.Masked())
		case s == ic.Prefix.Addr():
			v.errf(f+".standby_address", "%s is the interface's active address (expected another address of %s)", s, ic.Prefix.Masked())
		}
	}
}

// known returns the interface called name, or reports path.
func (v *checker) known(path, name string) (InterfaceConfig, bool) {
	ic, ok := v.ifs[name]
	if !ok {
		names := make([]string, 0, len(v.ifs))
		for n := range v.ifs {
			names = append(names, n)
		}
		sort.Strings(names)
		v.errf(path, "unknown interface %q (expected one of the interfaces: %s)", name, strings.Join(names, ", "))
	}
	return ic, ok
}

func (v *checker) routes() {
	for i, r := range v.c.Routes {
		f := fmt.Sprintf("routes[%d]", i)
		ic, ok := v.known(f+".interface", r.Interface)
		if !r.Prefix.IsValid() || !r.Prefix.Addr().Is4() {
			v.errf(f+".prefix", "%v is not an IPv4 network", r.Prefix)
		}
		switch {
		case !r.NextHop.Is4():
			v.errf(f+".next_hop", "%v is not an IPv4 address", r.NextHop)
		case ok && ic.Prefix.IsValid() && !ic.Prefix.Masked().Contains(r.NextHop):
			v.errf(f+".next_hop", "%s is outside %s's subnet %s (expected a next hop on that interface)", r.NextHop, r.Interface, ic.Prefix.Masked())
		}
	}
}

// nat checks the NAT rules, and that no mapped address serves two rules
// that would fight over it (two kinds, or two static rules).
func (v *checker) nat() {
	seen := map[netip.Addr]NATKind{}
	for i, n := range v.c.NAT {
		f := fmt.Sprintf("nat[%d]", i)
		_, rok := v.known(f+".real_interface", n.RealInterface)
		mi, mok := v.known(f+".mapped_interface", n.MappedInterface)
		if rok && n.RealInterface == n.MappedInterface {
			v.errf(f+".mapped_interface", "is the same as real_interface (expected the other side)")
		}
		if !n.Real.IsValid() || !n.Real.Addr().Is4() {
			v.errf(f+".real", "%v is not an IPv4 network or address", n.Real)
		}
		mapped := n.Mapped
		if !mapped.IsValid() && mok {
			mapped = mi.Prefix.Addr()
		}
		switch {
		case n.Mapped.IsValid() && !n.Mapped.Is4():
			v.errf(f+".mapped", "%v is not an IPv4 address", n.Mapped)
		case n.Mapped.IsValid() && mok && mi.Prefix.IsValid() && !mi.Prefix.Masked().Contains(n.Mapped):
			// The unit proxies ARP for a mapped address on the mapped
			// interface: elsewhere no neighbour would ever ask for it.
			v.errf(f+".mapped", "%s is outside %s's subnet %s (the unit answers ARP for mapped addresses there)", n.Mapped, n.MappedInterface, mi.Prefix.Masked())
		}
		if prev, dup := seen[mapped]; dup && mapped.IsValid() && (prev != n.Kind || n.Kind == NATStatic) {
			v.errf(f+".mapped", "%s is already mapped by a %s rule (expected one address per static rule)", mapped, prev)
		}
		if mapped.IsValid() {
			seen[mapped] = n.Kind
		}
		v.natKind(f, n)
	}
}

func (v *checker) natKind(f string, n NATRule) {
	switch n.Kind {
	case NATStatic:
		if n.Real.IsValid() && n.Real.Bits() != 32 {
			v.errf(f+".real", "%s is a network; a static rule maps one address (expected like 198.18.1.12)", n.Real)
		}
	case NATDynamicPAT:
		low, high := n.PortLow, n.PortHigh
		if low == 0 && high == 0 {
			return // the default pool, 1024-65535
		}
		if low == 0 || high < low {
			v.errf(f+".port_low", "port range %d-%d is empty or includes 0", low, high)
		}
	default:
		v.errf(f+".kind", "%d is not a NAT kind (expected %d, pat, or %d, static)", uint8(n.Kind), NATDynamicPAT, NATStatic)
	}
}

// accessLists checks the entries of every list, lists in name order.
func (v *checker) accessLists() {
	names := make([]string, 0, len(v.c.AccessLists))
	for name := range v.c.AccessLists {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for j, e := range v.c.AccessLists[name] {
			f := fmt.Sprintf("access_lists.%s[%d]", name, j)
			switch e.Protocol {
			case "", "ip", "tcp", "udp", "icmp":
			default:
				v.errf(f+".protocol", "%q is not a protocol (expected ip, tcp, udp or icmp)", e.Protocol)
			}
			if e.Source.IsValid() && !e.Source.Addr().Is4() {
				v.errf(f+".source", "%s is not IPv4", e.Source)
			}
			if e.Destination.IsValid() && !e.Destination.Addr().Is4() {
				v.errf(f+".destination", "%s is not IPv4", e.Destination)
			}
			if e.DstPortHigh != 0 && e.DstPortHigh < e.DstPortLow {
				v.errf(f+".dst_port_high", "port range %d-%d is empty", e.DstPortLow, e.DstPortHigh)
			}
		}
	}
}

// accessGroups checks that each group binds a known list to a known
// interface, one list per interface.
func (v *checker) accessGroups() {
	bound := map[string]string{}
	for i, g := range v.c.AccessGroups {
		f := fmt.Sprintf("access_groups[%d]", i)
		if _, ok := v.c.AccessLists[g.AccessList]; !ok {
			names := make([]string, 0, len(v.c.AccessLists))
			for n := range v.c.AccessLists {
				names = append(names, n)
			}
			slices.Sort(names)
			v.errf(f+".access_list", "unknown access list %q (expected one of the access lists: %s)", g.AccessList, strings.Join(names, ", "))
		}
		if _, ok := v.known(f+".interface", g.Interface); !ok {
			continue
		}
		if prev, dup := bound[g.Interface]; dup {
			v.errf(f+".interface", "%q already has an inbound access list (%s)", g.Interface, prev)
		}
		bound[g.Interface] = f
	}
}

// limits checks the fragment limits and the timeouts: zero takes the
// default, negative is a mistake.
func (v *checker) limits() {
	l := v.c.Fragment
	for _, x := range []struct {
		name string
		neg  bool
	}{{"size", l.Size < 0}, {"chain", l.Chain < 0}, {"timeout", l.Timeout < 0}, {"memory", l.Memory < 0}} {
		if x.neg {
			v.errf("fragment."+x.name, "negative (expected 0 for the default, or more)")
		}
	}
	t := v.c.Timeouts
	for _, x := range []struct {
		name string
		neg  bool
	}{{"conn", t.Conn < 0}, {"half_closed", t.HalfClosed < 0}, {"time_wait", t.TimeWait < 0},
		{"embryonic", t.Embryonic < 0}, {"udp", t.UDP < 0}, {"icmp", t.ICMP < 0}, {"xlate", t.Xlate < 0},
		{"pat_xlate", t.PATXlate < 0}, {"arp", t.ARP < 0}, {"mac_address", t.MACAddress < 0}} {
		if x.neg {
			v.errf("timeouts."+x.name, "negative (expected 0 for the default, or more)")
		}
	}
}
