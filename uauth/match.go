package uauth

import "net/netip"

// Protocol numbers a Rule can name; 0 matches any.
const (
	ProtoAny = 0
	ProtoTCP = 6
	ProtoUDP = 17
)

// Rule is one permit entry of the "aaa authentication match" ACL: traffic
// it matches needs an authenticated source. A zero prefix (invalid
// netip.Prefix) and a zero port match anything.
type Rule struct {
	Proto   uint8
	Src     netip.Prefix
	Dst     netip.Prefix
	DstPort uint16
}

// Rules is the match ACL; the first matching rule decides, as in an ACL
// whose entries are all permits. An empty list matches nothing.
type Rules []Rule

// Match reports whether a new connection needs an authenticated source.
// It allocates nothing.
func (rs Rules) Match(proto uint8, src, dst netip.Addr, dstPort uint16) bool {
	for i := range rs {
		r := &rs[i]
		if r.Proto != ProtoAny && r.Proto != proto {
			continue
		}
		if r.Src.IsValid() && !r.Src.Contains(src) {
			continue
		}
		if r.Dst.IsValid() && !r.Dst.Contains(dst) {
			continue
		}
		if r.DstPort != 0 && r.DstPort != dstPort {
			continue
		}
		return true
	}
	return false
}
