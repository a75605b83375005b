package labfile

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"time"

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
	if spec == nil {
		return nil, err
	}
	// A field Parse reported is left unset in spec; the validator stays
	// silent about it, so that one mistake is reported once.
	parseProbs, _ := err.(Problems)
	v := &validator{file: file, pos: pos, parsed: parseProbs}
	l := v.resolve(spec)
	if probs := append(parseProbs, v.probs...); len(probs) > 0 {
		return nil, probs
	}
	l.File = file
	return l, nil
}

type validator struct {
	file  string
	pos   Positions
	probs Problems
	// parsed are the problems Parse found; their fields are unset in the
	// Spec, and errf drops what the validator would say about them.
	parsed Problems
	// badKind names the nodes whose kind is missing or invalid: they
	// exist (a link to one is no unknown node), but every check that
	// depends on a node's kind skips them.
	badKind map[string]bool
	addrs   map[netip.Addr]addrOwner // who holds each address, for duplicate checks
	macs    map[string]addrOwner     // who holds each MAC
}

func (v *validator) errf(field, format string, args ...any) {
	for _, p := range v.parsed {
		if within(field, p.Field) || (p.hides != "" && within(field, p.hides)) {
			return
		}
	}
	v.probs = append(v.probs, Problem{File: v.file, Line: v.pos.Line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// within says whether field is path or lies under it ("" is the root).
func within(field, path string) bool {
	return path == "" || field == path || strings.HasPrefix(field, path+".") || strings.HasPrefix(field, path+"[")
}

// addrOwner remembers who holds an address or MAC, for duplicate checks.
type addrOwner struct {
	field string
	what  string
}

func (v *validator) resolve(s *Spec) *Lab {
	l := &Lab{Name: s.Name, Description: s.Description, Mode: s.Mode, Offloads: s.Offloads}
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

	hostIfaces := v.nodes(s, l)
	l.Failover = v.failover(s, l)
	l.Firewall = v.firewall(s, l)
	v.links(s, l, hostIfaces)
	v.subnets(l)
	if len(v.probs) == 0 && len(v.parsed) == 0 {
		v.firewallConfig(l)
	}
	return l
}

// claimAddr records that what (at field) holds address a, and reports a
// duplicate if another holds it already.
func (v *validator) claimAddr(a netip.Addr, field, what string) {
	if prev, dup := v.addrs[a]; dup {
		v.errf(field, "duplicate address %s: already used by %s (%s, line %d)", a, prev.what, prev.field, v.pos.Line(prev.field))
		return
	}
	if v.addrs == nil {
		v.addrs = map[netip.Addr]addrOwner{}
	}
	v.addrs[a] = addrOwner{field, what}
}

// claimMAC is claimAddr for MAC addresses.
func (v *validator) claimMAC(m net.HardwareAddr, field, what string) {
	if prev, dup := v.macs[m.String()]; dup {
		v.errf(field, "duplicate MAC %s: already used by %s (%s, line %d)", m, prev.what, prev.field, v.pos.Line(prev.field))
		return
	}
	if v.macs == nil {
		v.macs = map[string]addrOwner{}
	}
	v.macs[m.String()] = addrOwner{field, what}
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
	case strings.HasPrefix(path, "uauth"):
		return uauthField(path)
	}
	return "firewall." + labFieldNames.Replace(path)
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
