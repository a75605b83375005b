// Package topo builds and tears down the lab's wiring: network namespaces,
// veth pairs, Linux bridges, addresses, offload settings, sysctls and routes,
// and reads them back (interfaces, counters, ARP caches) for status views.
// It must not import any other falab package: it is the wiring only, and
// knows no lab file and no firewall.
//
// topo knows nothing of lab files or firewalls. The lab package resolves a
// lab file into a [Plan]; [Deploy] builds it, [Remove] and [RemovePrefix]
// tear it down. Every namespace topo touches is named with the "falab-"
// prefix, and nothing is ever created in the host's namespace, not even for a
// moment: veths are created from inside their A namespace with the peer born
// directly in the B namespace.
//
// All functions are safe for concurrent use. Functions that enter a namespace
// do so on a locked OS thread of their own and restore it before returning
// (see [Do]).
package topo

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// NamePrefix starts the name of every namespace topo creates or removes.
// It is a guard: names without it are refused, so a bug upstream can never
// delete a namespace falab does not own.
const NamePrefix = "falab-"

// MaxIfnameLen is the longest interface name Linux accepts (IFNAMSIZ-1).
const MaxIfnameLen = 15

// Plan is the whole wiring of one lab, already resolved to full names.
// A Plan is plain data: build it, Validate it, hand it to Deploy.
type Plan struct {
	// Namespaces are created first; everything else lives inside them.
	Namespaces []Namespace
	// Bridges are Linux bridges (the lab's switches), each inside one
	// namespace, created with STP off and forward delay 0 so ports forward
	// the moment they come up.
	Bridges []Bridge
	// Links are veth pairs, each end in a lab namespace.
	Links []Link
	// Routes are installed after every link is up.
	Routes []Route
	// Sysctls are written inside their namespace. Per-interface keys
	// (net/ipv{4,6}/{conf,neigh}/IFNAME/...) are written after the links
	// exist; all others (conf/all, conf/default, ip_forward, ...) before
	// any link is created, so defaults apply to every plan interface.
	Sysctls []Sysctl
}

// Namespace is one network namespace.
type Namespace struct {
	// Name is the full namespace name, e.g. "falab-default-client1": the
	// file under /run/netns, visible in `ip netns list` and usable with
	// `ip netns exec`. It must start with NamePrefix.
	Name string
}

// Bridge is a Linux bridge inside a namespace.
type Bridge struct {
	// Namespace is the full name of the namespace holding the bridge.
	Namespace string
	// Name is the bridge's interface name (at most MaxIfnameLen bytes).
	Name string
}

// Endpoint is one end of a veth pair.
type Endpoint struct {
	// Namespace is the full name of the namespace this end lives in.
	Namespace string
	// Ifname is the interface name inside Namespace (at most MaxIfnameLen bytes).
	Ifname string
	// MAC is the interface's Ethernet address; the kernel picks one if nil.
	MAC net.HardwareAddr
	// Addrs are kernel addresses put on the interface. Firewall data
	// interfaces have none: the firewall, not the kernel, owns those.
	Addrs []netip.Prefix
	// Master names a bridge in the same namespace to enslave this end to
	// (a switch port).
	Master string
	// DisableIPv6 sets net/ipv6/conf/IFNAME/disable_ipv6=1 before the link
	// comes up, so the kernel sends no IPv6 (no link-local, no DAD, no RS).
	DisableIPv6 bool
	// OffloadsOff turns off TSO, GSO, GRO and TX checksum offload on this
	// end. It governs what this end SENDS: a veth hands its skb to the
	// peer as is, so a frame's size and checksum are settled by the
	// sender's features. For a userspace data plane on end X to read
	// wire-sized frames with real checksums, turn offloads off on X's PEER
	// (the switch port facing X, or the host wired to X), as well as on X
	// for the frames X's own kernel sends. Measured with iperf3 and tcpdump:
	// offloads off only on the receiving end still delivers 65212-byte IP
	// packets with unfinished checksums; off on the sending switch port
	// delivers 1500-byte packets with correct checksums.
	OffloadsOff bool
	// MTU of the interface; 0 keeps the kernel default.
	MTU int
}

// Link is a veth pair joining two endpoints.
type Link struct {
	A, B Endpoint
}

// Route is a static route in a namespace.
type Route struct {
	// Namespace is the full name of the namespace the route goes in.
	Namespace string
	// Dst is the destination prefix; 0.0.0.0/0 is the default route.
	Dst netip.Prefix
	// Via is the next hop; the kernel picks the interface that reaches it.
	Via netip.Addr
}

// Sysctl is one /proc/sys/net setting inside a namespace.
type Sysctl struct {
	// Namespace is the full name of the namespace the setting applies to.
	Namespace string
	// Key is the path under /proc/sys, slash-separated, e.g.
	// "net/ipv4/ip_forward" or "net/ipv6/conf/inside/disable_ipv6".
	Key string
	// Value is written as is (a trailing newline is not needed).
	Value string
}

// String names the endpoint as "NAMESPACE:IFNAME", the form used in errors.
func (e Endpoint) String() string { return e.Namespace + ":" + e.Ifname }

// String names the link as "A <-> B", the form used in errors.
func (l Link) String() string { return "link " + l.A.String() + " <-> " + l.B.String() }

// String names the bridge as "bridge NAMESPACE:NAME", the form used in errors.
func (b Bridge) String() string { return "bridge " + b.Namespace + ":" + b.Name }

// String names the route, the form used in errors.
func (r Route) String() string {
	return fmt.Sprintf("route %s: %s via %s", r.Namespace, r.Dst, r.Via)
}

// String names the sysctl, the form used in errors.
func (s Sysctl) String() string { return "sysctl " + s.Namespace + ":" + s.Key }

// ValidateNamespaceName reports whether name may be used as a lab namespace:
// it must start with NamePrefix and be a plain file name of letters, digits,
// '-', '_' and '.'.
func ValidateNamespaceName(name string) error {
	if !strings.HasPrefix(name, NamePrefix) {
		return fmt.Errorf("namespace %q: name does not start with %q", name, NamePrefix)
	}
	if len(name) > 200 {
		return fmt.Errorf("namespace %q: name is %d bytes, longer than 200", name, len(name))
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("namespace %q: name has character %q; use letters, digits, '-', '_', '.'", name, r)
		}
	}
	return nil
}

// ValidateIfname reports whether name is a usable Linux interface name.
func ValidateIfname(name string) error {
	switch {
	case name == "":
		return errors.New("interface name is empty")
	case len(name) > MaxIfnameLen:
		return fmt.Errorf("interface name %q is %d bytes, longer than %d", name, len(name), MaxIfnameLen)
	case name == "." || name == "..":
		return fmt.Errorf("interface name %q is not allowed", name)
	}
	for _, r := range name {
		if r == '/' || r == ':' || r <= ' ' || r == 0x7f {
			return fmt.Errorf("interface name %q has character %q", name, r)
		}
	}
	return nil
}

// Validate checks the plan without touching the system: names, lengths,
// duplicates, and that every reference (endpoint namespace, bridge master,
// route and sysctl namespace) points at something in the plan. It returns
// every problem found, joined, one per line, in plan order.
func (p Plan) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	namespaces := make(map[string]bool, len(p.Namespaces))
	for _, ns := range p.Namespaces {
		if err := ValidateNamespaceName(ns.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		if namespaces[ns.Name] {
			bad("namespace %q: listed twice", ns.Name)
		}
		namespaces[ns.Name] = true
	}

	// ifnames maps "ns:ifname" to the object that claimed it first, so a
	// duplicate error names both.
	ifnames := make(map[string]string)
	claim := func(owner, ns, ifname string) {
		key := ns + ":" + ifname
		if first, ok := ifnames[key]; ok {
			bad("%s: interface %s already used by %s", owner, key, first)
			return
		}
		ifnames[key] = owner
	}
	bridges := make(map[string]bool, len(p.Bridges))
	for _, b := range p.Bridges {
		if !namespaces[b.Namespace] {
			bad("%s: namespace %q is not in the plan", b, b.Namespace)
		}
		if err := ValidateIfname(b.Name); err != nil {
			bad("%s: %w", b, err)
			continue
		}
		claim(b.String(), b.Namespace, b.Name)
		bridges[b.Namespace+":"+b.Name] = true
	}

	for _, l := range p.Links {
		for _, side := range []struct {
			label string
			e     Endpoint
		}{{"A", l.A}, {"B", l.B}} {
			e := side.e
			where := fmt.Sprintf("%s: endpoint %s", l, side.label)
			if !namespaces[e.Namespace] {
				bad("%s: namespace %q is not in the plan", where, e.Namespace)
			}
			if err := ValidateIfname(e.Ifname); err != nil {
				bad("%s: %w", where, err)
			} else {
				claim(l.String(), e.Namespace, e.Ifname)
			}
			if e.MAC != nil && len(e.MAC) != 6 {
				bad("%s: MAC %s is %d bytes, want 6", where, e.MAC, len(e.MAC))
			}
			if len(e.MAC) == 6 && e.MAC[0]&1 == 1 {
				bad("%s: MAC %s is a multicast address", where, e.MAC)
			}
			if e.MTU != 0 && (e.MTU < 68 || e.MTU > 65535) {
				bad("%s: MTU %d is outside 68..65535", where, e.MTU)
			}
			if e.Master != "" && !bridges[e.Namespace+":"+e.Master] {
				bad("%s: master bridge %q is not in namespace %q", where, e.Master, e.Namespace)
			}
			for _, a := range e.Addrs {
				if !a.IsValid() {
					bad("%s: address is not valid", where)
				} else if e.DisableIPv6 && a.Addr().Is6() {
					bad("%s: IPv6 address %s on an interface with IPv6 disabled", where, a)
				}
			}
		}
	}

	for _, r := range p.Routes {
		if !namespaces[r.Namespace] {
			bad("%s: namespace %q is not in the plan", r, r.Namespace)
		}
		switch {
		case !r.Dst.IsValid():
			bad("%s: destination is not valid", r)
		case r.Dst != r.Dst.Masked():
			bad("%s: destination has host bits set; did you mean %s?", r, r.Dst.Masked())
		case !r.Via.IsValid():
			bad("%s: next hop is not valid", r)
		case r.Dst.Addr().Is4() != r.Via.Is4():
			bad("%s: destination and next hop are different address families", r)
		}
	}

	for _, s := range p.Sysctls {
		if !namespaces[s.Namespace] {
			bad("%s: namespace %q is not in the plan", s, s.Namespace)
		}
		if err := validateSysctlKey(s.Key); err != nil {
			bad("%s: %w", s, err)
		}
		if strings.ContainsAny(s.Value, "\n\x00") {
			bad("%s: value %q has a newline or NUL", s, s.Value)
		}
	}
	return errors.Join(errs...)
}

// validateSysctlKey keeps keys under /proc/sys/net: topo configures
// networks, and a key that escapes (.., absolute) is a bug or an attack.
func validateSysctlKey(key string) error {
	if !strings.HasPrefix(key, "net/") {
		return fmt.Errorf("key %q is not under net/", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("key %q has an empty, '.' or '..' element", key)
		}
	}
	return nil
}
