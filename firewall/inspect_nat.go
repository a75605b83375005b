package firewall

// NAT for inspection engines (inspect.go): the mapping of endpoints named
// inside a message (MapAddr, UnmapAddr), and the untranslation of a new
// flow addressed to a PAT mapped port that a pinhole expects.

import "github.com/falab/falab/firewall/header"

// mapEndpoint is Inspection.MapAddr in routed mode.
func (f *Firewall) mapEndpoint(x *Inspection, proto uint8, a [4]byte, port uint16) ([4]byte, uint16, bool) {
	own, ownPort, seen, seenPort := x.Orig.Src, x.Orig.SrcPort, x.Reply.Dst, x.Reply.DstPort
	if !x.FromInitiator {
		own, ownPort, seen, seenPort = x.Reply.Src, x.Reply.SrcPort, x.Orig.Dst, x.Orig.DstPort
	}
	if a == own && (port == 0 || port == ownPort) && proto == x.Orig.Proto {
		if port == 0 {
			seenPort = 0
		}
		return seen, seenPort, seen != own || seenPort != port
	}
	for i := range f.statics {
		if s := &f.statics[i]; s.realIf == x.from && s.mappedIf == x.to && s.real == a {
			return s.mapped, port, true
		}
	}
	v := u32(a)
	for i := range f.pats {
		rule := &f.pats[i]
		if rule.realIf != x.from || rule.mappedIf != x.to || v&rule.mask != rule.netAddr {
			continue
		}
		if port == 0 {
			return rule.mapped, 0, true
		}
		ref, why := f.allocatePAT(rule, proto, a, port)
		if why != dropNone {
			return a, port, false
		}
		f.releaseXlate(ref, false) // idle until the media connection takes it
		return ref.mapped, ref.mappedPort, true
	}
	return a, port, false
}

// unmapEndpoint is Inspection.UnmapAddr in routed mode.
func (f *Firewall) unmapEndpoint(x *Inspection, proto uint8, a [4]byte, port uint16) ([4]byte, uint16, bool) {
	seen, seenPort, own, ownPort := x.Orig.Dst, x.Orig.DstPort, x.Reply.Src, x.Reply.SrcPort
	if !x.FromInitiator {
		seen, seenPort, own, ownPort = x.Reply.Dst, x.Reply.DstPort, x.Orig.Src, x.Orig.SrcPort
	}
	if a == seen && (port == 0 || port == seenPort) && proto == x.Orig.Proto {
		if port == 0 {
			ownPort = 0
		}
		return own, ownPort, own != seen || ownPort != port
	}
	for i := range f.statics {
		if s := &f.statics[i]; s.mappedIf == x.from && s.realIf == x.to && s.mapped == a {
			return s.real, port, true
		}
	}
	if port == 0 {
		return a, port, false
	}
	if m := f.xlates.owner(proto, a, port); m != nil && int(m.key.mappedIf) == x.from && int(m.realIf) == x.to {
		return m.key.real, m.key.realPort, true
	}
	return a, port, false
}

// owner returns the xlate that holds mapped port port of (proto, mapped),
// or nil. The fields it is read for (the key and the real interface) are
// set when the xlate is made; an upsert of the same key rewrites them with
// the same values.
func (t *xlateTable) owner(proto uint8, mapped [4]byte, port uint16) *xlate {
	p := t.pool(poolKey{proto: proto, mapped: mapped})
	p.mu.Lock()
	defer p.mu.Unlock()
	if blk := p.owner[port>>6]; blk != nil {
		return blk[port&63]
	}
	return nil
}

// pinholeBehindPAT returns the real endpoint of new flow t addressed to a
// PAT mapped port on interface in, if a pinhole expects the flow there
// (without taking it: the policy does). Only flows that find a pinhole
// are untranslated, so stray traffic to a PAT address stays a
// no-connection drop.
func (f *Firewall) pinholeBehindPAT(in *iface, t Tuple) (real [4]byte, realPort uint16, ok bool) {
	if f.inspection.count.Load() == 0 || t.Proto != header.ProtocolTCP && t.Proto != header.ProtocolUDP {
		return t.Dst, t.DstPort, false
	}
	if m := f.xlates.owner(t.Proto, t.Dst, t.DstPort); m != nil && int(m.key.mappedIf) == in.idx {
		real, realPort, ok = m.key.real, m.key.realPort, true
	}
	if !ok {
		return t.Dst, t.DstPort, false
	}
	rt := t
	rt.Dst, rt.DstPort = real, realPort
	if !f.peekPinhole(rt) {
		return t.Dst, t.DstPort, false
	}
	return real, realPort, true
}

// peekPinhole reports whether an open pinhole matches new flow t (real
// addresses), leaving it open.
func (f *Firewall) peekPinhole(t Tuple) bool {
	s := &f.inspection
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	now := f.now()
	for _, k := range [2]pinholeKey{
		{proto: t.Proto, src: t.Src, dst: t.Dst, dstPort: t.DstPort},
		{proto: t.Proto, dst: t.Dst, dstPort: t.DstPort},
	} {
		if exp, ok := s.pinholes[k]; ok && now < exp {
			return true
		}
	}
	return false
}
