package topo

import (
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Neighbor is one entry of a namespace's IPv4 neighbour (ARP) cache.
type Neighbor struct {
	IP     netip.Addr       // the neighbour's IPv4 address
	MAC    net.HardwareAddr // nil while the entry is INCOMPLETE or FAILED
	State  string           // REACHABLE, STALE, DELAY, PROBE, INCOMPLETE, FAILED, PERMANENT, NOARP, NONE
	Ifname string           // the interface the entry belongs to
}

// LinkStatus is the admin and carrier state of one interface.
type LinkStatus struct {
	AdminUp bool // IFF_UP: set up by `ip link set up` / SetLinkUp
	Carrier bool // IFF_LOWER_UP: a veth has carrier when its peer is up
}

// Counters are an interface's kernel packet and byte counters.
type Counters struct {
	RxPackets, TxPackets uint64
	RxBytes, TxBytes     uint64
	RxDropped, TxDropped uint64
	RxErrors, TxErrors   uint64
}

// Interface describes one interface of a namespace for status views.
type Interface struct {
	Name       string
	Index      int              // ifindex, unique within the namespace
	Kind       string           // "veth", "bridge", "device" (loopback), ...
	MAC        net.HardwareAddr // the interface's Ethernet address
	MTU        int
	Master     string         // the bridge this interface is a port of, or ""
	LinkStatus                // admin up and carrier
	Addrs      []netip.Prefix // kernel addresses, IPv4 and IPv6
	Counters   Counters       // kernel counters since the interface was created
}

// withHandle runs fn with a netlink handle bound to namespace ns.
func withHandle(ns string, fn func(h *netlink.Handle) error) error {
	st, err := openNamespace(ns)
	if err != nil {
		return err
	}
	defer st.fd.Close()
	defer st.h.Close()
	return fn(st.h)
}

// Neighbors returns the IPv4 neighbour cache of namespace ns, sorted by
// interface then address.
func Neighbors(ns string) ([]Neighbor, error) {
	var out []Neighbor
	err := withHandle(ns, func(h *netlink.Handle) error {
		links, err := h.LinkList()
		if err != nil {
			return fmt.Errorf("list interfaces: %w", err)
		}
		names := make(map[int]string, len(links))
		for _, l := range links {
			names[l.Attrs().Index] = l.Attrs().Name
		}
		neighs, err := h.NeighList(0, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("list neighbours: %w", err)
		}
		for _, n := range neighs {
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			out = append(out, Neighbor{
				IP:     ip.Unmap(),
				MAC:    n.HardwareAddr,
				State:  NeighState(n.State),
				Ifname: names[n.LinkIndex],
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Ifname != out[j].Ifname {
			return out[i].Ifname < out[j].Ifname
		}
		return out[i].IP.Less(out[j].IP)
	})
	return out, nil
}

// NeighState names a kernel NUD_* neighbour state as `ip neigh` does. The
// states are flags but the kernel sets one at a time; an unknown value is
// printed in hex.
func NeighState(state int) string {
	switch state {
	case netlink.NUD_NONE:
		return "NONE"
	case netlink.NUD_INCOMPLETE:
		return "INCOMPLETE"
	case netlink.NUD_REACHABLE:
		return "REACHABLE"
	case netlink.NUD_STALE:
		return "STALE"
	case netlink.NUD_DELAY:
		return "DELAY"
	case netlink.NUD_PROBE:
		return "PROBE"
	case netlink.NUD_FAILED:
		return "FAILED"
	case netlink.NUD_NOARP:
		return "NOARP"
	case netlink.NUD_PERMANENT:
		return "PERMANENT"
	}
	return fmt.Sprintf("0x%x", state)
}

// SetLinkUp sets interface ifname in namespace ns administratively up or
// down. Setting one end of a veth down drops the other end's carrier: the
// way to cut a cable.
func SetLinkUp(ns, ifname string, up bool) error {
	err := withHandle(ns, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifname)
		if err != nil {
			return err
		}
		if up {
			return h.LinkSetUp(l)
		}
		return h.LinkSetDown(l)
	})
	if err != nil {
		return fmt.Errorf("%s:%s: set up=%t: %w", ns, ifname, up, err)
	}
	return nil
}

// LinkState returns the admin and carrier state of ifname in namespace ns.
func LinkState(ns, ifname string) (LinkStatus, error) {
	var s LinkStatus
	err := withHandle(ns, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifname)
		if err != nil {
			return err
		}
		s = linkStatus(l)
		return nil
	})
	if err != nil {
		return LinkStatus{}, fmt.Errorf("%s:%s: %w", ns, ifname, err)
	}
	return s, nil
}

func linkStatus(l netlink.Link) LinkStatus {
	flags := l.Attrs().RawFlags
	return LinkStatus{AdminUp: flags&unix.IFF_UP != 0, Carrier: flags&unix.IFF_LOWER_UP != 0}
}

// Interfaces lists the interfaces of namespace ns with their addresses and
// counters, sorted by ifindex (loopback first).
func Interfaces(ns string) ([]Interface, error) {
	var out []Interface
	err := withHandle(ns, func(h *netlink.Handle) error {
		links, err := h.LinkList()
		if err != nil {
			return fmt.Errorf("list interfaces: %w", err)
		}
		names := make(map[int]string, len(links))
		for _, l := range links {
			names[l.Attrs().Index] = l.Attrs().Name
		}
		addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("list addresses: %w", err)
		}
		byIndex := make(map[int][]netip.Prefix)
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok || a.IPNet == nil {
				continue
			}
			bits, _ := a.Mask.Size()
			byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], netip.PrefixFrom(ip.Unmap(), bits))
		}
		for _, l := range links {
			at := l.Attrs()
			iface := Interface{
				Name:       at.Name,
				Index:      at.Index,
				Kind:       l.Type(),
				MAC:        at.HardwareAddr,
				MTU:        at.MTU,
				Master:     names[at.MasterIndex],
				LinkStatus: linkStatus(l),
				Addrs:      byIndex[at.Index],
			}
			if s := at.Statistics; s != nil {
				iface.Counters = Counters{
					RxPackets: s.RxPackets, TxPackets: s.TxPackets,
					RxBytes: s.RxBytes, TxBytes: s.TxBytes,
					RxDropped: s.RxDropped, TxDropped: s.TxDropped,
					RxErrors: s.RxErrors, TxErrors: s.TxErrors,
				}
			}
			out = append(out, iface)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}
