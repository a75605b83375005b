package labfile

import (
	"fmt"
	"net/netip"
	"strings"
)

// cabling is what the link checks learn as they go through the links.
type cabling struct {
	switches, units map[string]bool
	unitIfaces      map[string]bool              // every interface a unit has
	used            map[string]string            // node:iface -> field
	cabled          map[string]map[string]string // data interface -> unit -> switch
	peerLinks       map[string]map[string]bool   // iface -> units linked to each other
	// uncertain names the unit interfaces linked to a node of unknown
	// kind: whether they are cabled right cannot be told, so the
	// completeness checks say nothing about them.
	uncertain map[string]bool
}

func newCabling(l *Lab) *cabling {
	c := &cabling{
		switches: map[string]bool{}, units: map[string]bool{}, unitIfaces: map[string]bool{},
		used: map[string]string{}, cabled: map[string]map[string]string{}, peerLinks: map[string]map[string]bool{},
		uncertain: map[string]bool{},
	}
	for _, sw := range l.Switches {
		c.switches[sw.Name] = true
	}
	for _, u := range l.Units {
		c.units[u.Name] = true
	}
	for _, fi := range l.Firewall.Interfaces {
		c.unitIfaces[fi.Name] = true
	}
	c.unitIfaces[l.Failover.Link.Interface] = true
	if l.Failover.StateLink != nil {
		c.unitIfaces[l.Failover.StateLink.Interface] = true
	}
	return c
}

// links resolves the cables and checks that every interface is cabled once,
// that both units reach every data switch, and that the units share a
// failover link.
func (v *validator) links(s *Spec, l *Lab, hostIfaces map[string]map[string]bool) {
	c := newCabling(l)
	for i, ls := range s.Links {
		f := fmt.Sprintf("links[%d]", i)
		if ls == nil || len(ls.Endpoints) != 2 {
			v.errf(f+".endpoints", "expected exactly two endpoints, like [client1:eth0, sw-inside]")
			continue
		}
		eps, ok := v.endpoints(s, l, c, f, ls, hostIfaces)
		if !ok {
			for j, e := range eps {
				if other := eps[1-j]; v.badKind[e.Node] && c.units[other.Node] {
					c.uncertain[other.Iface] = true
				}
			}
			continue
		}
		a, b := eps[0], eps[1]
		if c.switches[a.Node] && c.switches[b.Node] {
			v.errf(f+".endpoints", "links switch to switch (expected a node interface on at least one end)")
			continue
		}
		if a.Node == b.Node {
			v.errf(f+".endpoints", "links %s to itself", a.Node)
			continue
		}
		for _, pair := range [][2]Endpoint{{a, b}, {b, a}} {
			x, y := pair[0], pair[1]
			if c.units[x.Node] {
				isFailover := x.Iface == l.Failover.Link.Interface || (l.Failover.StateLink != nil && x.Iface == l.Failover.StateLink.Interface)
				switch {
				case isFailover && !(c.units[y.Node] && y.Iface == x.Iface):
					v.errf(f+".endpoints", "%s:%s must link to the other unit's %s", x.Node, x.Iface, x.Iface)
				case isFailover:
					if c.peerLinks[x.Iface] == nil {
						c.peerLinks[x.Iface] = map[string]bool{}
					}
					c.peerLinks[x.Iface][x.Node] = true
				case !c.switches[y.Node]:
					v.errf(f+".endpoints", "%s:%s is a data interface and must link to a switch, both units to the same one", x.Node, x.Iface)
				default:
					if c.cabled[x.Iface] == nil {
						c.cabled[x.Iface] = map[string]string{}
					}
					c.cabled[x.Iface][x.Node] = y.Node
				}
			}
		}
		l.Links = append(l.Links, Link{A: a, B: b})
	}
	v.cablingComplete(l, c, hostIfaces)
}

// endpoints resolves the two ends of link ls (at field f), checking that
// each names a known node and one of its interfaces, cabled only once.
func (v *validator) endpoints(s *Spec, l *Lab, c *cabling, f string, ls *LinkSpec, hostIfaces map[string]map[string]bool) (eps [2]Endpoint, ok bool) {
	ok = true
	for j, e := range ls.Endpoints {
		ff := fmt.Sprintf("%s.endpoints[%d]", f, j)
		node, iface, hasIface := strings.Cut(e, ":")
		n, known := s.Nodes[node]
		switch {
		case !known:
			// Nodes of unknown kind exist too: name them.
			names := append(l.NodeNames(), sortedKeys(v.badKind, func(k string) int { return v.pos.Line("nodes." + k) })...)
			v.errf(ff, "unknown node %q (expected one of: %s)", node, strings.Join(names, ", "))
			ok = false
			continue
		case n == nil || v.badKind[node]:
			ok = false // the node exists; its kind's rules cannot be checked
		case n.Kind == KindSwitch:
			if hasIface {
				v.errf(ff, "%q: a switch endpoint is the bare switch name (expected %s; falab makes the port)", e, node)
				ok = false
			}
		case !hasIface || iface == "":
			v.errf(ff, "%q names no interface (expected %s:IFACE)", e, node)
			ok = false
			continue
		case n.Kind == KindHost:
			if _, has := hostIfaces[node][iface]; !has {
				v.errf(ff, "host %s has no interface %q (expected one of: %s)", node, iface, strings.Join(keys(hostIfaces[node]), ", "))
				ok = false
			}
		case n.Kind == KindUnit:
			if !c.unitIfaces[iface] {
				v.errf(ff, "unit %s has no interface %q (expected a firewall interface or the failover/state link: %s)", node, iface, strings.Join(keys(c.unitIfaces), ", "))
				ok = false
			}
		}
		if hasIface {
			if prev, dup := c.used[e]; dup {
				v.errf(ff, "%s is already cabled (%s, line %d)", e, prev, v.pos.Line(prev))
				ok = false
			}
			c.used[e] = ff
		}
		eps[j] = Endpoint{Node: node, Iface: iface}
	}
	return eps, ok
}

// cablingComplete checks, once every link is read, that every host
// interface is cabled, that both units have the failover (and state) link,
// and that each data interface goes to one switch from both units.
func (v *validator) cablingComplete(l *Lab, c *cabling, hostIfaces map[string]map[string]bool) {
	for _, h := range l.Hosts {
		for in := range hostIfaces[h.Name] {
			if _, ok := c.used[h.Name+":"+in]; !ok {
				v.errf("nodes."+h.Name+".interfaces."+in, "interface %s:%s is not cabled (expected a link in links)", h.Name, in)
			}
		}
	}
	if len(l.Units) != 2 {
		return
	}
	for _, u := range l.Units {
		if c.uncertain[l.Failover.Link.Interface] {
			break
		}
		if !c.peerLinks[l.Failover.Link.Interface][u.Name] {
			v.errf("nodes."+u.Name, "unit %s has no failover link (expected a link [%s:%s, %s:%s])", u.Name, l.Units[0].Name, l.Failover.Link.Interface, l.Units[1].Name, l.Failover.Link.Interface)
		}
		if sl := l.Failover.StateLink; sl != nil && !c.peerLinks[sl.Interface][u.Name] {
			v.errf("nodes."+u.Name, "unit %s has no state link (expected a link [%s:%s, %s:%s])", u.Name, l.Units[0].Name, sl.Interface, l.Units[1].Name, sl.Interface)
		}
	}
	for i := range l.Firewall.Interfaces {
		fi := &l.Firewall.Interfaces[i]
		swA, swB := c.cabled[fi.Name][l.Units[0].Name], c.cabled[fi.Name][l.Units[1].Name]
		switch {
		case (swA == "" || swB == "") && c.uncertain[fi.Name]:
		case swA == "" || swB == "":
			v.errf(fmt.Sprintf("firewall.interfaces[%d].name", i), "interface %s is not cabled on both units (expected links [%s:%s, SWITCH] and [%s:%s, SWITCH])", fi.Name, l.Units[0].Name, fi.Name, l.Units[1].Name, fi.Name)
		case swA != swB:
			v.errf(fmt.Sprintf("firewall.interfaces[%d].name", i), "interface %s is cabled to %s on %s but to %s on %s (expected the same switch)", fi.Name, swA, l.Units[0].Name, swB, l.Units[1].Name)
		default:
			fi.Switch = swA
		}
	}
}

// subnets checks that no two networks overlap and that every host sits in
// the subnet of the firewall interface on its switch.
func (v *validator) subnets(l *Lab) {
	type net struct {
		p     netip.Prefix
		field string
	}
	var nets []net
	for i, fi := range l.Firewall.Interfaces {
		if fi.Addr.IsValid() {
			nets = append(nets, net{fi.Addr.Masked(), fmt.Sprintf("firewall.interfaces[%d].address", i)})
		}
	}
	if l.Failover.Link.PrimaryAddress.IsValid() {
		nets = append(nets, net{l.Failover.Link.PrimaryAddress.Masked(), "failover.link.primary_address"})
	}
	if sl := l.Failover.StateLink; sl != nil && sl.PrimaryAddress.IsValid() {
		nets = append(nets, net{sl.PrimaryAddress.Masked(), "failover.state_link.primary_address"})
	}
	for i := range nets {
		for j := 0; j < i; j++ {
			if nets[i].p.Overlaps(nets[j].p) {
				v.errf(nets[i].field, "subnet %s overlaps %s (%s, line %d); expected separate subnets", nets[i].p, nets[j].p, nets[j].field, v.pos.Line(nets[j].field))
			}
		}
	}
	// Hosts on a switch must be in the firewall interface's subnet there
	// (in transparent mode: the one subnet of the management address).
	subnetOfSwitch := map[string]netip.Prefix{}
	for _, fi := range l.Firewall.Interfaces {
		switch {
		case fi.Switch == "":
		case fi.Addr.IsValid():
			subnetOfSwitch[fi.Switch] = fi.Addr.Masked()
		case l.Firewall.ManagementAddr.IsValid():
			subnetOfSwitch[fi.Switch] = l.Firewall.ManagementAddr.Masked()
		}
	}
	switchOf := map[Endpoint]string{}
	for _, lk := range l.Links {
		if lk.B.Iface == "" {
			switchOf[lk.A] = lk.B.Node
		}
		if lk.A.Iface == "" {
			switchOf[lk.B] = lk.A.Node
		}
	}
	for _, h := range l.Hosts {
		for _, hi := range h.Interfaces {
			sw := switchOf[Endpoint{Node: h.Name, Iface: hi.Name}]
			want, ok := subnetOfSwitch[sw]
			if !ok || !hi.Addr.IsValid() {
				continue
			}
			if !want.Contains(hi.Addr.Addr()) || hi.Addr.Bits() != want.Bits() {
				f := "nodes." + h.Name + ".interfaces." + hi.Name + ".address"
				v.errf(f, "%s is outside its subnet: %s is cabled to %s, whose subnet is %s (expected an address in it)", hi.Addr, h.Name, sw, want)
			}
		}
	}
}
