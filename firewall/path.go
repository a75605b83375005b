package firewall

// The per-packet path. Every received frame runs dispatch, top to bottom;
// routed and transparent (bridged) mode share it and part only where they
// must: at the link layer (a routed unit answers ARP; a bridge learns
// stations and bridges ARP), at NAT (routed only) and at the egress
// decision (routed: the route and ARP; bridged: the bridge table).
//
//	link       Ethernet: control frames, ARP and other EtherTypes end here
//	parse      the IPv4 header, once, trimmed to its total length
//	sanity     martians, land, IP options, reverse path (routed)
//	fragments  held until whole; then the first fragment runs dispatch again
//	to the unit  the standby's and the management address's pings
//	classify   the L4 summary (w.p); ICMP errors follow their connection (related)
//	lookup     the connection table: an established flow goes straight to forward
//	new flow   policy (or an inspection engine's pinhole), embryonic limit,
//	           routed: route and source NAT; creates the connection
//	forward    egress decision, TCP tracking, inspection engine, NAT, transmit
//
// The egress decision (TTL, MTU; for a new flow the route) is taken before
// TCP tracking and the policy's side effects, so that a packet that cannot
// leave changes no state. The established path costs one nil check for
// the inspection hook and allocates nothing.

import "github.com/falab/falab/firewall/header"

// handle runs one received frame through the path and counts it.
func (w *worker) handle(inIdx int, frame []byte) DropReason {
	f := w.f
	if inIdx < 0 || inIdx >= len(f.ifs) {
		f.drops[DropNoPort].Add(1)
		return DropNoPort
	}
	in := f.ifs[inIdx]
	in.stats.rxPackets.Add(1)
	in.stats.rxBytes.Add(uint64(len(frame)))
	r := w.off.bad // an unusable virtio_net_hdr (offload.go)
	if r == dropNone {
		r = w.dispatch(in, frame)
	}
	if r != dropNone {
		f.drops[r].Add(1)
		in.stats.drops.Add(1)
	}
	return r
}

// handleOffload is handle for a frame that came with the virtio_net_hdr
// hdr (offload.go), which it carries out if the frame leaves whole.
func (w *worker) handleOffload(inIdx int, hdr, frame []byte) DropReason {
	w.off = parseOffload(hdr)
	if w.off.set() && len(frame) > 0 {
		w.off.frame0 = &frame[0]
	}
	r := w.handle(inIdx, frame)
	w.off = offload{}
	return r
}

// linkNext says what the link step leaves to the rest of the path.
type linkNext uint8

const (
	linkDone   linkNext = iota // handled or dropped at the link layer
	linkIPv4                   // an IPv4 packet through the unit (routed: or to it)
	linkToUnit                 // bridged: IPv4 to the unit's MAC, for w.l2.unitAddr
)

// dispatch is the path of one frame (see the top of this file).
func (w *worker) dispatch(in *iface, frame []byte) DropReason {
	eth := header.Ethernet(frame)
	if !eth.IsValid() {
		return DropTruncated
	}
	if ch := w.f.control.Load(); ch != nil && eth.EtherType() == ch.ethertype {
		ch.h(in.name, [6]byte(eth.Source()), eth.Payload())
		return dropNone
	}
	var next linkNext
	var r DropReason
	if w.f.transparent {
		next, r = w.bridgedLink(in, frame)
	} else {
		next, r = w.routedLink(in, frame)
	}
	if next == linkDone {
		return r
	}
	return w.network(in, next, frame)
}

// network is the path of an IPv4 frame from the parse step on: what the
// link step passed on, and the inner packet of an ESP tunnel (ipsec.go).
func (w *worker) network(in *iface, next linkNext, frame []byte) DropReason {
	ip, frame, r := ipv4Of(frame)
	if r != dropNone {
		return r
	}
	if w.f.transparent {
		r = w.checkBridged(ip) // no routes, so no reverse-path check
	} else {
		r = w.checkIngress(in, ip)
	}
	if r != dropNone {
		return r
	}
	if w.off.set() {
		if r := w.off.check(ip); r != dropNone {
			return r
		}
	}
	if ip.IsFragment() && !w.frag.releasing {
		return w.fragment(in, ip, frame)
	}
	switch dst := ip.DestinationAddress(); {
	case next == linkToUnit: // only the management address answers
		if dst != w.l2.unitAddr {
			return DropToSelf
		}
		return w.answer(in, ip, frame)
	case !w.f.transparent && !w.f.forwarding(w.now): // (a bridge blocked at link) only the standby address answers
		if !in.hasStandby || dst != in.standby {
			return w.f.notForwarding()
		}
		return w.answerUnit(in, ip, frame)
	}
	if r := w.parse(ip); r != dropNone {
		return r
	}
	if w.p.isICMPError() {
		return w.related(in, frame)
	}
	c, dir, r := w.lookup(in)
	if r != dropNone {
		return r
	}
	if w.off.set() && !w.keepsWhole(c, dir) {
		if r, done := w.plain(in, frame); done {
			return r
		}
	}
	first := c == nil
	if first {
		if r, mine := w.unitAddressed(in, frame); mine {
			return r
		}
		if r, mine := w.steer(in); mine {
			return r
		}
		if c, r = w.newFlow(in); r != dropNone {
			return r
		}
		dir = dirOrig
	}
	return w.forward(in, c, dir, frame, first)
}

// routedLink takes IPv4 sent to the unit's MAC on in, and ARP sent to it
// or broadcast, which the ARP table code answers and learns from.
func (w *worker) routedLink(in *iface, frame []byte) (linkNext, DropReason) {
	eth := header.Ethernet(frame)
	dst := [6]byte(eth.Destination())
	mac := w.f.ourMAC(in)
	switch eth.EtherType() {
	case header.EtherTypeARP:
		if in.arpPort != nil && !w.fromARPPort {
			return linkDone, dropNone // the ARP port has the same frame
		}
		if !header.IsBroadcast(dst[:]) && dst != *mac {
			return linkDone, DropNotForUs
		}
		return linkDone, w.handleARP(in, frame)
	case header.EtherTypeIPv4:
		if dst != *mac {
			return linkDone, DropNotForUs
		}
		return linkIPv4, dropNone
	}
	return linkDone, DropUnsupportedEtherType
}

// bridgedLink is the link step of transparent mode. A unit that does not
// forward blocks every frame but those for its management standby
// address: two units bridging the same segments would make a loop. The
// active learns the source station (bridge.go), answers for its
// management address, looks the destination up in the bridge table
// (w.l2.out) and bridges ARP and the allowed EtherTypes unchanged; IPv4
// goes on through the path.
func (w *worker) bridgedLink(in *iface, frame []byte) (linkNext, DropReason) {
	f := w.f
	eth := header.Ethernet(frame)
	dst := [6]byte(eth.Destination())
	if !f.forwarding(w.now) {
		if f.hasMgmtStandby {
			if next, r, ok := w.management(in, frame, dst, f.mgmtStandby); ok {
				return next, r
			}
		}
		return linkDone, f.notForwarding()
	}
	src := [6]byte(eth.Source())
	if !validStationMAC(src) || f.isUnitMAC(src) {
		// A group source is invalid; a unit's own MAC here is our frame
		// looping back or the peer's, and must not be learnt on a port.
		return linkDone, DropBadSourceMAC
	}
	se, r := f.learnMAC(src, in.idx, w.now)
	if r != dropNone {
		return linkDone, r
	}
	w.l2.out, w.l2.src, w.l2.station = -1, src, se
	if f.hasMgmt {
		if next, r, ok := w.management(in, frame, dst, f.mgmtAddr); ok {
			return next, r
		}
	}
	if f.isUnitMAC(dst) {
		if dst == *f.ourMAC(in) {
			return linkDone, DropToSelf
		}
		return linkDone, DropNotForUs
	}
	if validStationMAC(dst) {
		if i, ok := f.lookupMAC(dst); ok {
			if i == in.idx {
				// The station is on the segment the frame came from: the
				// switch there has delivered it already.
				return linkDone, DropIntraInterface
			}
			w.l2.out = i
		}
	}
	switch et := eth.EtherType(); et {
	case header.EtherTypeIPv4:
		return linkIPv4, dropNone
	case header.EtherTypeARP:
		if r := checkARP(header.ARP(eth.Payload())); r != dropNone {
			return linkDone, r
		}
	default:
		if !f.allowsEtherType(et) {
			return linkDone, DropUnsupportedEtherType
		}
	}
	w.bridgeOut(in, w.l2.out, frame)
	return linkDone, dropNone
}

// management recognises, in transparent mode, a frame for the unit's
// management address addr (the active's or the standby's): an ARP request
// for it is answered in place; IPv4 to the unit's MAC goes on as
// linkToUnit. ok is false for frames that are not for addr.
func (w *worker) management(in *iface, frame []byte, dst [6]byte, addr [4]byte) (next linkNext, r DropReason, ok bool) {
	mac := w.f.ourMAC(in)
	eth := header.Ethernet(frame)
	switch eth.EtherType() {
	case header.EtherTypeARP:
		a := header.ARP(eth.Payload())
		if !a.IsValid() || a.TargetProtocolAddress() != addr || !header.IsBroadcast(dst[:]) && dst != *mac {
			return linkDone, dropNone, false
		}
		return linkDone, w.answerARP(in, frame, addr), true
	case header.EtherTypeIPv4:
		if dst != *mac {
			return linkDone, dropNone, false
		}
		w.l2.unitAddr = addr
		return linkToUnit, dropNone, true
	}
	return linkDone, dropNone, false
}

// answerARP answers, in place, an ARP request for the management address
// addr; a reply is consumed (we ask nobody).
func (w *worker) answerARP(in *iface, frame []byte, addr [4]byte) DropReason {
	eth := header.Ethernet(frame)
	a := header.ARP(eth.Payload())
	if a.Op() != header.ARPRequest {
		return dropNone
	}
	sha := [6]byte(a.SenderHardwareAddress())
	spa := a.SenderProtocolAddress()
	if !validStationMAC(sha) {
		return DropBadARP
	}
	mac := w.f.ourMAC(in)
	eth.SetDestination(sha[:])
	eth.SetSource(mac[:])
	a.SetOp(header.ARPReply)
	a.SetTarget(sha[:], spa)
	a.SetSender(mac[:], addr)
	w.queue(in.idx, frame, nil)
	return dropNone
}

// checkARP says why an ARP packet is unusable, if it is.
func checkARP(a header.ARP) DropReason {
	switch {
	case a.IsValid():
		return dropNone
	case len(a) < header.ARPLen:
		return DropTruncated
	}
	return DropBadARP
}

// ipv4Of validates the IPv4 header of an Ethernet frame and returns it
// trimmed to its total length, with the frame trimmed alike (Ethernet
// padding dropped).
func ipv4Of(frame []byte) (header.IPv4, []byte, DropReason) {
	ip := header.IPv4(frame[header.EthernetLen:])
	switch ip.Check() {
	case nil:
	case header.ErrIPv4Truncated:
		return nil, frame, DropTruncated
	default:
		return nil, frame, DropBadIPHeader
	}
	if !ip.ChecksumValid() {
		return nil, frame, DropBadIPChecksum
	}
	ip = ip[:ip.TotalLength()]
	frame = frame[:header.EthernetLen+len(ip)]
	return ip, frame, dropNone
}

// parse fills w.p from ip, or says why the packet is unusable.
func (w *worker) parse(ip header.IPv4) DropReason {
	p := &w.p
	p.ip = ip
	p.l4 = ip.Payload()
	p.tuple = Tuple{Proto: ip.Protocol(), Src: ip.SourceAddress(), Dst: ip.DestinationAddress()}
	p.tcpFlags, p.icmpType = 0, 0
	switch p.tuple.Proto {
	case header.ProtocolTCP:
		t := header.TCP(p.l4)
		if t.Check() != nil {
			return DropBadL4Header
		}
		p.tuple.SrcPort, p.tuple.DstPort = t.SourcePort(), t.DestinationPort()
		if p.tuple.SrcPort == 0 || p.tuple.DstPort == 0 {
			return DropPortZero
		}
		p.tcpFlags = t.Flags()
		fl := p.tcpFlags
		const syn, fin, rst, ack = header.TCPFlagSYN, header.TCPFlagFIN, header.TCPFlagRST, header.TCPFlagACK
		if fl&syn != 0 && fl&(fin|rst) != 0 || fl&(syn|ack|rst) == 0 {
			return DropInvalidTCPFlags
		}
	case header.ProtocolUDP:
		u := header.UDP(p.l4)
		whole := w.reassembledUDP(u) // the first fragment of a reassembled datagram
		if u.Check() != nil && !whole {
			return DropBadL4Header
		}
		if int(u.Length()) != len(p.l4) && !whole {
			// Shorter than the IP payload: the bytes past it would be
			// forwarded unchecked, and hosts disagree on what to do with
			// them (ASA invalid-udp-length).
			return DropUDPLength
		}
		p.tuple.SrcPort, p.tuple.DstPort = u.SourcePort(), u.DestinationPort()
		if p.tuple.SrcPort == 0 || p.tuple.DstPort == 0 {
			return DropPortZero
		}
	case header.ProtocolICMP:
		ic := header.ICMPv4(p.l4)
		if ic.Check() != nil {
			return DropBadL4Header
		}
		p.icmpType = ic.Type()
		switch {
		case ic.IsEcho():
			p.tuple.SrcPort = ic.Ident()
		case ic.IsError():
			// Handled by related(); the tuple stays the outer one.
		default:
			return DropUnsupportedProtocol
		}
	default:
		return DropUnsupportedProtocol
	}
	return dropNone
}

// lookup finds the connection of w.p and the packet's direction in it.
// An expired connection is deleted, and a new SYN on a closing one starts
// over (c nil). A packet that arrived on interface in while c expects
// that direction on another is dropped (DropConnWrongInterface) before it
// can touch c: a host on one side must not inject into, or reset, a
// connection by forging the addresses of the other side. Bridged, only
// the initiator's side is held to its interface: the reply side of a
// flooded flow is a guess.
func (w *worker) lookup(in *iface) (c *conn, dir int, r DropReason) {
	f := w.f
	p := &w.p
	c, dir = f.conns.lookup(p.tuple)
	switch {
	case c == nil:
		return nil, dir, dropNone
	case f.expired(c, w.now):
		f.deleteConn(c)
		return nil, dir, dropNone
	case (dir == dirOrig || !f.transparent) && w.ingressOf(c, dir) != in.idx:
		return nil, dir, DropConnWrongInterface
	}
	if p.tuple.Proto == header.ProtocolTCP && dir == dirOrig &&
		p.tcpFlags&(header.TCPFlagSYN|header.TCPFlagACK) == header.TCPFlagSYN {
		if st, _ := c.tcpState(); st >= TCPStateFinWait {
			f.deleteConn(c)
			return nil, dir, dropNone
		}
	}
	return c, dir, dropNone
}

// answer parses a packet addressed to the unit and answers it (local).
func (w *worker) answer(in *iface, ip header.IPv4, frame []byte) DropReason {
	if r := w.parse(ip); r != dropNone {
		return r
	}
	if w.off.set() {
		if r, done := w.plain(in, frame); done {
			return r
		}
	}
	return w.local(in, frame)
}

// unitAddressed handles, in routed mode, a packet of no connection that
// is addressed to the unit: the ingress interface's own address answers
// (local), the other interfaces' addresses are not reachable across the
// unit, and a PAT mapped address without a connection only draws stray
// return traffic. mine is false for every other packet.
func (w *worker) unitAddressed(in *iface, frame []byte) (r DropReason, mine bool) {
	f := w.f
	if f.transparent {
		return dropNone, false
	}
	if _, _, ok := f.pinholeBehindPAT(in, w.p.tuple); ok {
		return dropNone, false // media a pinhole expects behind a PAT port (inspect_nat.go)
	}
	switch dst := w.p.tuple.Dst; {
	case dst == in.addr:
		if in.crypto && w.p.tuple.Proto == header.ProtocolUDP && w.p.tuple.DstPort == PortIKENATT {
			if r, done := w.decapESP(in, frame); done {
				return r, true
			}
		}
		return w.toUnit(in, frame), true
	case f.isOwnAddr(dst):
		return DropToSelf, true
	case f.isPATAddr(in, dst):
		return DropNoConnection, true // return traffic for a PAT slot that is gone
	}
	return dropNone, false
}

func (f *Firewall) isOwnAddr(a [4]byte) bool {
	for _, it := range f.ifs {
		if it.addr == a || it.hasStandby && it.standby == a {
			return true
		}
	}
	return false
}

// isPATAddr reports whether a is a PAT mapped address on interface in.
func (f *Firewall) isPATAddr(in *iface, a [4]byte) bool {
	for i := range f.pats {
		if f.pats[i].mappedIf == in.idx && f.pats[i].mapped == a {
			return true
		}
	}
	return false
}

// newFlow admits the first packet of a flow and creates its connection.
// Only a TCP SYN or an echo request opens one. Routed, the route to the
// real destination comes first (the policy needs the egress interface);
// then the policy, the embryonic limit and the source NAT, in that order,
// so that a refused flow takes no PAT port. A bridge leaves the packet
// unchanged: the reply tuple is the original reversed.
func (w *worker) newFlow(in *iface) (*conn, DropReason) {
	f := w.f
	p := &w.p
	t := p.tuple
	if !opensFlow(p) {
		return nil, DropNoConnection
	}
	pt, out := t, w.l2.out // the policy reads real addresses (ASA 8.3+)
	if !f.transparent {
		var r DropReason
		if pt.Dst, pt.DstPort, out, r = w.route(in); r != dropNone {
			return nil, r
		}
	}
	first, r := w.policy(in, out, pt)
	if r != dropNone {
		return nil, r
	}
	if !f.transparent && p.ip.TTL() <= 1 {
		w.icmpError(in, header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded)
		return nil, DropTTLExpired
	}
	if t.Proto == header.ProtocolTCP && !f.admitEmbryonic(t.Src) {
		return nil, DropEmbryonicLimit // before the flow can take a PAT port
	}
	rec := ConnRecord{Orig: t, Reply: replyOf(t, t.Dst, t.Src, t.SrcPort),
		InInterface: in.name, OutInterface: f.ifs[first].name, Created: w.now, LastSeen: w.now}
	held := false
	if !f.transparent {
		xSrc, xPort, isPAT, r := w.sourceNAT(in, first)
		if r != dropNone {
			return nil, r
		}
		rec.Reply, held = replyOf(pt, pt.Dst, xSrc, xPort), isPAT
	}
	if t.Proto == header.ProtocolTCP {
		rec.State = TCPStateSynSent
		rec.HTTP = t.DstPort == 80 || t.SrcPort == 80
		if f.randomSeq && !f.transparent { // a bridge forwards frames unchanged
			rec.SeqOffset = randomSeqOffset()
		}
	}
	c, _, r := f.insertConn(rec, held)
	return c, r
}

// opensFlow reports whether the packet may open a connection: a TCP
// segment only if it is a SYN, an ICMP message only if it is an echo
// request.
func opensFlow(p *parsed) bool {
	switch p.tuple.Proto {
	case header.ProtocolTCP:
		return p.tcpFlags&(header.TCPFlagSYN|header.TCPFlagACK) == header.TCPFlagSYN
	case header.ProtocolICMP:
		return p.icmpType == header.ICMPv4Echo
	}
	return true
}

// replyOf returns the reply tuple of flow t whose responder is dst and
// which the responder sees coming from (src, port): port is the echo
// identifier of ICMP.
func replyOf(t Tuple, dst, src [4]byte, port uint16) Tuple {
	reply := Tuple{Proto: t.Proto, Src: dst, Dst: src}
	if t.Proto == header.ProtocolICMP {
		reply.SrcPort = port
	} else {
		reply.SrcPort, reply.DstPort = t.DstPort, port
	}
	return reply
}

// route is the egress decision of a routed new flow: the real destination
// (a static NAT's mapped address untranslated, or a PAT mapped port an
// inspection pinhole expects: inspect_nat.go) and the interface its route
// leaves by, which must not be the one the packet came in on.
func (w *worker) route(in *iface) (realDst [4]byte, realPort uint16, out int, r DropReason) {
	f := w.f
	t := w.p.tuple
	realDst, realPort = t.Dst, t.DstPort
	static := false
	for i := range f.statics {
		if s := &f.statics[i]; s.mappedIf == in.idx && s.mapped == t.Dst {
			realDst, static = s.real, true
			break
		}
	}
	if !static {
		realDst, realPort, _ = f.pinholeBehindPAT(in, t)
	}
	out, _, ok := f.lookupRoute(realDst)
	if !ok {
		w.icmpError(in, header.ICMPv4DstUnreachable, header.ICMPv4NetUnreachable)
		return realDst, realPort, -1, DropNoRoute
	}
	if out == in.idx {
		return realDst, realPort, -1, DropIntraInterface
	}
	return realDst, realPort, out, dropNone
}

// policy decides whether a new flow t from in may leave by out: the
// ingress access list if there is one, else the security levels. A flow
// the policy refuses is still admitted, once, by a pinhole an inspection
// engine opened for it (inspect.go). Bridged to an unknown MAC (out -1),
// every other attached interface is decided apart and marked in
// w.permitted, where the flood goes. first is the first interface admitted.
func (w *worker) policy(in *iface, out int, t Tuple) (first int, r DropReason) {
	f := w.f
	first, deny := -1, DropNoPort
	tried, pinhole := false, false
	for _, it := range f.ifs {
		w.permitted.set(it.idx, false)
		if out >= 0 && it.idx != out || out < 0 && (it == in || it.port == nil) {
			continue
		}
		if r := f.permits(in, it, t); r != dropNone {
			if !tried {
				tried, pinhole = true, f.takePinhole(t, w.now)
			}
			if !pinhole {
				deny = r
				continue
			}
		}
		w.permitted.set(it.idx, true)
		if first < 0 {
			first = it.idx
		}
	}
	if first < 0 {
		return -1, deny
	}
	return first, dropNone
}

// permits applies the configured policy to a new flow from in to out: the
// ingress access list if there is one, else the security levels.
func (f *Firewall) permits(in, out *iface, t Tuple) DropReason {
	if in.hasACL {
		if !aclPermits(in.acl, t.Proto, t.Src, t.Dst, t.DstPort) {
			return DropACLDeny
		}
		return dropNone
	}
	if in.sec <= out.sec {
		return DropSecurityLevel
	}
	return dropNone
}

// sourceNAT returns the address and port the new flow's initiator is
// mapped to towards interface out: a static NAT's, a PAT port allocated
// for it (isPAT: the caller holds its reference), or its own.
func (w *worker) sourceNAT(in *iface, out int) (src [4]byte, port uint16, isPAT bool, r DropReason) {
	f := w.f
	t := w.p.tuple
	if f.cryptoRules != nil && f.cryptoMatch(out, t.Src, t.Dst) {
		return t.Src, t.SrcPort, false, dropNone // exempt: it goes through the tunnel
	}
	for i := range f.statics {
		if s := &f.statics[i]; s.realIf == in.idx && s.mappedIf == out && s.real == t.Src {
			return s.mapped, t.SrcPort, false, dropNone
		}
	}
	a := u32(t.Src)
	for i := range f.pats {
		rule := &f.pats[i]
		if rule.realIf != in.idx || rule.mappedIf != out || a&rule.mask != rule.netAddr {
			continue
		}
		ref, why := f.allocatePAT(rule, t.Proto, t.Src, t.SrcPort)
		if why != dropNone {
			return t.Src, t.SrcPort, false, why
		}
		return ref.mapped, ref.mappedPort, true, dropNone
	}
	return t.Src, t.SrcPort, false, dropNone
}

// forward sends a packet of connection c (dir: its direction in c; first:
// the packet created c): the egress decision, TCP tracking, the
// connection's inspection engine, NAT (routed), transmit.
func (w *worker) forward(in *iface, c *conn, dir int, frame []byte, first bool) DropReason {
	f := w.f
	out, big, r := w.egress(in, c, dir, first)
	if r != dropNone {
		return r
	}
	closeAfter := false
	if w.p.tuple.Proto == header.ProtocolTCP {
		if closeAfter, r = w.trackTCP(c, dir); r != dropNone {
			return r
		}
	}
	if c.engine != nil {
		if frame, r = w.inspect(c, dir, frame); r != dropNone {
			return r
		}
		if !f.transparent && len(w.p.ip) > f.ifs[out].mtu { // a replaced payload may have grown
			if big = true; w.p.ip.DontFragment() {
				return w.fragNeeded(c, dir)
			}
		}
	}
	if c.diverted() {
		if r := w.divert(c, dir); r != dropNone {
			return r
		}
	}
	if !f.transparent {
		w.translate(c, dir)
	}
	c.lastSeen.Store(w.now)
	c.packets.Add(max(1, w.off.segs)) // a super-frame counts as its segments
	c.bytes.Add(uint64(len(w.p.ip)))
	switch { // send, spelled out: one call less on the established path
	case f.transparent && out < 0:
		w.flood(frame)
	case f.transparent:
		w.queue(out, frame, nil)
	case f.ifs[out].crypto && w.tunnelled(out, frame, &r):
	case big:
		r = w.fragmentOut(f.ifs[out], c.nextHop(dir), frame, nil)
	default:
		r = w.transmit(f.ifs[out], c.nextHop(dir), frame, nil)
	}
	if closeAfter {
		f.deleteConn(c)
	}
	return r
}

// egress decides by which interface a packet of c travelling in
// direction dir leaves: routed, by c's side, if its TTL lasts and it fits
// the MTU (big: it does not, and is fragmented on the way out); bridged,
// by the bridge table's interface for the destination MAC, else by the
// side of c the peer is on. A bridged new flow to an unknown MAC (out -1)
// is flooded where the policy let it (w.permitted).
func (w *worker) egress(in *iface, c *conn, dir int, first bool) (out int, big bool, r DropReason) {
	f := w.f
	if f.transparent {
		out = w.l2.out
		if first {
			return out, false, dropNone
		}
		if se := w.l2.station; se != nil && w.now-se.connSeen.Load() >= int64(bridgeConnRefresh) {
			f.noteConnStation(w.l2.src, se, w.now) // at most every bridgeConnRefresh
		}
		if out < 0 {
			if out = w.peerSide(c, dir); out == in.idx {
				return -1, false, DropIntraInterface
			}
		}
		return out, false, dropNone
	}
	ip := w.p.ip
	if ip.TTL() <= 1 {
		w.icmpError(f.ifs[w.ingressOf(c, dir)], header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded)
		return -1, false, DropTTLExpired
	}
	out = w.peerSide(c, dir)
	big = w.wireLen() > f.ifs[out].mtu
	if big && ip.DontFragment() {
		return -1, false, w.fragNeeded(c, dir)
	}
	return out, big, dropNone
}

// peerSide returns the interface a packet of c travelling in direction dir
// leaves by: the responder's side for the initiator's packets.
func (w *worker) peerSide(c *conn, dir int) int {
	if dir == dirOrig {
		return int(c.outIf)
	}
	return int(c.inIf)
}

// ingressOf returns the interface a packet of c in direction dir arrived on.
func (w *worker) ingressOf(c *conn, dir int) int {
	if dir == dirOrig {
		return int(c.inIf)
	}
	return int(c.outIf)
}

// translate rewrites a routed packet of c from direction dir in place:
// the TCP sequence offset, the addresses and ports the other side knows
// (NAT), and the TTL, with incremental checksum updates (RFC 1624).
func (w *worker) translate(c *conn, dir int) {
	p := &w.p
	t := p.tuple
	if t.Proto == header.ProtocolTCP {
		c.applySeqOffset(header.TCP(p.l4), dir, t.Src, t.Dst, w.off.partial)
	}
	other := &c.reply // the tuple the packet leaves with, reversed
	if dir == dirReply {
		other = &c.orig
	}
	src, dst, sport, dport := other.Dst, other.Src, other.DstPort, other.SrcPort
	if t.Proto == header.ProtocolICMP {
		sport = other.SrcPort // the echo identifier
	}
	ip := p.ip
	ip.DecrementTTLWithChecksumUpdate()
	if src != t.Src {
		ip.SetSourceAddressWithChecksumUpdate(src)
	}
	if dst != t.Dst {
		ip.SetDestinationAddressWithChecksumUpdate(dst)
	}
	if w.off.partial {
		translatePartial(header.TCP(p.l4), t, src, dst, sport, dport)
		return
	}
	switch t.Proto {
	case header.ProtocolTCP:
		l4 := header.TCP(p.l4)
		if src != t.Src {
			l4.UpdateChecksumForAddress(t.Src, src)
		}
		if dst != t.Dst {
			l4.UpdateChecksumForAddress(t.Dst, dst)
		}
		if sport != t.SrcPort {
			l4.SetSourcePortWithChecksumUpdate(sport)
		}
		if dport != t.DstPort {
			l4.SetDestinationPortWithChecksumUpdate(dport)
		}
	case header.ProtocolUDP:
		l4 := header.UDP(p.l4)
		if src != t.Src {
			l4.UpdateChecksumForAddress(t.Src, src)
		}
		if dst != t.Dst {
			l4.UpdateChecksumForAddress(t.Dst, dst)
		}
		if sport != t.SrcPort {
			l4.SetSourcePortWithChecksumUpdate(sport)
		}
		if dport != t.DstPort {
			l4.SetDestinationPortWithChecksumUpdate(dport)
		}
	case header.ProtocolICMP:
		if sport != t.SrcPort {
			header.ICMPv4(p.l4).SetIdentWithChecksumUpdate(sport)
		}
	}
}

// send queues a forwarded frame of c (direction dir) on interface out
// (forward spells it out):
// routed, to the next hop's MAC (resolved by ARP, or queued until it
// answers), fragmented if big; bridged, unchanged (out -1: flooded to
// w.permitted).
func (w *worker) send(c *conn, dir, out int, big bool, frame []byte) DropReason {
	f := w.f
	if f.transparent {
		if out < 0 {
			w.flood(frame)
		} else {
			w.queue(out, frame, nil)
		}
		return dropNone
	}
	if f.ifs[out].crypto {
		if r, done := w.encapESP(out, frame); done {
			return r
		}
	}
	if big {
		return w.fragmentOut(f.ifs[out], c.nextHop(dir), frame, nil)
	}
	return w.transmit(f.ifs[out], c.nextHop(dir), frame, nil)
}

// nextHop returns the neighbour a packet of c travelling in direction dir
// is sent to.
func (c *conn) nextHop(dir int) [4]byte {
	if dir == dirOrig {
		return c.origNextHop
	}
	return c.replyNextHop
}

// transmit sends an IPv4 frame to nextHop on out, or queues it until the
// next hop answers ARP. buf, if not nil, is the pool buffer holding frame.
func (w *worker) transmit(out *iface, nextHop [4]byte, frame []byte, buf *packetBuf) DropReason {
	f := w.f
	if out.port == nil {
		if buf != nil {
			f.putBuf(buf)
		}
		return DropNoPort
	}
	mac, ok := f.resolve(out.idx, nextHop)
	if !ok {
		return w.enqueueUnresolved(out, nextHop, frame, buf)
	}
	e := header.Ethernet(frame)
	e.SetDestination(mac[:])
	e.SetSource(f.ourMAC(out)[:])
	w.queue(out.idx, frame, buf)
	return dropNone
}

// local answers a packet addressed to the unit (w.p): an echo request
// gets its reply built in place, sent by the route back to its source
// (bridged, which has no routes: straight back to the station that sent
// it); everything else is dropped.
func (w *worker) local(in *iface, frame []byte) DropReason {
	f := w.f
	p := &w.p
	switch {
	case p.tuple.Proto == header.ProtocolTCP && p.tcpFlags&(header.TCPFlagSYN|header.TCPFlagACK) != header.TCPFlagSYN,
		p.tuple.Proto == header.ProtocolICMP && p.icmpType == header.ICMPv4EchoReply:
		// Stray return traffic, e.g. for a PAT connection that is gone.
		return DropNoConnection
	case p.tuple.Proto != header.ProtocolICMP || p.icmpType != header.ICMPv4Echo:
		return DropToSelf
	}
	ip := p.ip
	ip.SetSourceAddress(p.tuple.Dst)
	ip.SetDestinationAddress(p.tuple.Src)
	ip.SetTTL(64)
	ip.SetChecksum(ip.CalculateChecksum())
	header.ICMPv4(p.l4).SetTypeWithChecksumUpdate(header.ICMPv4EchoReply)
	if f.transparent {
		eth := header.Ethernet(frame)
		eth.SetDestination(eth.Source())
		eth.SetSource(f.ourMAC(in)[:])
		w.queue(in.idx, frame, nil)
		return dropNone
	}
	outIdx, nh, ok := f.lookupRoute(p.tuple.Src)
	if !ok {
		return DropNoRoute
	}
	return w.transmit(f.ifs[outIdx], nh, frame, nil)
}

// related forwards an ICMP error about a packet of a known connection
// (port unreachable, time exceeded from a router beyond, fragmentation
// needed) the way that connection's packets go; routed, with the outer
// destination and the quoted packet translated as the connection's NAT
// requires (RFC 5508). Errors about no known connection are dropped.
func (w *worker) related(in *iface, frame []byte) DropReason {
	key, r := quotedKey(header.ICMPv4(w.p.l4))
	if r != dropNone {
		return r
	}
	c, dir := w.f.conns.lookup(key)
	if c == nil {
		return DropNoConnection
	}
	out, big, r := w.egress(in, c, dir, false)
	if r != dropNone {
		return r
	}
	if !w.f.transparent {
		w.translateRelated(c, dir, key)
	}
	return w.send(c, dir, out, big, frame)
}
