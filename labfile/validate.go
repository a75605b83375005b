package labfile

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/fwconfig"
)

// Defaults far below an ASA's 1 s poll / 15 s hold: the lab's links are
// virtual and the units are on one machine, so a short hold is safe and
// makes takeovers quick to watch.
const (
	DefaultUnitPoll = 20 * time.Millisecond
	DefaultUnitHold = 100 * time.Millisecond
	// Interface hellos confirm a suspected peer failure on the data
	// networks before a takeover; a live peer answers within a
	// millisecond there, so a short hold keeps a crash's gap small.
	DefaultInterfacePoll     = time.Millisecond
	DefaultInterfaceHold     = 5 * time.Millisecond
	DefaultNegotiationWindow = 300 * time.Millisecond
)

// ASA default timeouts.
var defaultTimeouts = Timeouts{
	Conn:       time.Hour,
	HalfClosed: 10 * time.Minute,
	Embryonic:  30 * time.Second,
	UDP:        2 * time.Minute,
	ICMP:       2 * time.Second,
	Xlate:      3 * time.Hour,
	ARP:        4 * time.Hour,
	MACAddress: 5 * time.Minute,
}

// labRange is where lab addresses come from: the range set aside for
// network benchmarking (RFC 2544), so a lab never collides with the
// machine's own networks.
var labRange = netip.MustParsePrefix("198.18.0.0/15")

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ValidName says whether s is a well-formed lab, node or traffic name:
// lower-case letters, digits and inner dashes.
func ValidName(s string) bool { return nameRE.MatchString(s) }

const (
	maxLabName  = 20
	maxNodeName = 24
	maxIfname   = 15 // IFNAMSIZ - 1
)

// Load parses and validates a lab file and resolves it. The error, when
// there is one, is Problems: every mistake with file, line and field.
func Load(file string, data []byte) (*Lab, error) {
	spec, pos, err := Parse(file, data)
	if err != nil {
		return nil, err
	}
	v := &validator{file: file, pos: pos}
	l := v.resolve(spec)
	if len(v.probs) > 0 {
		return nil, v.probs
	}
	l.File = file
	return l, nil
}

type validator struct {
	file  string
	pos   Positions
	probs Problems
}

func (v *validator) errf(field, format string, args ...any) {
	v.probs = append(v.probs, Problem{File: v.file, Line: v.pos.Line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// addrOwner remembers who holds an address or MAC, for duplicate checks.
type addrOwner struct {
	field string
	what  string
}

func (v *validator) resolve(s *Spec) *Lab {
	l := &Lab{Name: s.Name, Description: s.Description, Mode: s.Mode}
	switch {
	case s.Name == "":
		v.errf("name", "missing; expected a lab name like default")
	case len(s.Name) > maxLabName || !nameRE.MatchString(s.Name):
		v.errf("name", "%q is not a lab name (expected lower-case letters, digits and dashes, at most %d characters)", s.Name, maxLabName)
	}
	switch s.Mode {
	case "":
		l.Mode = "routed"
	case "routed", "transparent":
	default:
		v.errf("mode", "%q is not a mode (expected routed or transparent)", s.Mode)
	}

	// Nodes, in a stable order.
	names := make([]string, 0, len(s.Nodes))
	for n := range s.Nodes {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return v.pos.Line("nodes."+names[i]) < v.pos.Line("nodes."+names[j]) })
	if len(names) == 0 {
		v.errf("nodes", "missing; expected hosts, switches and two units")
	}
	addrs := map[netip.Addr]addrOwner{}
	macs := map[string]addrOwner{}
	claimAddr := func(a netip.Addr, field, what string) {
		if prev, dup := addrs[a]; dup {
			v.errf(field, "duplicate address %s: already used by %s (%s, line %d)", a, prev.what, prev.field, v.pos.Line(prev.field))
			return
		}
		addrs[a] = addrOwner{field, what}
	}
	claimMAC := func(m net.HardwareAddr, field, what string) {
		if prev, dup := macs[m.String()]; dup {
			v.errf(field, "duplicate MAC %s: already used by %s (%s, line %d)", m, prev.what, prev.field, v.pos.Line(prev.field))
			return
		}
		macs[m.String()] = addrOwner{field, what}
	}
	hostIfaces := map[string]map[string]bool{} // node -> iface -> linked
	for _, name := range names {
		n := s.Nodes[name]
		f := "nodes." + name
		if n == nil {
			v.errf(f, "empty node; expected at least kind")
			continue
		}
		if len(name) > maxNodeName || !nameRE.MatchString(name) {
			v.errf(f, "%q is not a node name (expected lower-case letters, digits and dashes, at most %d characters)", name, maxNodeName)
		}
		switch n.Kind {
		case KindHost:
			h := Host{Name: name}
			hostIfaces[name] = map[string]bool{}
			if len(n.Interfaces) == 0 {
				v.errf(f+".interfaces", "a host needs at least one interface")
			}
			inames := sortedKeys(n.Interfaces, func(k string) int { return v.pos.Line(f + ".interfaces." + k) })
			for _, in := range inames {
				is := n.Interfaces[in]
				ff := f + ".interfaces." + in
				hi := HostInterface{Name: in, MTU: 1500}
				v.checkIfname(ff, in)
				if is == nil {
					v.errf(ff, "empty interface; expected address")
					continue
				}
				hi.Addr = v.hostPrefix(ff+".address", is.Address, true)
				if hi.Addr.IsValid() {
					claimAddr(hi.Addr.Addr(), ff+".address", name+":"+in)
				}
				if is.MAC != "" {
					hi.MAC = v.mac(ff+".mac", is.MAC)
				} else {
					hi.MAC = deriveMAC(s.Name, name, in)
				}
				if hi.MAC != nil {
					claimMAC(hi.MAC, ff+".mac", name+":"+in)
				}
				if is.MTU != 0 {
					if is.MTU < 576 || is.MTU > 9000 {
						v.errf(ff+".mtu", "%d is out of range (expected 576 to 9000)", is.MTU)
					}
					hi.MTU = is.MTU
				}
				h.Interfaces = append(h.Interfaces, hi)
				hostIfaces[name][in] = false
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
			l.Hosts = append(l.Hosts, h)
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
		case KindUnit:
			u := Unit{Name: name, Role: n.Role, MACs: map[string]net.HardwareAddr{}}
			if n.Role != "primary" && n.Role != "secondary" {
				v.errf(f+".role", "%q is not a unit role (expected primary or secondary)", n.Role)
			}
			if len(n.Interfaces) > 0 {
				v.errf(f+".interfaces", "a unit's interfaces come from the firewall and failover sections, not from the node")
			}
			if n.Gateway != "" || len(n.Routes) > 0 {
				v.errf(f, "a unit's routes come from firewall.routes")
			}
			l.Units = append(l.Units, u)
		case "":
			v.errf(f+".kind", "missing; expected host, switch or unit")
		default:
			v.errf(f+".kind", "%q is not a node kind (expected host, switch or unit)", n.Kind)
		}
	}
	switch {
	case len(l.Units) != 2:
		if len(names) > 0 {
			v.errf("nodes", "a lab has exactly two units (one primary, one secondary); found %d", len(l.Units))
		}
	case l.Units[0].Role == l.Units[1].Role && l.Units[0].Role != "":
		v.errf("nodes."+l.Units[1].Name+".role", "both units are %s (expected one primary and one secondary)", l.Units[0].Role)
	case l.Units[0].Role == "secondary":
		l.Units[0], l.Units[1] = l.Units[1], l.Units[0]
	}

	l.Failover = v.failover(s, l, claimAddr)
	l.Firewall = v.firewall(s, l, claimAddr, claimMAC)
	v.links(s, l, hostIfaces)
	v.subnets(l)
	if len(v.probs) == 0 {
		v.firewallConfig(l)
	}
	return l
}

// firewallConfig checks the resolved firewall config with the data plane's
// own validator (fwconfig.Check), so that what the lab accepts the units
// accept too, and reports each problem at the lab file's field and line.
// It runs once the file is otherwise sound: a half-resolved config would
// only repeat the problems already reported.
func (v *validator) firewallConfig(l *Lab) {
	if len(l.Units) == 0 {
		return
	}
	for _, p := range fwconfig.Check(l.FirewallConfig(l.Units[0])) {
		v.errf(labField(p.Path), "%s", p.Msg)
	}
}

// labFieldNames maps fwconfig's field names to the lab file's where they
// differ.
var labFieldNames = strings.NewReplacer(
	".active_mac", ".virtual_mac", ".standby_mac", ".standby_virtual_mac",
	".prefix", ".to", ".next_hop", ".via", ".kind", ".type",
	".dst_port_low", ".port", ".dst_port_high", ".port",
)

// labField turns a fwconfig field path (interfaces[1].mtu) into the lab
// file's (firewall.interfaces[1].mtu).
func labField(path string) string {
	switch {
	case path == "mode":
		return "mode"
	case path == "management_address":
		return "firewall.management.address"
	case path == "management_standby_address":
		return "firewall.management.standby_address"
	}
	return "firewall." + labFieldNames.Replace(path)
}

func (v *validator) noUnitFields(f string, n *NodeSpec) {
	if n.Role != "" {
		v.errf(f+".role", "only units have a role")
	}
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

func sortedKeys[T any](m map[string]T, line func(string) int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return line(out[i]) < line(out[j]) })
	return out
}

func (v *validator) checkIfname(field, name string) {
	if len(name) == 0 || len(name) > maxIfname || strings.ContainsAny(name, "/: \t") || name == "lo" {
		v.errf(field, "%q is not an interface name (expected 1 to %d characters, no '/', ':' or spaces, not lo)", name, maxIfname)
	}
}

func (v *validator) addr(field, s string) netip.Addr {
	a, msg := CheckAddr(s)
	if msg != "" {
		v.errf(field, "%s", msg)
	}
	return a
}

// CheckAddr parses a lab address and says what is wrong with it, if
// anything: it must be IPv4 and in the lab range. A well-formed address
// outside the range is returned along with its problem.
func CheckAddr(s string) (netip.Addr, string) {
	if s == "" {
		return netip.Addr{}, "missing; expected an IPv4 address like 198.18.1.1"
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Sprintf("%q is not an IPv4 address (expected like 198.18.1.1)", s)
	}
	if !labRange.Contains(a) {
		return a, fmt.Sprintf("%s is outside 198.18.0.0/15 (lab addresses come from the benchmarking range so they never collide with the machine's networks)", a)
	}
	return a, ""
}

// hostPrefix parses an address with its prefix length, e.g. 198.18.1.11/24.
func (v *validator) hostPrefix(field, s string, required bool) netip.Prefix {
	if s == "" {
		if required {
			v.errf(field, "missing; expected an IPv4 address with prefix length like 198.18.1.11/24")
		}
		return netip.Prefix{}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() < 8 || p.Bits() > 30 {
		v.errf(field, "%q is not an IPv4 address with prefix length (expected like 198.18.1.11/24, /8 to /30)", s)
		return netip.Prefix{}
	}
	if !labRange.Contains(p.Addr()) {
		v.errf(field, "%s is outside 198.18.0.0/15 (lab addresses come from the benchmarking range so they never collide with the machine's networks)", p.Addr())
		return netip.Prefix{}
	}
	if p.Addr() == p.Masked().Addr() || p.Addr() == lastAddr(p) {
		v.errf(field, "%s is the network or broadcast address of %s (expected a host address)", p.Addr(), p.Masked())
		return netip.Prefix{}
	}
	return p
}

// prefix parses a destination network: "any", an address, or a prefix.
func (v *validator) prefix(field, s string) netip.Prefix {
	switch s {
	case "":
		v.errf(field, "missing; expected a network like 198.18.5.0/24, an address, or any")
		return netip.Prefix{}
	case "any", "default":
		return netip.MustParsePrefix("0.0.0.0/0")
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		v.errf(field, "%q is not an IPv4 network (expected like 198.18.5.0/24, an address, or any)", s)
		return netip.Prefix{}
	}
	if p != p.Masked() {
		v.errf(field, "%s has host bits set (expected the network %s)", p, p.Masked())
	}
	return p.Masked()
}

func (v *validator) mac(field, s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		v.errf(field, "%q is not a MAC address (expected like 02:fa:00:00:01:01)", s)
		return nil
	}
	if m[0]&1 == 1 {
		v.errf(field, "%s is a multicast MAC (expected a unicast MAC; the first byte must be even)", m)
		return nil
	}
	if isZeroMAC(m) {
		v.errf(field, "%s is the zero MAC (expected a unicast MAC)", m)
		return nil
	}
	return m
}

func isZeroMAC(m net.HardwareAddr) bool {
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n |= host
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// allAddressed reports whether every interface's address parsed, so that a
// bad address is reported once and not again as a gateway outside it.
func allAddressed(ifs []HostInterface) bool {
	for _, i := range ifs {
		if !i.Addr.IsValid() {
			return false
		}
	}
	return true
}

func inAnySubnet(a netip.Addr, ifs []HostInterface) bool {
	for _, i := range ifs {
		if i.Addr.IsValid() && i.Addr.Masked().Contains(a) {
			return true
		}
	}
	return false
}

// deriveMAC makes a stable, locally administered unicast MAC from names, so
// that a lab's MACs are the same every time it comes up.
func deriveMAC(parts ...string) net.HardwareAddr {
	sum := sha256.Sum256([]byte(strings.Join(parts, "/")))
	return net.HardwareAddr{0x02, 0xfa, sum[0], sum[1], sum[2], sum[3]}
}

func (v *validator) duration(field string, d *Duration, def time.Duration) time.Duration {
	got := d.D(def)
	if d != nil && got == 0 {
		v.errf(field, "must be more than 0")
	}
	return got
}

func (v *validator) failover(s *Spec, l *Lab, claimAddr func(netip.Addr, string, string)) Failover {
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
	if fs.Link == nil {
		v.errf("failover.link", "missing; every unit needs a failover link (expected interface, primary_address and secondary_address)")
	} else {
		fo.Link = v.failoverLink("failover.link", fs.Link, "failover", claimAddr)
	}
	if fs.StateLink != nil {
		sl := v.failoverLink("failover.state_link", fs.StateLink, "state", claimAddr)
		if sl.Interface == fo.Link.Interface {
			v.errf("failover.state_link.interface", "%q is the failover link's interface (expected a separate interface, or leave state_link out to share the failover link)", sl.Interface)
		}
		fo.StateLink = &sl
	}
	return fo
}

func (v *validator) failoverLink(f string, ls *FailoverLinkSpec, defIface string, claimAddr func(netip.Addr, string, string)) FailoverLink {
	fl := FailoverLink{Interface: ls.Interface}
	if fl.Interface == "" {
		fl.Interface = defIface
	}
	v.checkIfname(f+".interface", fl.Interface)
	fl.PrimaryAddress = v.hostPrefix(f+".primary_address", ls.PrimaryAddress, true)
	fl.SecondaryAddress = v.hostPrefix(f+".secondary_address", ls.SecondaryAddress, true)
	if fl.PrimaryAddress.IsValid() {
		claimAddr(fl.PrimaryAddress.Addr(), f+".primary_address", "the primary's "+fl.Interface+" link")
	}
	if fl.SecondaryAddress.IsValid() {
		claimAddr(fl.SecondaryAddress.Addr(), f+".secondary_address", "the secondary's "+fl.Interface+" link")
	}
	if fl.PrimaryAddress.IsValid() && fl.SecondaryAddress.IsValid() && fl.PrimaryAddress.Masked() != fl.SecondaryAddress.Masked() {
		v.errf(f+".secondary_address", "%s is not in the primary's subnet %s (expected both ends in one subnet)", fl.SecondaryAddress, fl.PrimaryAddress.Masked())
	}
	return fl
}

func (v *validator) firewall(s *Spec, l *Lab, claimAddr func(netip.Addr, string, string), claimMAC func(net.HardwareAddr, string, string)) Firewall {
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
				claimAddr(fi.Addr.Addr(), f+".address", "the active address of "+is.Name)
			}
			if is.StandbyAddress == "" {
				v.errf(f+".standby_address", "missing; expected the standby unit's address on %s (an ASA pair needs one to monitor the interface)", is.Name)
			} else {
				fi.StandbyAddr = v.addr(f+".standby_address", is.StandbyAddress)
				if fi.StandbyAddr.IsValid() {
					claimAddr(fi.StandbyAddr, f+".standby_address", "the standby address of "+is.Name)
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
			claimMAC(fi.VirtualMAC, f+".virtual_mac", "the virtual MAC of "+is.Name)
		}
		if fi.StandbyVirtualMAC != nil {
			claimMAC(fi.StandbyVirtualMAC, f+".standby_virtual_mac", "the standby virtual MAC of "+is.Name)
		}
		fw.Interfaces = append(fw.Interfaces, fi)
	}
	// Burned-in MACs of each unit's interfaces.
	for ui := range l.Units {
		u := &l.Units[ui]
		for _, fi := range fw.Interfaces {
			m := deriveMAC(s.Name, u.Name, fi.Name)
			u.MACs[fi.Name] = m
			claimMAC(m, "nodes."+u.Name, u.Name+":"+fi.Name)
		}
		for _, link := range []*FailoverLink{&l.Failover.Link, l.Failover.StateLink} {
			if link != nil && link.Interface != "" {
				u.MACs[link.Interface] = deriveMAC(s.Name, u.Name, link.Interface)
			}
		}
	}
	if transparent {
		if fs.Management == nil {
			v.errf("firewall.management", "missing; transparent mode needs a management address (expected address and standby_address)")
		} else {
			fw.ManagementAddr = v.hostPrefix("firewall.management.address", fs.Management.Address, true)
			if fw.ManagementAddr.IsValid() {
				claimAddr(fw.ManagementAddr.Addr(), "firewall.management.address", "the management address")
			}
			fw.ManagementStandbyAddr = v.addr("firewall.management.standby_address", fs.Management.StandbyAddress)
			if fw.ManagementStandbyAddr.IsValid() {
				claimAddr(fw.ManagementStandbyAddr, "firewall.management.standby_address", "the standby management address")
			}
		}
	} else if fs.Management != nil {
		v.errf("firewall.management", "only transparent mode has a management address (routed mode uses the interface addresses)")
	}
	for i, r := range fs.Routes {
		f := fmt.Sprintf("firewall.routes[%d]", i)
		if r == nil {
			v.errf(f, "empty route; expected interface, to and via")
			continue
		}
		fr := FirewallRoute{Interface: r.Interface, To: v.prefix(f+".to", r.To), Via: v.addr(f+".via", r.Via)}
		fw.Routes = append(fw.Routes, fr)
	}
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
		fw.NAT = append(fw.NAT, r)
	}
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
			fw.AccessLists[name] = append(fw.AccessLists[name], ace)
		}
	}
	for i, g := range fs.AccessGroups {
		f := fmt.Sprintf("firewall.access_groups[%d]", i)
		if g == nil {
			v.errf(f, "empty access group; expected access_list and interface")
			continue
		}
		if g.Direction != "" && g.Direction != "in" {
			v.errf(f+".direction", "%q is not supported (expected in: access lists filter traffic entering the interface)", g.Direction)
		}
		fw.AccessGroups = append(fw.AccessGroups, AccessGroup{AccessList: g.AccessList, Interface: g.Interface})
	}
	if t := fs.Timeouts; t != nil {
		d := defaultTimeouts
		fw.Timeouts = Timeouts{
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
	return fw
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

// links resolves the cables and checks that every interface is cabled once,
// that both units reach every data switch, and that the units share a
// failover link.
func (v *validator) links(s *Spec, l *Lab, hostIfaces map[string]map[string]bool) {
	switches := map[string]bool{}
	for _, sw := range l.Switches {
		switches[sw.Name] = true
	}
	units := map[string]bool{}
	for _, u := range l.Units {
		units[u.Name] = true
	}
	unitIfaces := map[string]bool{}
	for _, fi := range l.Firewall.Interfaces {
		unitIfaces[fi.Name] = true
	}
	unitIfaces[l.Failover.Link.Interface] = true
	if l.Failover.StateLink != nil {
		unitIfaces[l.Failover.StateLink.Interface] = true
	}
	used := map[string]string{} // node:iface -> field
	// data interface -> unit -> switch
	cabled := map[string]map[string]string{}
	peerLinks := map[string]map[string]bool{} // iface -> units linked to each other
	for i, ls := range s.Links {
		f := fmt.Sprintf("links[%d]", i)
		if ls == nil || len(ls.Endpoints) != 2 {
			v.errf(f+".endpoints", "expected exactly two endpoints, like [client1:eth0, sw-inside]")
			continue
		}
		var eps [2]Endpoint
		ok := true
		for j, e := range ls.Endpoints {
			ff := fmt.Sprintf("%s.endpoints[%d]", f, j)
			node, iface, hasIface := strings.Cut(e, ":")
			n, known := s.Nodes[node]
			switch {
			case !known || n == nil:
				v.errf(ff, "unknown node %q (expected one of: %s)", node, strings.Join(l.NodeNames(), ", "))
				ok = false
				continue
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
				if !unitIfaces[iface] {
					v.errf(ff, "unit %s has no interface %q (expected a firewall interface or the failover/state link: %s)", node, iface, strings.Join(keys(unitIfaces), ", "))
					ok = false
				}
			}
			if hasIface {
				if prev, dup := used[e]; dup {
					v.errf(ff, "%s is already cabled (%s, line %d)", e, prev, v.pos.Line(prev))
					ok = false
				}
				used[e] = ff
			}
			eps[j] = Endpoint{Node: node, Iface: iface}
		}
		if !ok {
			continue
		}
		a, b := eps[0], eps[1]
		if switches[a.Node] && switches[b.Node] {
			v.errf(f+".endpoints", "links switch to switch (expected a node interface on at least one end)")
			continue
		}
		if a.Node == b.Node {
			v.errf(f+".endpoints", "links %s to itself", a.Node)
			continue
		}
		for _, pair := range [][2]Endpoint{{a, b}, {b, a}} {
			x, y := pair[0], pair[1]
			if units[x.Node] {
				isFailover := x.Iface == l.Failover.Link.Interface || (l.Failover.StateLink != nil && x.Iface == l.Failover.StateLink.Interface)
				switch {
				case isFailover && !(units[y.Node] && y.Iface == x.Iface):
					v.errf(f+".endpoints", "%s:%s must link to the other unit's %s", x.Node, x.Iface, x.Iface)
				case isFailover:
					if peerLinks[x.Iface] == nil {
						peerLinks[x.Iface] = map[string]bool{}
					}
					peerLinks[x.Iface][x.Node] = true
				case !switches[y.Node]:
					v.errf(f+".endpoints", "%s:%s is a data interface and must link to a switch, both units to the same one", x.Node, x.Iface)
				default:
					if cabled[x.Iface] == nil {
						cabled[x.Iface] = map[string]string{}
					}
					cabled[x.Iface][x.Node] = y.Node
				}
			}
		}
		l.Links = append(l.Links, Link{A: a, B: b})
	}
	for _, h := range l.Hosts {
		for in := range hostIfaces[h.Name] {
			if _, ok := used[h.Name+":"+in]; !ok {
				v.errf("nodes."+h.Name+".interfaces."+in, "interface %s:%s is not cabled (expected a link in links)", h.Name, in)
			}
		}
	}
	if len(l.Units) != 2 {
		return
	}
	for _, u := range l.Units {
		if !peerLinks[l.Failover.Link.Interface][u.Name] {
			v.errf("nodes."+u.Name, "unit %s has no failover link (expected a link [%s:%s, %s:%s])", u.Name, l.Units[0].Name, l.Failover.Link.Interface, l.Units[1].Name, l.Failover.Link.Interface)
		}
		if sl := l.Failover.StateLink; sl != nil && !peerLinks[sl.Interface][u.Name] {
			v.errf("nodes."+u.Name, "unit %s has no state link (expected a link [%s:%s, %s:%s])", u.Name, l.Units[0].Name, sl.Interface, l.Units[1].Name, sl.Interface)
		}
	}
	for i := range l.Firewall.Interfaces {
		fi := &l.Firewall.Interfaces[i]
		swA, swB := cabled[fi.Name][l.Units[0].Name], cabled[fi.Name][l.Units[1].Name]
		switch {
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
