package firewall

// Ingress sanity checks of IPv4 packets, before any table is consulted:
// the ASA's "ip verify reverse-path", its martian (invalid address) and
// land checks, its IP options policy and its refusal to pass ICMP
// redirects. Each failure is a drop with its own reason and changes no
// state. They run on every packet, so they are a few compares and, for
// the reverse-path check, one route lookup.

import "github.com/falab/falab/firewall/header"

// IP option types (RFC 791, RFC 2113).
const (
	ipOptEOL         = 0
	ipOptNOP         = 1
	ipOptRouterAlert = 148
	icmpRedirect     = 5
)

// sanityRules are the compiled ingress checks; immutable after New.
type sanityRules struct {
	noRPF     bool
	noMartian bool
	// badSrc are sources no packet may carry into the unit: the pair's own
	// addresses (both roles, NAT mapped addresses included) and the
	// directed broadcast addresses of the connected subnets. ownSrc holds
	// those of each interface: once the reverse-path check has placed the
	// source behind the ingress interface, only its own need checking.
	badSrc []uint32
	ownSrc [][]uint32
	// badDst are the connected subnets' network and broadcast addresses:
	// the unit forwards no directed broadcast.
	badDst []uint32
}

// compileSanity fills f.sanity from cfg once the interfaces and NAT rules
// are compiled.
func (f *Firewall) compileSanity(cfg Config) {
	s := sanityRules{noRPF: cfg.DisableReversePathCheck || f.transparent, noMartian: cfg.DisableMartianCheck}
	if f.transparent {
		if f.hasMgmt {
			s.badSrc = append(s.badSrc, u32(f.mgmtAddr))
		}
		if f.hasMgmtStandby {
			s.badSrc = append(s.badSrc, u32(f.mgmtStandby))
		}
	}
	for _, it := range f.ifs {
		if f.transparent {
			continue
		}
		bcast := it.netAddr | ^it.mask
		own := []uint32{u32(it.addr), bcast}
		if it.hasStandby {
			own = append(own, u32(it.standby))
		}
		for _, m := range it.proxyARP {
			own = append(own, u32(m))
		}
		s.ownSrc = append(s.ownSrc, own)
		s.badSrc = append(s.badSrc, own...)
		s.badDst = append(s.badDst, it.netAddr, bcast)
	}
	f.sanity = s
}

// checkIngress runs the routed mode's checks on ip, a valid IPv4 header
// trimmed to its total length, received on in.
func (w *worker) checkIngress(in *iface, ip header.IPv4) DropReason {
	f := w.f
	s := &f.sanity
	if r := checkIPv4Common(ip); r != dropNone {
		return r
	}
	src, dst := ip.SourceAddress(), ip.DestinationAddress()
	if !s.noMartian {
		switch {
		case martianSource(src):
			return DropMartianSource
		case dst[0] == 0 || dst[0] == 127 || dst[0] >= 224:
			// A routed unit routes no multicast.
			return DropMartianDest
		case src == dst:
			return DropLandAttack
		}
		da := u32(dst)
		for _, a := range s.badDst {
			if a == da {
				return DropMartianDest
			}
		}
	}
	own := s.badSrc
	if !s.noRPF {
		if i, _, ok := f.lookupRoute(src); !ok || i != in.idx {
			// Also the pair's addresses of other interfaces.
			return DropRPFViolated
		}
		own = s.ownSrc[in.idx]
	}
	if !s.noMartian {
		sa := u32(src)
		for _, a := range own {
			if a == sa {
				return DropMartianSource
			}
		}
	}
	return dropNone
}

// checkBridged runs the checks that make sense in transparent mode (no
// routes, so no reverse-path check): options, redirects and martians,
// letting DHCP's 0.0.0.0 -> 255.255.255.255 through.
func (w *worker) checkBridged(ip header.IPv4) DropReason {
	s := &w.f.sanity
	if r := checkIPv4Common(ip); r != dropNone {
		return r
	}
	if s.noMartian {
		return dropNone
	}
	src, dst := ip.SourceAddress(), ip.DestinationAddress()
	limited := dst == [4]byte{255, 255, 255, 255}
	switch {
	case martianSource(src) && !(src == [4]byte{} && limited):
		return DropMartianSource
	case dst[0] == 0 || dst[0] == 127 || dst[0] >= 240 && !limited:
		return DropMartianDest
	case src == dst:
		return DropLandAttack
	}
	sa := u32(src)
	for _, a := range s.badSrc {
		if a == sa {
			return DropMartianSource
		}
	}
	return dropNone
}

// martianSource reports whether a is no host's unicast address: 0/8,
// 127/8, multicast 224/4 or 240/4 (255.255.255.255 included).
func martianSource(a [4]byte) bool { return a[0] == 0 || a[0] == 127 || a[0] >= 224 }

// checkIPv4Common applies the options policy and refuses ICMP redirects.
func checkIPv4Common(ip header.IPv4) DropReason {
	if ip.HeaderLength() > header.IPv4MinimumSize {
		if r := checkIPOptions(ip); r != dropNone {
			return r
		}
	}
	if ip.Protocol() == header.ProtocolICMP && ip.FragmentOffset() == 0 {
		if pl := ip.Payload(); len(pl) > 0 && pl[0] == icmpRedirect {
			return DropICMPRedirect
		}
	}
	return dropNone
}

// checkIPOptions walks the options of ip as an ASA does by default: EOL,
// NOP and Router Alert pass, any other option drops the packet
// (ip-options), and a list that does not parse is a bad header.
func checkIPOptions(ip header.IPv4) DropReason {
	opts := ip[header.IPv4MinimumSize:ip.HeaderLength()]
	verdict := dropNone
	for i := 0; i < len(opts); {
		switch t := opts[i]; t {
		case ipOptEOL:
			return verdict
		case ipOptNOP:
			i++
		default:
			if len(opts)-i < 2 {
				return DropBadIPHeader
			}
			l := int(opts[i+1])
			if l < 2 || l > len(opts)-i || t == ipOptRouterAlert && l != 4 {
				return DropBadIPHeader
			}
			if t != ipOptRouterAlert {
				verdict = DropIPOptions
			}
			i += l
		}
	}
	return verdict
}
