package lab

import (
	"fmt"
	"net/netip"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/topo"
)

// bridgeName is the bridge inside every switch namespace.
const bridgeName = "br0"

// Plan resolves lab l into the wiring topo builds: a namespace per node,
// a bridge per switch, a veth per link, addresses and routes on hosts, the
// failover link's addresses on units, and no kernel address on a unit's data
// interfaces (the userspace firewall owns them).
func Plan(l *labfile.Lab) topo.Plan {
	var p topo.Plan
	for _, n := range l.NodeNames() {
		p.Namespaces = append(p.Namespaces, topo.Namespace{Name: l.Namespace(n)})
		// IPv6 off everywhere: the lab is IPv4, and router solicitations
		// and MLD reports would only be noise in the firewall's counters.
		p.Sysctls = append(p.Sysctls,
			topo.Sysctl{Namespace: l.Namespace(n), Key: "net/ipv6/conf/all/disable_ipv6", Value: "1"},
			topo.Sysctl{Namespace: l.Namespace(n), Key: "net/ipv6/conf/default/disable_ipv6", Value: "1"},
		)
	}
	for _, s := range l.Switches {
		p.Bridges = append(p.Bridges, topo.Bridge{Namespace: l.Namespace(s.Name), Name: bridgeName})
	}
	for _, u := range l.Units {
		// The unit's kernel must never route lab traffic: only falab does.
		p.Sysctls = append(p.Sysctls, topo.Sysctl{Namespace: l.Namespace(u.Name), Key: "net/ipv4/ip_forward", Value: "0"})
	}
	ports := map[string]int{} // switch -> ports made so far
	for _, lk := range l.Links {
		a, b := endpoint(l, lk.A, lk.B, ports), endpoint(l, lk.B, lk.A, ports)
		p.Links = append(p.Links, topo.Link{A: a, B: b})
	}
	for _, h := range l.Hosts {
		if h.Gateway.IsValid() {
			p.Routes = append(p.Routes, topo.Route{Namespace: l.Namespace(h.Name), Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: h.Gateway})
		}
		for _, r := range h.Routes {
			p.Routes = append(p.Routes, topo.Route{Namespace: l.Namespace(h.Name), Dst: r.To, Via: r.Via})
		}
	}
	return p
}

// endpoint makes the topo end for e, whose cable goes to other.
func endpoint(l *labfile.Lab, e, other labfile.Endpoint, ports map[string]int) topo.Endpoint {
	te := topo.Endpoint{Namespace: l.Namespace(e.Node), Ifname: e.Iface, OffloadsOff: !l.Offloads}
	if e.Iface == "" { // a switch: make a port named after what it faces
		te.Master = bridgeName
		te.Ifname = SwitchPort(other)
		if len(te.Ifname) > topo.MaxIfnameLen {
			ports[e.Node]++
			te.Ifname = fmt.Sprintf("port%d", ports[e.Node])
		}
		return te
	}
	if h, ok := l.Host(e.Node); ok {
		for _, hi := range h.Interfaces {
			if hi.Name == e.Iface {
				te.Addrs = []netip.Prefix{hi.Addr}
				te.MAC = hi.MAC
				te.MTU = hi.MTU
			}
		}
		return te
	}
	if u, ok := l.Unit(e.Node); ok {
		te.MAC = u.MACs[e.Iface]
		for _, fl := range []*labfile.FailoverLink{&l.Failover.Link, l.Failover.StateLink} {
			if fl == nil || fl.Interface != e.Iface {
				continue
			}
			addr := fl.PrimaryAddress
			if u.Role == "secondary" {
				addr = fl.SecondaryAddress
			}
			te.Addrs = []netip.Prefix{addr}
			return te
		}
		te.DisableIPv6 = true // a data interface: the userspace firewall owns it
	}
	return te
}

// SwitchPort is the name of the switch port facing e: node-iface, so that
// `ip -n falab-LAB-SWITCH link` reads like a patch panel.
func SwitchPort(e labfile.Endpoint) string { return e.Node + "-" + e.Iface }
