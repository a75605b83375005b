package labfile

import "github.com/falab/falab/fwconfig"

// FirewallConfig resolves the lab's firewall section into unit u's data
// plane config (the MACs are u's own in mac_mode burned-in).
func (l *Lab) FirewallConfig(u Unit) fwconfig.Config {
	fw := fwconfig.Config{AccessLists: map[string][]fwconfig.ACE{}}
	if l.Mode == "transparent" {
		fw.Mode = fwconfig.ModeTransparent
		fw.ManagementAddr = l.Firewall.ManagementAddr
		fw.ManagementStandbyAddr = l.Firewall.ManagementStandbyAddr
	}
	for _, fi := range l.Firewall.Interfaces {
		ic := fwconfig.InterfaceConfig{
			Name: fi.Name, SecurityLevel: fi.SecurityLevel,
			Prefix: fi.Addr, StandbyAddr: fi.StandbyAddr,
		}
		if l.Failover.MACMode == MACVirtual {
			ic.ActiveMAC, ic.StandbyMAC = fi.VirtualMAC, fi.StandbyVirtualMAC
		} else {
			ic.ActiveMAC, ic.StandbyMAC = u.MACs[fi.Name], u.MACs[fi.Name]
		}
		fw.Interfaces = append(fw.Interfaces, ic)
	}
	for _, r := range l.Firewall.Routes {
		fw.Routes = append(fw.Routes, fwconfig.Route{Interface: r.Interface, Prefix: r.To, NextHop: r.Via})
	}
	for _, n := range l.Firewall.NAT {
		kind := fwconfig.NATDynamicPAT
		if n.Type == NATStatic {
			kind = fwconfig.NATStatic
		}
		fw.NAT = append(fw.NAT, fwconfig.NATRule{Kind: kind, RealInterface: n.RealInterface, Real: n.Real, MappedInterface: n.MappedInterface, Mapped: n.Mapped})
	}
	for name, aces := range l.Firewall.AccessLists {
		for _, a := range aces {
			fw.AccessLists[name] = append(fw.AccessLists[name], fwconfig.ACE{
				Permit: a.Permit, Protocol: a.Protocol, Source: a.Source, Destination: a.Destination,
				DstPortLow: a.PortLow, DstPortHigh: a.PortHigh,
			})
		}
	}
	for _, g := range l.Firewall.AccessGroups {
		fw.AccessGroups = append(fw.AccessGroups, fwconfig.AccessGroup{AccessList: g.AccessList, Interface: g.Interface})
	}
	t := l.Firewall.Timeouts
	fw.Timeouts = fwconfig.Timeouts{Conn: t.Conn, HalfClosed: t.HalfClosed, Embryonic: t.Embryonic, UDP: t.UDP, ICMP: t.ICMP, Xlate: t.Xlate, ARP: t.ARP, MACAddress: t.MACAddress}
	fw.Inspect = l.Firewall.Inspect
	return fw
}
