package firewall

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/falab/falab/firewall/header"
)

// Config is the static configuration of one unit's data plane, the
// equivalent of the ASA's interface, route, nat, access-list, access-group
// and timeout commands. New validates it and compiles it; it is not
// changed afterwards.
type Config struct {
	Interfaces   []InterfaceConfig
	Routes       []Route
	NAT          []NATRule
	AccessLists  map[string][]ACE
	AccessGroups []AccessGroup
	Timeouts     Timeouts
	// Fragment are the reassembly limits (ASA "fragment size|chain|timeout"),
	// the same for every interface.
	Fragment FragmentLimits
	Limits   Limits

	// Mode is ModeRouted (the default when empty) or ModeTransparent.
	// In transparent mode the unit bridges its data interfaces inside one
	// subnet: interfaces, Routes and NAT carry no addresses and must be
	// empty, and the unit owns only its management addresses.
	Mode string
	// ManagementAddr is the transparent unit's own address with the
	// subnet's mask, answered (ARP and ping) on every data interface by
	// the active unit; zero for none. Transparent mode only.
	ManagementAddr netip.Prefix
	// ManagementStandbyAddr is answered by the standby unit, in
	// ManagementAddr's subnet; zero for none. Transparent mode only.
	ManagementStandbyAddr netip.Addr
	// AllowEtherTypes are the EtherTypes bridged (without inspection) in
	// transparent mode besides IPv4 and ARP, which are always bridged
	// (IPv4 statefully). Values below 0x0600 are 802.3 lengths, not
	// EtherTypes, and are refused.
	AllowEtherTypes []uint16
	// NoRandomSequence turns off TCP initial sequence number
	// randomization (ASA "set connection random-sequence-number
	// disable"). The zero value keeps it on: every TCP connection gets a
	// random offset added to the initiator's sequence numbers, so that a
	// host with a guessable ISN generator is not exposed beyond the
	// firewall.
	NoRandomSequence bool

	// DisableReversePathCheck turns off the reverse-path check (on by
	// default, as ASA "ip verify reverse-path" on every interface): a
	// packet is dropped (rpf-violated) unless the route to its source
	// leaves by the interface it came in on. Transparent mode has no
	// routes and never checks.
	DisableReversePathCheck bool
	// DisableMartianCheck turns off the drop of packets with impossible
	// addresses (on by default): martian or spoofed sources (0/8, 127/8,
	// multicast, 240/4, a directed broadcast, the unit's own addresses),
	// martian destinations and source equal to destination.
	DisableMartianCheck bool
}

// Modes of Config.Mode.
const (
	ModeRouted      = "routed"
	ModeTransparent = "transparent"
)

// InterfaceConfig is one data interface. Name is the ASA nameif and the
// Linux interface name inside the unit's namespace.
type InterfaceConfig struct {
	Name          string
	SecurityLevel int              // 0..100; traffic flows freely only from higher to lower
	Prefix        netip.Prefix     // active address with its mask, e.g. 198.18.1.1/24; zero in transparent mode
	StandbyAddr   netip.Addr       // standby address in the same network; zero if none (always in transparent mode)
	ActiveMAC     net.HardwareAddr // source MAC and ARP answer while active (for the management address in transparent mode)
	StandbyMAC    net.HardwareAddr // source MAC and ARP answer while standby
	// MTU is the largest IPv4 packet the interface sends, MinMTU..MaxMTU;
	// 0 means 1500. Larger packets are fragmented, or refused with ICMP
	// "fragmentation needed" when they have DF set.
	MTU int
}

// MTU bounds: those the lab accepts for its links (an ASA allows 64-9198).
const (
	DefaultMTU = 1500
	MinMTU     = 576
	MaxMTU     = 9000
)

// MaxFrameLen returns the longest Ethernet frame (without FCS) any of the
// configured interfaces carries: the largest MTU, the Ethernet header and
// room for one VLAN tag. Ports' receive buffers (an AF_PACKET ring slot)
// must hold that much.
func (c Config) MaxFrameLen() int {
	m := DefaultMTU
	for _, ic := range c.Interfaces {
		m = max(m, min(ic.MTU, MaxMTU))
	}
	return m + header.EthernetLen + 4
}

// FragmentLimits bound IPv4 reassembly (see fragment.go). Zero fields take
// the ASA defaults.
type FragmentLimits struct {
	// Size is how many fragments may await reassembly per interface
	// (ASA "fragment size", default 200).
	Size int
	// Chain is the most fragments one datagram may have (ASA "fragment
	// chain", default 24).
	Chain int
	// Timeout is how long a datagram may take to arrive whole (ASA
	// "fragment timeout", default 5s).
	Timeout time.Duration
	// Memory bounds the bytes of buffers the whole unit holds for
	// fragments awaiting reassembly, whatever the interfaces' sizes add
	// up to (default 4 MiB).
	Memory int
}

func (l FragmentLimits) withDefaults() FragmentLimits {
	if l.Size <= 0 {
		l.Size = 200
	}
	if l.Chain <= 0 {
		l.Chain = 24
	}
	if l.Timeout <= 0 {
		l.Timeout = 5 * time.Second
	}
	if l.Memory <= 0 {
		l.Memory = 4 << 20
	}
	return l
}

// Route is a static route. Connected routes come from the interfaces.
type Route struct {
	Interface string
	Prefix    netip.Prefix
	NextHop   netip.Addr
}

// NATKind says which kind of NAT rule a NATRule is.
type NATKind uint8

// NAT rule kinds.
const (
	// NATDynamicPAT maps every host of Real to one address with port
	// translation (ASA "nat (inside,outside) dynamic interface").
	NATDynamicPAT NATKind = iota + 1
	// NATStatic maps one real host to one mapped address both ways
	// (ASA "nat (inside,outside) static").
	NATStatic
)

// String returns "pat" or "static".
func (k NATKind) String() string {
	switch k {
	case NATDynamicPAT:
		return "pat"
	case NATStatic:
		return "static"
	}
	return fmt.Sprintf("NATKind(%d)", uint8(k))
}

// NATRule is one NAT rule. For NATStatic, Real must be a single host
// (a /32). Mapped zero means the mapped interface's active address.
// PortLow and PortHigh bound the PAT port pool (zero: 1024-65535).
type NATRule struct {
	Kind            NATKind
	RealInterface   string
	Real            netip.Prefix
	MappedInterface string
	Mapped          netip.Addr
	PortLow         uint16
	PortHigh        uint16
}

// ACE is one access control entry. Protocol is "ip", "tcp", "udp" or
// "icmp"; an invalid (zero) prefix means any; DstPortLow and DstPortHigh
// both zero mean any port.
type ACE struct {
	Permit      bool
	Protocol    string
	Source      netip.Prefix
	Destination netip.Prefix
	DstPortLow  uint16
	DstPortHigh uint16
}

// AccessGroup binds an access list inbound on an interface. As on the ASA
// the list then replaces the security-level rule for traffic entering there.
type AccessGroup struct {
	AccessList string
	Interface  string
}

// Timeouts are the idle timeouts of the tables (ASA "timeout" command).
// Zero fields take the ASA defaults.
type Timeouts struct {
	Conn       time.Duration // established TCP, default 1h
	HalfClosed time.Duration // TCP after the first FIN, default 10m
	TimeWait   time.Duration // TCP after both FINs are acknowledged, default 30s
	Embryonic  time.Duration // TCP before the handshake completes, default 30s
	UDP        time.Duration // default 2m
	ICMP       time.Duration // default 2s
	Xlate      time.Duration // static and dynamic xlates (kept for the ASA's sake), default 3h
	PATXlate   time.Duration // a PAT xlate after its last connection, default 30s
	ARP        time.Duration // ARP entries, default 4h
	MACAddress time.Duration // bridge (MAC address) table entries in transparent mode, default 5m
}

func (t Timeouts) withDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Conn, time.Hour)
	def(&t.HalfClosed, 10*time.Minute)
	def(&t.TimeWait, 30*time.Second)
	def(&t.Embryonic, 30*time.Second)
	def(&t.UDP, 2*time.Minute)
	def(&t.ICMP, 2*time.Second)
	def(&t.Xlate, 3*time.Hour)
	def(&t.PATXlate, 30*time.Second)
	def(&t.ARP, 4*time.Hour)
	def(&t.MACAddress, 5*time.Minute)
	return t
}

// Limits bound what one host, or a flood, can take of the unit's tables,
// like the ASA's "set connection embryonic-conn-max",
// "set connection per-client-embryonic-max" and "switchport
// port-security maximum". Zero fields take the defaults; a negative field
// means no limit. Replicated entries are never refused by a limit (the
// standby must hold what the active holds); only new flows and new
// stations on the active are.
type Limits struct {
	// PATPortsPerHost bounds the PAT xlates (mapped ports) one real host
	// may hold over all protocols and mapped addresses, so that one host
	// cannot take a pool that all the inside shares. Default 4096.
	PATPortsPerHost int
	// EmbryonicMax bounds the unit's half-open TCP connections (SYN seen,
	// handshake not complete); beyond it new SYNs are dropped
	// (embryonic-limit). Default 65536.
	EmbryonicMax int
	// EmbryonicPerClient bounds the half-open TCP connections one
	// initiator may have. Default 1024.
	EmbryonicPerClient int
	// MACsPerInterface bounds the stations learnt behind one interface in
	// transparent mode (port security), so that a MAC flood on one
	// segment cannot displace the stations of the others from the table;
	// frames from a new station beyond it are dropped (l2-mac-limit).
	// Default 1024.
	MACsPerInterface int
}

// limits is Limits compiled: zero means no limit.
type limits struct {
	patPerHost         int
	embryonicMax       int
	embryonicPerClient int
	macsPerIf          int
}

func (l Limits) compile() limits {
	pick := func(v, def int) int {
		switch {
		case v < 0:
			return 0
		case v == 0:
			return def
		}
		return v
	}
	return limits{
		patPerHost:         pick(l.PATPortsPerHost, 4096),
		embryonicMax:       pick(l.EmbryonicMax, 65536),
		embryonicPerClient: pick(l.EmbryonicPerClient, 1024),
		macsPerIf:          pick(l.MACsPerInterface, 1024),
	}
}

// iface is the compiled form of one InterfaceConfig plus its run-time
// state. All fields but port and stats are immutable after New.
type iface struct {
	idx        int
	name       string
	sec        int
	prefix     netip.Prefix
	netAddr    uint32
	mask       uint32
	addr       [4]byte
	standby    [4]byte
	hasStandby bool
	activeMAC  [6]byte
	standbyMAC [6]byte
	acl        []ace // nil: no access-group, security levels decide
	hasACL     bool
	proxyARP   [][4]byte // NAT mapped addresses answered for while active
	mtu        int       // largest IPv4 packet sent, header included
	frags      fragQueue // datagrams awaiting reassembly (fragment.go)

	port Port // set by Attach before Run; read-only afterwards
	// arpPort, when attached (AttachARP), receives this interface's ARP
	// apart from the data: the data port's ARP frames are then ignored.
	arpPort Port
	stats   ifaceCounters
}

type route struct {
	netAddr, mask uint32
	bits          int
	ifIdx         int
	nextHop       [4]byte // zero: connected, the destination itself is the next hop
	prefix        netip.Prefix
	connected     bool
}

type staticNAT struct {
	realIf, mappedIf int
	real, mapped     [4]byte
}

type patRule struct {
	realIf, mappedIf int
	netAddr, mask    uint32
	mapped           [4]byte
	low, high        uint16
}

type ace struct {
	permit            bool
	proto             uint8 // 0: any IP protocol
	srcNet, srcMask   uint32
	dstNet, dstMask   uint32
	portLow, portHigh uint16
}

func u32(a [4]byte) uint32 { return binary.BigEndian.Uint32(a[:]) }

func maskOf(bits int) uint32 {
	if bits == 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

// prefixMatch compiles an IPv4 prefix; the zero Prefix means any.
func prefixMatch(p netip.Prefix) (netAddr, mask uint32, err error) {
	if !p.IsValid() {
		return 0, 0, nil
	}
	if !p.Addr().Is4() {
		return 0, 0, fmt.Errorf("prefix %s is not IPv4", p)
	}
	p = p.Masked()
	return u32(p.Addr().As4()), maskOf(p.Bits()), nil
}

var errConfig = errors.New("firewall config")

func cfgErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errConfig, fmt.Sprintf(format, a...))
}

// compile validates cfg and fills the firewall's immutable rule state.
func (f *Firewall) compile(cfg Config) error {
	if len(cfg.Interfaces) == 0 {
		return cfgErr("no interfaces")
	}
	if len(cfg.Interfaces) > 255 {
		return cfgErr("%d interfaces, at most 255", len(cfg.Interfaces))
	}
	switch cfg.Mode {
	case "", ModeRouted:
		if cfg.ManagementAddr.IsValid() || cfg.ManagementStandbyAddr.IsValid() || len(cfg.AllowEtherTypes) > 0 {
			return cfgErr("management addresses and allowed EtherTypes are for transparent mode only")
		}
	case ModeTransparent:
		if err := f.compileTransparent(cfg); err != nil {
			return err
		}
	default:
		return cfgErr("mode %q is not %q or %q", cfg.Mode, ModeRouted, ModeTransparent)
	}
	f.byName = make(map[string]int, len(cfg.Interfaces))
	for i, ic := range cfg.Interfaces {
		switch {
		case ic.Name == "" || len(ic.Name) > 15:
			return cfgErr("interface %d: name %q must be 1-15 bytes", i, ic.Name)
		case f.hasInterface(ic.Name):
			return cfgErr("interface %q defined twice", ic.Name)
		case f.transparent && (ic.Prefix.IsValid() || ic.StandbyAddr.IsValid()):
			return cfgErr("interface %q: interfaces have no address in transparent mode (use ManagementAddr)", ic.Name)
		case !f.transparent && (!ic.Prefix.IsValid() || !ic.Prefix.Addr().Is4() || ic.Prefix.Bits() == 0 || ic.Prefix.Bits() > 30):
			return cfgErr("interface %q: prefix %v must be an IPv4 address with a /1-/30 mask", ic.Name, ic.Prefix)
		case ic.StandbyAddr.IsValid() && (!ic.StandbyAddr.Is4() || !ic.Prefix.Contains(ic.StandbyAddr) || ic.StandbyAddr == ic.Prefix.Addr()):
			return cfgErr("interface %q: standby address %v must be another address of %v", ic.Name, ic.StandbyAddr, ic.Prefix)
		case len(ic.ActiveMAC) != 6 || len(ic.StandbyMAC) != 6:
			return cfgErr("interface %q: active and standby MACs must be 6 bytes", ic.Name)
		case ic.SecurityLevel < 0 || ic.SecurityLevel > 100:
			return cfgErr("interface %q: security level %d outside 0-100", ic.Name, ic.SecurityLevel)
		case ic.MTU != 0 && (ic.MTU < MinMTU || ic.MTU > MaxMTU):
			return cfgErr("interface %q: MTU %d outside %d-%d", ic.Name, ic.MTU, MinMTU, MaxMTU)
		}
		netA, mask, _ := prefixMatch(ic.Prefix)
		it := &iface{
			idx: i, name: ic.Name, sec: ic.SecurityLevel, prefix: ic.Prefix,
			netAddr: netA, mask: mask,
			activeMAC: [6]byte(ic.ActiveMAC), standbyMAC: [6]byte(ic.StandbyMAC),
			mtu: cmp.Or(ic.MTU, DefaultMTU),
		}
		if ic.Prefix.IsValid() {
			it.addr = ic.Prefix.Addr().As4()
		}
		if ic.StandbyAddr.IsValid() {
			it.standby, it.hasStandby = ic.StandbyAddr.As4(), true
		}
		f.ifs = append(f.ifs, it)
		f.byName[ic.Name] = i
		if f.transparent {
			continue // no address, so no connected route
		}
		f.routes = append(f.routes, route{netAddr: netA, mask: mask, bits: ic.Prefix.Bits(), ifIdx: i,
			prefix: ic.Prefix.Masked(), connected: true})
	}
	for _, r := range cfg.Routes {
		i, ok := f.byName[r.Interface]
		if !ok {
			return cfgErr("route %v: unknown interface %q", r.Prefix, r.Interface)
		}
		if !r.Prefix.IsValid() || !r.Prefix.Addr().Is4() {
			return cfgErr("route on %q: prefix %v is not IPv4", r.Interface, r.Prefix)
		}
		if !r.NextHop.Is4() || !f.ifs[i].prefix.Contains(r.NextHop) {
			return cfgErr("route %v: next hop %v is not on %q's network %v", r.Prefix, r.NextHop, r.Interface, f.ifs[i].prefix)
		}
		netA, mask, _ := prefixMatch(r.Prefix)
		f.routes = append(f.routes, route{netAddr: netA, mask: mask, bits: r.Prefix.Bits(), ifIdx: i,
			nextHop: r.NextHop.As4(), prefix: r.Prefix.Masked()})
	}
	// Longest prefix first; connected before static at equal length.
	slices.SortStableFunc(f.routes, func(a, b route) int { return b.bits - a.bits })

	seenMapped := map[[4]byte]string{}
	for i, n := range cfg.NAT {
		ri, ok1 := f.byName[n.RealInterface]
		mi, ok2 := f.byName[n.MappedInterface]
		if !ok1 || !ok2 {
			return cfgErr("nat rule %d: unknown interface in (%q,%q)", i, n.RealInterface, n.MappedInterface)
		}
		if ri == mi {
			return cfgErr("nat rule %d: real and mapped interface are both %q", i, n.RealInterface)
		}
		if !n.Real.IsValid() || !n.Real.Addr().Is4() {
			return cfgErr("nat rule %d: real %v is not an IPv4 prefix", i, n.Real)
		}
		mapped := f.ifs[mi].addr
		if n.Mapped.IsValid() {
			if !n.Mapped.Is4() {
				return cfgErr("nat rule %d: mapped %v is not IPv4", i, n.Mapped)
			}
			mapped = n.Mapped.As4()
		}
		key := fmt.Sprint(n.Kind)
		if prev, dup := seenMapped[mapped]; dup && (prev != key || n.Kind == NATStatic) {
			return cfgErr("nat rule %d: mapped address %v already used by a %s rule", i, netip.AddrFrom4(mapped), prev)
		}
		seenMapped[mapped] = key
		if mapped != f.ifs[mi].addr {
			f.ifs[mi].proxyARP = append(f.ifs[mi].proxyARP, mapped)
		}
		switch n.Kind {
		case NATStatic:
			if n.Real.Bits() != 32 {
				return cfgErr("nat rule %d: static NAT needs a /32 real host, got %v", i, n.Real)
			}
			f.statics = append(f.statics, staticNAT{realIf: ri, mappedIf: mi, real: n.Real.Addr().As4(), mapped: mapped})
		case NATDynamicPAT:
			low, high := n.PortLow, n.PortHigh
			if low == 0 && high == 0 {
				low, high = 1024, 65535
			}
			if low == 0 || high < low {
				return cfgErr("nat rule %d: PAT port range %d-%d is empty or includes 0", i, low, high)
			}
			netA, mask, _ := prefixMatch(n.Real)
			f.pats = append(f.pats, patRule{realIf: ri, mappedIf: mi, netAddr: netA, mask: mask, mapped: mapped, low: low, high: high})
		default:
			return cfgErr("nat rule %d: unknown kind %d", i, n.Kind)
		}
	}

	acls := map[string][]ace{}
	for name, list := range cfg.AccessLists {
		var out []ace
		for j, e := range list {
			var a ace
			a.permit = e.Permit
			switch e.Protocol {
			case "ip", "":
			case "tcp":
				a.proto = header.ProtocolTCP
			case "udp":
				a.proto = header.ProtocolUDP
			case "icmp":
				a.proto = header.ProtocolICMP
			default:
				return cfgErr("access-list %q line %d: protocol %q is not ip, tcp, udp or icmp", name, j+1, e.Protocol)
			}
			var err error
			if a.srcNet, a.srcMask, err = prefixMatch(e.Source); err != nil {
				return cfgErr("access-list %q line %d: source: %v", name, j+1, err)
			}
			if a.dstNet, a.dstMask, err = prefixMatch(e.Destination); err != nil {
				return cfgErr("access-list %q line %d: destination: %v", name, j+1, err)
			}
			a.portLow, a.portHigh = e.DstPortLow, e.DstPortHigh
			if a.portHigh == 0 && a.portLow != 0 {
				a.portHigh = a.portLow
			}
			if a.portHigh < a.portLow {
				return cfgErr("access-list %q line %d: port range %d-%d is empty", name, j+1, a.portLow, a.portHigh)
			}
			out = append(out, a)
		}
		acls[name] = out
	}
	for _, g := range cfg.AccessGroups {
		i, ok := f.byName[g.Interface]
		if !ok {
			return cfgErr("access-group %q: unknown interface %q", g.AccessList, g.Interface)
		}
		list, ok := acls[g.AccessList]
		if !ok {
			return cfgErr("access-group on %q: unknown access-list %q", g.Interface, g.AccessList)
		}
		if f.ifs[i].hasACL {
			return cfgErr("interface %q has two access-groups", g.Interface)
		}
		f.ifs[i].acl, f.ifs[i].hasACL = list, true
	}
	f.timeouts = cfg.Timeouts.withDefaults()
	if l := cfg.Fragment; l.Size < 0 || l.Chain < 0 || l.Timeout < 0 || l.Memory < 0 {
		return cfgErr("fragment limits %+v: negative", l)
	}
	f.fragLimits = cfg.Fragment.withDefaults()
	f.randomSeq = !cfg.NoRandomSequence
	f.limits = cfg.Limits.compile()
	f.compileSanity(cfg)
	return nil
}

// lookupRoute returns the egress interface and next hop for dst by longest
// prefix match. Routes are few and sorted, so a scan is the fastest.
func (f *Firewall) lookupRoute(dst [4]byte) (ifIdx int, nextHop [4]byte, ok bool) {
	d := u32(dst)
	for i := range f.routes {
		r := &f.routes[i]
		if d&r.mask == r.netAddr {
			if r.connected {
				return r.ifIdx, dst, true
			}
			return r.ifIdx, r.nextHop, true
		}
	}
	return 0, [4]byte{}, false
}

// aclPermits evaluates list against the real (untranslated) addresses;
// the first matching entry decides and no match is an implicit deny.
func aclPermits(list []ace, proto uint8, src, dst [4]byte, dport uint16) bool {
	s, d := u32(src), u32(dst)
	for i := range list {
		a := &list[i]
		if a.proto != 0 && a.proto != proto {
			continue
		}
		if s&a.srcMask != a.srcNet || d&a.dstMask != a.dstNet {
			continue
		}
		if a.portHigh != 0 && (proto == header.ProtocolTCP || proto == header.ProtocolUDP) && (dport < a.portLow || dport > a.portHigh) {
			continue
		}
		if a.portHigh != 0 && proto != header.ProtocolTCP && proto != header.ProtocolUDP {
			continue
		}
		return a.permit
	}
	return false
}

func (f *Firewall) hasInterface(name string) bool {
	_, ok := f.byName[name]
	return ok
}
