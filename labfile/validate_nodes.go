package labfile

import (
	"fmt"
	"net"
	"sort"
)

// nodes resolves the hosts, switches and units in the order the file names
// them, and checks that there are two units, one primary and one
// secondary (primary first in l.Units). It returns each host's interfaces,
// for the link checks to mark as cabled.
func (v *validator) nodes(s *Spec, l *Lab) (hostIfaces map[string]map[string]bool) {
	// Nodes, in a stable order.
	names := make([]string, 0, len(s.Nodes))
	for n := range s.Nodes {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return v.pos.Line("nodes."+names[i]) < v.pos.Line("nodes."+names[j]) })
	if len(names) == 0 {
		v.errf("nodes", "missing; expected hosts, switches and two units")
	}
	hostIfaces = map[string]map[string]bool{} // node -> iface -> linked
	for _, name := range names {
		n := s.Nodes[name]
		f := "nodes." + name
		if n == nil {
			v.errf(f, "empty node; expected at least kind")
			v.markBadKind(name)
			continue
		}
		if len(name) > maxNodeName || !nameRE.MatchString(name) {
			v.errf(f, "%q is not a node name (expected lower-case letters, digits and dashes, at most %d characters)", name, maxNodeName)
		}
		switch n.Kind {
		case KindHost:
			hostIfaces[name] = map[string]bool{}
			l.Hosts = append(l.Hosts, v.host(s, f, name, n, hostIfaces[name]))
			v.noUnitFields(f, n)
		case KindSwitch:
			l.Switches = append(l.Switches, Switch{Name: name})
			if len(n.Interfaces) > 0 {
				v.errf(f+".interfaces", "a switch has no configured interfaces (it makes a port for each link)")
			}
			if n.Gateway != "" {
				v.errf(f+".gateway", "a switch has no gateway")
			}
			v.noUnitFields(f, n)
			v.noDaemons(f, n)
		case KindUnit:
			l.Units = append(l.Units, v.unit(f, name, n))
			v.noDaemons(f, n)
		case "":
			v.errf(f+".kind", "missing; expected host, switch or unit")
			v.markBadKind(name)
		default:
			v.errf(f+".kind", "%q is not a node kind (expected host, switch or unit)", n.Kind)
			v.markBadKind(name)
		}
	}
	switch {
	case len(l.Units) != 2:
		// A node of unknown kind may be the missing unit: its kind
		// error says enough.
		if len(names) > 0 && !(len(l.Units) < 2 && len(v.badKind) > 0) {
			v.errf("nodes", "a lab has exactly two units (one primary, one secondary); found %d", len(l.Units))
		}
	case l.Units[0].Role == l.Units[1].Role && l.Units[0].Role != "":
		v.errf("nodes."+l.Units[1].Name+".role", "both units are %s (expected one primary and one secondary)", l.Units[0].Role)
	case l.Units[0].Role == "secondary":
		l.Units[0], l.Units[1] = l.Units[1], l.Units[0]
	}
	return hostIfaces
}

// host resolves host node name (at field f): its interfaces, which it
// records in ifaces as not yet cabled, its gateway and its routes.
func (v *validator) host(s *Spec, f, name string, n *NodeSpec, ifaces map[string]bool) Host {
	h := Host{Name: name}
	if len(n.Interfaces) == 0 {
		v.errf(f+".interfaces", "a host needs at least one interface")
	}
	inames := sortedKeys(n.Interfaces, func(k string) int { return v.pos.Line(f + ".interfaces." + k) })
	for _, in := range inames {
		is := n.Interfaces[in]
		ff := f + ".interfaces." + in
		v.checkIfname(ff, in)
		if is == nil {
			v.errf(ff, "empty interface; expected address")
			continue
		}
		h.Interfaces = append(h.Interfaces, v.hostInterface(s, ff, name, in, is))
		ifaces[in] = false
	}
	if n.Gateway != "" {
		h.Gateway = v.addr(f+".gateway", n.Gateway)
		if h.Gateway.IsValid() && allAddressed(h.Interfaces) && !inAnySubnet(h.Gateway, h.Interfaces) {
			v.errf(f+".gateway", "%s is outside the subnets of %s's interfaces (expected an address on one of them)", h.Gateway, name)
		}
	}
	for i, r := range n.Routes {
		ff := fmt.Sprintf("%s.routes[%d]", f, i)
		if r == nil {
			v.errf(ff, "empty route; expected to and via")
			continue
		}
		hr := HostRoute{To: v.prefix(ff+".to", r.To), Via: v.addr(ff+".via", r.Via)}
		if hr.Via.IsValid() && allAddressed(h.Interfaces) && !inAnySubnet(hr.Via, h.Interfaces) {
			v.errf(ff+".via", "%s is outside the subnets of %s's interfaces (expected a next hop on one of them)", hr.Via, name)
		}
		h.Routes = append(h.Routes, hr)
	}
	h.Daemons = v.daemons(f, name, n.Daemons)
	return h
}

// hostInterface resolves interface in of host name (at field ff): its
// address, its MAC (derived from the names when not given) and its MTU.
func (v *validator) hostInterface(s *Spec, ff, name, in string, is *HostInterfaceSpec) HostInterface {
	hi := HostInterface{Name: in, MTU: 1500}
	hi.Addr = v.hostPrefix(ff+".address", is.Address, true)
	if hi.Addr.IsValid() {
		v.claimAddr(hi.Addr.Addr(), ff+".address", name+":"+in)
	}
	if is.MAC != "" {
		hi.MAC = v.mac(ff+".mac", is.MAC)
	} else {
		hi.MAC = deriveMAC(s.Name, name, in)
	}
	if hi.MAC != nil {
		v.claimMAC(hi.MAC, ff+".mac", name+":"+in)
	}
	if is.MTU != 0 {
		if is.MTU < 576 || is.MTU > 9000 {
			v.errf(ff+".mtu", "%d is out of range (expected 576 to 9000)", is.MTU)
		}
		hi.MTU = is.MTU
	}
	return hi
}

// unit resolves unit node name (at field f). Its interfaces come from the
// firewall and failover sections; its MACs are filled in by firewall.
func (v *validator) unit(f, name string, n *NodeSpec) Unit {
	u := Unit{Name: name, Role: n.Role, CPUs: DefaultUnitCPUs, MACs: map[string]net.HardwareAddr{}}
	if n.Role != "primary" && n.Role != "secondary" {
		v.errf(f+".role", "%q is not a unit role (expected primary or secondary)", n.Role)
	}
	switch {
	case n.CPUs < 0 || n.CPUs > maxUnitCPUs:
		v.errf(f+".cpus", "%d is out of range (expected 1 to %d)", n.CPUs, maxUnitCPUs)
	case n.CPUs > 0:
		u.CPUs = n.CPUs
	}
	if len(n.Interfaces) > 0 {
		v.errf(f+".interfaces", "a unit's interfaces come from the firewall and failover sections, not from the node")
	}
	if n.Gateway != "" || len(n.Routes) > 0 {
		v.errf(f, "a unit's routes come from firewall.routes")
	}
	return u
}

// markBadKind records that node name's kind is missing or invalid.
func (v *validator) markBadKind(name string) {
	if v.badKind == nil {
		v.badKind = map[string]bool{}
	}
	v.badKind[name] = true
}

// DefaultUnitCPUs is a unit process's GOMAXPROCS unless its node says
// otherwise. One: a unit's work is mostly system calls (the kernel moves
// its frames), and a second P only adds handoffs between threads. On the
// 2-core machine kind it cut the active unit's context switches from 41k
// to 10k a second and its CPU per new connection by about a fifth
// (docs/architecture.md, Measured).
const DefaultUnitCPUs = 1

// maxUnitCPUs bounds a unit's cpus: a typo, not a machine, beyond it.
const maxUnitCPUs = 256

func (v *validator) noUnitFields(f string, n *NodeSpec) {
	if n.Role != "" {
		v.errf(f+".role", "only units have a role")
	}
	if n.CPUs != 0 {
		v.errf(f+".cpus", "only units have cpus")
	}
}

// noDaemons reports daemons on a switch or unit: only hosts run programs.
func (v *validator) noDaemons(f string, n *NodeSpec) {
	if len(n.Daemons) > 0 {
		v.errf(f+".daemons", "only hosts run daemons (expected them on a host node)")
	}
}
