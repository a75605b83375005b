package firewall

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/fwconfig"
)

// The configuration schema and its validation are package fwconfig's;
// these names keep the data plane's code and tests reading as before.
type (
	// Config is the static configuration of one unit's data plane; New
	// validates it (fwconfig.Validate) and compiles it.
	Config          = fwconfig.Config
	InterfaceConfig = fwconfig.InterfaceConfig
	FragmentLimits  = fwconfig.FragmentLimits
	Route           = fwconfig.Route
	NATKind         = fwconfig.NATKind
	NATRule         = fwconfig.NATRule
	ACE             = fwconfig.ACE
	AccessGroup     = fwconfig.AccessGroup
	Timeouts        = fwconfig.Timeouts
	Limits          = fwconfig.Limits
)

// Modes, MTU bounds and NAT kinds of the schema.
const (
	ModeRouted      = fwconfig.ModeRouted
	ModeTransparent = fwconfig.ModeTransparent
	DefaultMTU      = fwconfig.DefaultMTU
	MinMTU          = fwconfig.MinMTU
	MaxMTU          = fwconfig.MaxMTU
	NATDynamicPAT   = fwconfig.NATDynamicPAT
	NATStatic       = fwconfig.NATStatic
)

// limits is Limits compiled: zero means no limit.
type limits struct {
	patPerHost         int
	embryonicMax       int
	embryonicPerClient int
	macsPerIf          int
}

func compileLimits(l Limits) limits {
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
	crypto     bool      // a crypto map is bound here (ipsec.go)
	frags      fragQueue // datagrams awaiting reassembly (fragment.go)

	port Port // set by Attach before Run; read-only afterwards
	// offload is port as an OffloadPort when it carries virtio_net_hdrs
	// (offload.go), else nil; set with port.
	offload OffloadPort
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

// errConfig is wrapped by every config error of New.
var errConfig = fwconfig.ErrInvalid

func cfgErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errConfig, fmt.Sprintf(format, a...))
}

// compile validates cfg (fwconfig.Validate: every problem at once) and
// fills the firewall's immutable rule state. Past validation nothing here
// can fail, but for transparent mode's own compile step.
func (f *Firewall) compile(cfg Config) error {
	if err := fwconfig.Validate(cfg); err != nil {
		return err
	}
	if cfg.Mode == ModeTransparent {
		if err := f.compileTransparent(cfg); err != nil {
			return err
		}
	}
	f.compileInterfaces(cfg)
	for _, r := range cfg.Routes {
		i := f.byName[r.Interface]
		netA, mask, _ := prefixMatch(r.Prefix)
		f.routes = append(f.routes, route{netAddr: netA, mask: mask, bits: r.Prefix.Bits(), ifIdx: i,
			nextHop: r.NextHop.As4(), prefix: r.Prefix.Masked()})
	}
	// Longest prefix first; connected before static at equal length.
	slices.SortStableFunc(f.routes, func(a, b route) int { return b.bits - a.bits })
	f.compileNAT(cfg)
	f.compileACLs(cfg)
	f.timeouts = cfg.Timeouts.WithDefaults()
	f.fragLimits = cfg.Fragment.WithDefaults()
	f.randomSeq = !cfg.NoRandomSequence
	f.limits = compileLimits(cfg.Limits)
	f.compileSanity(cfg)
	f.compileCrypto(cfg)
	return nil
}

// compileInterfaces makes the interfaces and their connected routes.
func (f *Firewall) compileInterfaces(cfg Config) {
	f.byName = make(map[string]int, len(cfg.Interfaces))
	for i, ic := range cfg.Interfaces {
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
}

// compileNAT makes the static and PAT rules and the proxy-ARP addresses.
func (f *Firewall) compileNAT(cfg Config) {
	for _, n := range cfg.NAT {
		ri, mi := f.byName[n.RealInterface], f.byName[n.MappedInterface]
		mapped := f.ifs[mi].addr
		if n.Mapped.IsValid() {
			mapped = n.Mapped.As4()
		}
		if mapped != f.ifs[mi].addr {
			f.ifs[mi].proxyARP = append(f.ifs[mi].proxyARP, mapped)
		}
		switch n.Kind {
		case NATStatic:
			f.statics = append(f.statics, staticNAT{realIf: ri, mappedIf: mi, real: n.Real.Addr().As4(), mapped: mapped})
		case NATDynamicPAT:
			low, high := n.PortLow, n.PortHigh
			if low == 0 && high == 0 {
				low, high = 1024, 65535
			}
			netA, mask, _ := prefixMatch(n.Real)
			f.pats = append(f.pats, patRule{realIf: ri, mappedIf: mi, netAddr: netA, mask: mask, mapped: mapped, low: low, high: high})
		}
	}
}

// compileACLs compiles the access lists and binds them to interfaces.
func (f *Firewall) compileACLs(cfg Config) {
	acls := map[string][]ace{}
	for name, list := range cfg.AccessLists {
		acls[name] = compileACL(list)
	}
	for _, g := range cfg.AccessGroups {
		i := f.byName[g.Interface]
		f.ifs[i].acl, f.ifs[i].hasACL = acls[g.AccessList], true
	}
}

// compileACL compiles one access list (also the service module's class).
func compileACL(list []ACE) []ace {
	out := make([]ace, 0, len(list))
	for _, e := range list {
		a := ace{permit: e.Permit, portLow: e.DstPortLow, portHigh: e.DstPortHigh}
		switch e.Protocol {
		case "tcp":
			a.proto = header.ProtocolTCP
		case "udp":
			a.proto = header.ProtocolUDP
		case "icmp":
			a.proto = header.ProtocolICMP
		}
		a.srcNet, a.srcMask, _ = prefixMatch(e.Source)
		a.dstNet, a.dstMask, _ = prefixMatch(e.Destination)
		if a.portHigh == 0 && a.portLow != 0 {
			a.portHigh = a.portLow
		}
		out = append(out, a)
	}
	return out
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
