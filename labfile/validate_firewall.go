package labfile

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// firewall resolves the firewall section both units run: data interfaces,
// the units' burned-in MACs, the management address (transparent mode),
// routes, NAT, access lists and groups, and timeouts.
func (v *validator) firewall(s *Spec, l *Lab) Firewall {
	fw := Firewall{Timeouts: defaultTimeouts, AccessLists: map[string][]ACE{}}
	fs := s.Firewall
	if fs == nil {
		v.errf("firewall", "missing; expected at least firewall.interfaces")
		return fw
	}
	transparent := l.Mode == "transparent"
	if len(fs.Interfaces) < 2 {
		v.errf("firewall.interfaces", "a firewall needs at least two data interfaces (expected like inside and outside)")
	}
	for i, is := range fs.Interfaces {
		f := fmt.Sprintf("firewall.interfaces[%d]", i)
		if is == nil {
			v.errf(f, "empty interface; expected name, security_level, address")
			continue
		}
		fw.Interfaces = append(fw.Interfaces, v.firewallInterface(s, l, f, is))
	}
	v.unitMACs(s, l, fw.Interfaces)
	v.management(&fw, fs, transparent)
	fw.Routes = v.firewallRoutes(fs)
	fw.NAT = v.natRules(fs)
	v.accessLists(&fw, fs)
	fw.AccessGroups = v.accessGroups(fs)
	if t := fs.Timeouts; t != nil {
		fw.Timeouts = v.timeouts(t)
	}
	fw.Inspect = v.inspect(fs.Inspect)
	return fw
}

// firewallInterface resolves data interface is (at field f): name, security
// level, monitoring, the active and standby addresses (routed mode) and
// virtual MACs.
func (v *validator) firewallInterface(s *Spec, l *Lab, f string, is *FirewallInterfaceSpec) FirewallInterface {
	transparent := l.Mode == "transparent"
	fi := FirewallInterface{Name: is.Name, Monitor: true}
	v.checkIfname(f+".name", is.Name)
	if is.Name == l.Failover.Link.Interface || (l.Failover.StateLink != nil && is.Name == l.Failover.StateLink.Interface) {
		v.errf(f+".name", "%q is the failover or state link's interface (expected a separate data interface)", is.Name)
	}
	if is.SecurityLevel == nil {
		v.errf(f+".security_level", "missing; expected 0 (least trusted) to 100 (most trusted)")
	} else {
		fi.SecurityLevel = *is.SecurityLevel
	}
	if is.Monitor != nil {
		fi.Monitor = *is.Monitor
	}
	if transparent {
		if is.Address != "" || is.StandbyAddress != "" {
			v.errf(f+".address", "transparent mode has no interface addresses (expected firewall.management instead)")
		}
	} else {
		fi.Addr = v.hostPrefix(f+".address", is.Address, true)
		if fi.Addr.IsValid() {
			v.claimAddr(fi.Addr.Addr(), f+".address", "the active address of "+is.Name)
		}
		if is.StandbyAddress == "" {
			v.errf(f+".standby_address", "missing; expected the standby unit's address on %s (an ASA pair needs one to monitor the interface)", is.Name)
		} else {
			fi.StandbyAddr = v.addr(f+".standby_address", is.StandbyAddress)
			if fi.StandbyAddr.IsValid() {
				v.claimAddr(fi.StandbyAddr, f+".standby_address", "the standby address of "+is.Name)
			}
		}
	}
	if is.VirtualMAC != "" {
		fi.VirtualMAC = v.mac(f+".virtual_mac", is.VirtualMAC)
	} else {
		fi.VirtualMAC = deriveMAC(s.Name, "virtual-mac", is.Name, "active")
	}
	if is.StandbyVirtualMAC != "" {
		fi.StandbyVirtualMAC = v.mac(f+".standby_virtual_mac", is.StandbyVirtualMAC)
	} else {
		fi.StandbyVirtualMAC = deriveMAC(s.Name, "virtual-mac", is.Name, "standby")
	}
	if fi.VirtualMAC != nil {
		v.claimMAC(fi.VirtualMAC, f+".virtual_mac", "the virtual MAC of "+is.Name)
	}
	if fi.StandbyVirtualMAC != nil {
		v.claimMAC(fi.StandbyVirtualMAC, f+".standby_virtual_mac", "the standby virtual MAC of "+is.Name)
	}
	return fi
}

// unitMACs derives each unit's burned-in MACs: one per data interface and
// per failover or state link.
func (v *validator) unitMACs(s *Spec, l *Lab, ifaces []FirewallInterface) {
	for ui := range l.Units {
		u := &l.Units[ui]
		for _, fi := range ifaces {
			m := deriveMAC(s.Name, u.Name, fi.Name)
			u.MACs[fi.Name] = m
			v.claimMAC(m, "nodes."+u.Name, u.Name+":"+fi.Name)
		}
		for _, link := range []*FailoverLink{&l.Failover.Link, l.Failover.StateLink} {
			if link != nil && link.Interface != "" {
				u.MACs[link.Interface] = deriveMAC(s.Name, u.Name, link.Interface)
			}
		}
	}
}

// management resolves the management address, which only transparent mode
// has.
func (v *validator) management(fw *Firewall, fs *FirewallSpec, transparent bool) {
	if transparent {
		if fs.Management == nil {
			v.errf("firewall.management", "missing; transparent mode needs a management address (expected address and standby_address)")
		} else {
			fw.ManagementAddr = v.hostPrefix("firewall.management.address", fs.Management.Address, true)
			if fw.ManagementAddr.IsValid() {
				v.claimAddr(fw.ManagementAddr.Addr(), "firewall.management.address", "the management address")
			}
			fw.ManagementStandbyAddr = v.addr("firewall.management.standby_address", fs.Management.StandbyAddress)
			if fw.ManagementStandbyAddr.IsValid() {
				v.claimAddr(fw.ManagementStandbyAddr, "firewall.management.standby_address", "the standby management address")
			}
		}
	} else if fs.Management != nil {
		v.errf("firewall.management", "only transparent mode has a management address (routed mode uses the interface addresses)")
	}
}

func (v *validator) firewallRoutes(fs *FirewallSpec) []FirewallRoute {
	var routes []FirewallRoute
	for i, r := range fs.Routes {
		f := fmt.Sprintf("firewall.routes[%d]", i)
		if r == nil {
			v.errf(f, "empty route; expected interface, to and via")
			continue
		}
		fr := FirewallRoute{Interface: r.Interface, To: v.prefix(f+".to", r.To), Via: v.addr(f+".via", r.Via)}
		routes = append(routes, fr)
	}
	return routes
}

func (v *validator) natRules(fs *FirewallSpec) []NATRule {
	var rules []NATRule
	for i, n := range fs.NAT {
		f := fmt.Sprintf("firewall.nat[%d]", i)
		if n == nil {
			v.errf(f, "empty NAT rule; expected type, real_interface, real, mapped_interface")
			continue
		}
		r := NATRule{Type: n.Type, RealInterface: n.RealInterface, MappedInterface: n.MappedInterface}
		switch n.Type {
		case NATDynamicPAT, NATStatic:
		case "":
			v.errf(f+".type", "missing; expected dynamic-pat or static")
		default:
			v.errf(f+".type", "%q is not a NAT type (expected dynamic-pat or static)", n.Type)
		}
		r.Real = v.prefix(f+".real", n.Real)
		switch {
		case n.Mapped == "" || n.Mapped == "interface":
			if n.Type == NATStatic {
				v.errf(f+".mapped", "a static rule needs a mapped address (expected like 198.18.2.112)")
			}
		default:
			r.Mapped = v.addr(f+".mapped", n.Mapped)
		}
		rules = append(rules, r)
	}
	return rules
}

// accessLists resolves the access lists into fw.AccessLists, each entry
// remembering its line for hit counters and messages.
func (v *validator) accessLists(fw *Firewall, fs *FirewallSpec) {
	aclNames := sortedKeys(fs.AccessLists, func(k string) int { return v.pos.Line("firewall.access_lists." + k) })
	for _, name := range aclNames {
		f := "firewall.access_lists." + name
		if !nameRE.MatchString(strings.ReplaceAll(name, "_", "-")) {
			v.errf(f, "%q is not an access-list name (expected letters, digits, - and _)", name)
		}
		for i, a := range fs.AccessLists[name] {
			ff := fmt.Sprintf("%s[%d]", f, i)
			if a == nil {
				v.errf(ff, "empty entry; expected action, protocol, source, destination")
				continue
			}
			ace := v.ace(ff, a)
			fw.AccessLists[name] = append(fw.AccessLists[name], ace)
		}
	}
}

// ace resolves one access-list entry a at field ff.
func (v *validator) ace(ff string, a *ACESpec) ACE {
	ace := ACE{Protocol: a.Protocol, Line: v.pos.Line(ff)}
	switch a.Action {
	case "permit":
		ace.Permit = true
	case "deny":
	default:
		v.errf(ff+".action", "%q is not an action (expected permit or deny)", a.Action)
	}
	if a.Protocol == "" {
		ace.Protocol = "ip"
	}
	ace.Source = v.aclAddr(ff+".source", a.Source)
	ace.Destination = v.aclAddr(ff+".destination", a.Destination)
	if a.Port != "" {
		if ace.Protocol != "tcp" && ace.Protocol != "udp" {
			v.errf(ff+".port", "a port needs protocol tcp or udp (found %s)", ace.Protocol)
		}
		ace.PortLow, ace.PortHigh = v.portRange(ff+".port", a.Port)
	}
	return ace
}

func (v *validator) accessGroups(fs *FirewallSpec) []AccessGroup {
	var groups []AccessGroup
	for i, g := range fs.AccessGroups {
		f := fmt.Sprintf("firewall.access_groups[%d]", i)
		if g == nil {
			v.errf(f, "empty access group; expected access_list and interface")
			continue
		}
		if g.Direction != "" && g.Direction != "in" {
			v.errf(f+".direction", "%q is not supported (expected in: access lists filter traffic entering the interface)", g.Direction)
		}
		groups = append(groups, AccessGroup{AccessList: g.AccessList, Interface: g.Interface})
	}
	return groups
}

// timeouts resolves firewall.timeouts, each defaulting to ASA's.
func (v *validator) timeouts(t *TimeoutsSpec) Timeouts {
	d := defaultTimeouts
	return Timeouts{
		Conn:       v.duration("firewall.timeouts.conn", t.Conn, d.Conn),
		HalfClosed: v.duration("firewall.timeouts.half_closed", t.HalfClosed, d.HalfClosed),
		Embryonic:  v.duration("firewall.timeouts.embryonic", t.Embryonic, d.Embryonic),
		UDP:        v.duration("firewall.timeouts.udp", t.UDP, d.UDP),
		ICMP:       v.duration("firewall.timeouts.icmp", t.ICMP, d.ICMP),
		Xlate:      v.duration("firewall.timeouts.xlate", t.Xlate, d.Xlate),
		ARP:        v.duration("firewall.timeouts.arp", t.ARP, d.ARP),
		MACAddress: v.duration("firewall.timeouts.mac_address", t.MACAddress, d.MACAddress),
	}
}

func keys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// aclAddr parses an ACL address: any, a host address, or a network. ACLs may
// name addresses outside the lab range (any is 0.0.0.0/0).
func (v *validator) aclAddr(field, s string) netip.Prefix {
	switch s {
	case "", "any":
		return netip.MustParsePrefix("0.0.0.0/0")
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		v.errf(field, "%q is not an address (expected any, an address like 198.18.1.12, or a network like 198.18.1.0/24)", s)
		return netip.Prefix{}
	}
	return p.Masked()
}

func (v *validator) portRange(field, s string) (uint16, uint16) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	l, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	h, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if err1 != nil || err2 != nil || l == 0 || h < l {
		v.errf(field, "%q is not a port or range (expected like 80 or 8000-8080, 1 to 65535)", s)
		return 0, 0
	}
	return uint16(l), uint16(h)
}
