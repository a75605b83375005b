package firewall

import "github.com/falab/falab/firewall/header"

// worker carries the per-goroutine state of the packet path: the frames
// produced so far per egress interface, written in one batch by flush.
// A worker is used by one goroutine at a time.
type worker struct {
	f    *Firewall
	out  [][][]byte   // per interface index: frames awaiting WriteBatch
	held []*packetBuf // pool buffers referenced by out, returned after flush
	now  int64        // unix nanoseconds, read once per batch
	p    parsed
	// fromARPPort: this worker reads an interface's ARP port (AttachARP).
	fromARPPort bool

	frag fragWork // reassembly state of the datagram being released (fragment.go)
}

// parsed is the one summary of a packet that the rules read, filled in
// place per packet (tailscale's packet.Parsed).
type parsed struct {
	ip       header.IPv4 // trimmed to the total length
	l4       []byte
	tuple    Tuple
	tcpFlags uint8
	icmpType uint8
}

// queue schedules frame for writing on interface ifIdx; buf, if not nil,
// is the pool buffer holding it.
func (w *worker) queue(ifIdx int, frame []byte, buf *packetBuf) {
	w.out[ifIdx] = append(w.out[ifIdx], frame)
	if buf != nil {
		w.held = append(w.held, buf)
	}
}

// flush writes every queued frame, one WriteBatch per interface.
func (w *worker) flush() {
	f := w.f
	for i, frames := range w.out {
		if len(frames) == 0 {
			continue
		}
		it := f.ifs[i]
		n := 0
		if it.port != nil {
			n, _ = it.port.WriteBatch(frames)
			n = max(0, min(n, len(frames)))
			var bytes uint64
			for _, fr := range frames[:n] {
				bytes += uint64(len(fr))
			}
			it.stats.txPackets.Add(uint64(n))
			it.stats.txBytes.Add(bytes)
			if n < len(frames) {
				f.drops[DropTxError].Add(uint64(len(frames) - n))
			}
		} else {
			f.drops[DropNoPort].Add(uint64(len(frames)))
		}
		clear(frames)
		w.out[i] = frames[:0]
	}
	for i, b := range w.held {
		f.putBuf(b)
		w.held[i] = nil
	}
	w.held = w.held[:0]
}

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
	r := w.dispatch(in, frame)
	if r != dropNone {
		f.drops[r].Add(1)
		in.stats.drops.Add(1)
	}
	return r
}

func (w *worker) dispatch(in *iface, frame []byte) DropReason {
	f := w.f
	eth := header.Ethernet(frame)
	if !eth.IsValid() {
		return DropTruncated
	}
	et := eth.EtherType()
	if ch := f.control.Load(); ch != nil && et == ch.ethertype {
		ch.h(in.name, eth.Payload())
		return dropNone
	}
	if f.transparent {
		return w.bridgeFrame(in, frame)
	}
	dst := eth.Destination()
	mac := f.ourMAC(in)
	switch et {
	case header.EtherTypeARP:
		if in.arpPort != nil && !w.fromARPPort {
			return dropNone // the ARP port has the same frame
		}
		if !header.IsBroadcast(dst) && [6]byte(dst) != *mac {
			return DropNotForUs
		}
		return w.handleARP(in, frame)
	case header.EtherTypeIPv4:
		if [6]byte(dst) != *mac {
			return DropNotForUs
		}
		return w.handleIPv4(in, frame)
	}
	return DropUnsupportedEtherType
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

// liveConn returns c (found for w.p's tuple in direction dir) if the
// packet may use it, or nil: an expired connection is deleted, and a new
// SYN on a closing one starts over. A packet that arrived on interface in
// while c expects that direction on another is dropped
// (DropConnWrongInterface) before it can touch c: a host on one side must
// not inject into, or reset, a connection by forging the addresses of the
// other side. checkReply false skips the check for the reply direction
// (transparent mode, where a flooded flow's responder side is a guess).
func (w *worker) liveConn(in *iface, c *conn, dir int, checkReply bool) (*conn, DropReason) {
	f := w.f
	p := &w.p
	if c == nil {
		return nil, dropNone
	}
	if f.expired(c, w.now) {
		f.deleteConn(c)
		return nil, dropNone
	}
	if (dir == dirOrig || checkReply) && w.ingressOf(c, dir) != in.idx {
		return nil, DropConnWrongInterface
	}
	if p.tuple.Proto == header.ProtocolTCP && dir == dirOrig &&
		p.tcpFlags&(header.TCPFlagSYN|header.TCPFlagACK) == header.TCPFlagSYN {
		if st, _ := c.tcpState(); st >= TCPStateFinWait {
			f.deleteConn(c)
			return nil, dropNone
		}
	}
	return c, dropNone
}

func (w *worker) handleIPv4(in *iface, frame []byte) DropReason {
	f := w.f
	ip, frame, r := ipv4Of(frame)
	if r != dropNone {
		return r
	}
	if r := w.checkIngress(in, ip); r != dropNone {
		return r
	}
	if ip.IsFragment() && !w.frag.releasing {
		return w.fragment(in, ip, frame)
	}
	dst := ip.DestinationAddress()
	if !f.forwarding(w.now) {
		if in.hasStandby && dst == in.standby {
			if r := w.parse(ip); r != dropNone {
				return r
			}
			return w.local(in, frame)
		}
		return f.notForwarding()
	}
	if r := w.parse(ip); r != dropNone {
		return r
	}
	p := &w.p
	if p.tuple.Proto == header.ProtocolICMP && p.icmpType != header.ICMPv4Echo && p.icmpType != header.ICMPv4EchoReply {
		return w.related(frame)
	}
	c, dir := f.conns.lookup(p.tuple)
	c, r = w.liveConn(in, c, dir, true)
	if r != dropNone {
		return r
	}
	if c == nil {
		if dst == in.addr {
			return w.local(in, frame)
		}
		if f.isOwnAddr(dst) {
			return DropToSelf
		}
		if f.isPATAddr(in, dst) {
			return DropNoConnection // return traffic for a PAT slot that is gone
		}
		var r DropReason
		if c, r = w.newFlow(in, frame); r != dropNone {
			return r
		}
		dir = dirOrig
	}
	return w.forward(c, dir, frame)
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

// newFlow applies routing, policy and NAT to the first packet of a flow
// and creates its connection.
func (w *worker) newFlow(in *iface, frame []byte) (*conn, DropReason) {
	f := w.f
	p := &w.p
	t := p.tuple
	switch t.Proto {
	case header.ProtocolTCP:
		if p.tcpFlags&(header.TCPFlagSYN|header.TCPFlagACK) != header.TCPFlagSYN {
			return nil, DropNoConnection
		}
	case header.ProtocolICMP:
		if p.icmpType != header.ICMPv4Echo {
			return nil, DropNoConnection
		}
	}
	realDst := t.Dst
	for i := range f.statics {
		if s := &f.statics[i]; s.mappedIf == in.idx && s.mapped == t.Dst {
			realDst = s.real
			break
		}
	}
	outIdx, _, ok := f.lookupRoute(realDst)
	if !ok {
		w.icmpError(in, header.ICMPv4DstUnreachable, header.ICMPv4NetUnreachable)
		return nil, DropNoRoute
	}
	if outIdx == in.idx {
		return nil, DropIntraInterface
	}
	out := f.ifs[outIdx]
	pt := t
	pt.Dst = realDst // the policy reads real addresses (ASA 8.3+)
	if r := f.permits(in, out, pt); r != dropNone {
		return nil, r
	}
	if p.ip.TTL() <= 1 {
		w.icmpError(in, header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded)
		return nil, DropTTLExpired
	}

	if t.Proto == header.ProtocolTCP && !f.admitEmbryonic(t.Src) {
		return nil, DropEmbryonicLimit // before the flow can take a PAT port
	}
	xSrc, xPort := t.Src, t.SrcPort
	held := false
	static := false
	for i := range f.statics {
		if s := &f.statics[i]; s.realIf == in.idx && s.mappedIf == outIdx && s.real == t.Src {
			xSrc, static = s.mapped, true
			break
		}
	}
	if !static {
		src := u32(t.Src)
		for i := range f.pats {
			r := &f.pats[i]
			if r.realIf != in.idx || r.mappedIf != outIdx || src&r.mask != r.netAddr {
				continue
			}
			ref, why := f.allocatePAT(r, t.Proto, t.Src, t.SrcPort)
			if why != dropNone {
				return nil, why
			}
			xSrc, xPort, held = ref.mapped, ref.mappedPort, true
			break
		}
	}
	reply := Tuple{Proto: t.Proto, Src: realDst, Dst: xSrc}
	if t.Proto == header.ProtocolICMP {
		reply.SrcPort = xPort
	} else {
		reply.SrcPort, reply.DstPort = t.DstPort, xPort
	}
	rec := ConnRecord{
		Orig: t, Reply: reply, InInterface: in.name, OutInterface: out.name,
		Created: w.now, LastSeen: w.now,
	}
	if t.Proto == header.ProtocolTCP {
		rec.State = TCPStateSynSent
		rec.HTTP = t.DstPort == 80 || t.SrcPort == 80
		if f.randomSeq {
			rec.SeqOffset = randomSeqOffset()
		}
	}
	c, _, r := f.insertConn(rec, held)
	if r != dropNone {
		return nil, r
	}
	return c, dropNone
}

// forward translates and sends a packet of connection c.
func (w *worker) forward(c *conn, dir int, frame []byte) DropReason {
	f := w.f
	p := &w.p
	ip := p.ip
	if ip.TTL() <= 1 {
		w.icmpError(f.ifs[w.ingressOf(c, dir)], header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded)
		return DropTTLExpired
	}
	big := len(ip) > f.ifs[w.peerSide(c, dir)].mtu
	if big && ip.DontFragment() {
		return w.fragNeeded(c, dir)
	}
	closeAfter := false
	if p.tuple.Proto == header.ProtocolTCP {
		var r DropReason
		if closeAfter, r = w.trackTCP(c, dir); r != dropNone {
			return r
		}
		c.applySeqOffset(header.TCP(p.l4), dir, p.tuple.Src, p.tuple.Dst)
	}
	var outIdx int
	var nh, src, dst [4]byte
	var sport, dport uint16
	if dir == dirOrig {
		outIdx, nh = int(c.outIf), c.origNextHop
		src, dst, sport, dport = c.reply.Dst, c.reply.Src, c.reply.DstPort, c.reply.SrcPort
		if p.tuple.Proto == header.ProtocolICMP {
			sport = c.reply.SrcPort
		}
	} else {
		outIdx, nh = int(c.inIf), c.replyNextHop
		src, dst, sport, dport = c.orig.Dst, c.orig.Src, c.orig.DstPort, c.orig.SrcPort
		if p.tuple.Proto == header.ProtocolICMP {
			sport = c.orig.SrcPort
		}
	}
	ip.DecrementTTLWithChecksumUpdate()
	t := p.tuple
	if src != t.Src {
		ip.SetSourceAddressWithChecksumUpdate(src)
	}
	if dst != t.Dst {
		ip.SetDestinationAddressWithChecksumUpdate(dst)
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
	c.lastSeen.Store(w.now)
	c.packets.Add(1)
	c.bytes.Add(uint64(len(ip)))
	var r DropReason
	if big {
		r = w.fragmentOut(f.ifs[outIdx], nh, frame, nil)
	} else {
		r = w.transmit(f.ifs[outIdx], nh, frame, nil)
	}
	if closeAfter {
		f.deleteConn(c)
	}
	return r
}

// ingressOf returns the interface a packet of c in direction dir arrived on.
func (w *worker) ingressOf(c *conn, dir int) int {
	if dir == dirOrig {
		return int(c.inIf)
	}
	return int(c.outIf)
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

// local answers a packet addressed to the unit: echo requests get a reply
// built in place; everything else is dropped.
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
	outIdx, nh, ok := f.lookupRoute(p.tuple.Src)
	if !ok {
		return DropNoRoute
	}
	return w.transmit(f.ifs[outIdx], nh, frame, nil)
}

// icmpError sends an ICMP error about the current packet (w.p.ip, still
// untranslated) from interface in's address, within the rate limit. Errors
// are never sent about ICMP errors, fragments or non-unicast sources.
func (w *worker) icmpError(in *iface, typ, code uint8) { w.icmpErrorRest(in, typ, code, 0) }

// icmpErrorRest is icmpError with rest as the ICMP header's second word
// (the next-hop MTU of "fragmentation needed").
func (w *worker) icmpErrorRest(in *iface, typ, code uint8, rest uint32) {
	f := w.f
	ip := w.p.ip
	src := ip.SourceAddress()
	if w.p.tuple.Proto == header.ProtocolICMP && w.p.icmpType != header.ICMPv4Echo ||
		ip.FragmentOffset() != 0 || src[0] >= 224 || src == [4]byte{} || src == [4]byte{255, 255, 255, 255} {
		return
	}
	from, ok := f.ourIP(in)
	if !ok || !f.allowICMPError(w.now) {
		return
	}
	outIdx, nh, ok := f.lookupRoute(src)
	if !ok {
		return
	}
	quoted := ip[:min(len(ip), ip.HeaderLength()+8)]
	b := f.getBuf()
	n := header.EthernetLen + header.IPv4MinimumSize + header.ICMPv4MinimumSize + len(quoted)
	fr := b.data[:n]
	b.n = n
	header.Ethernet(fr).SetEtherType(header.EtherTypeIPv4)
	oip := header.IPv4(fr[header.EthernetLen:])
	oip.SetVersionAndHeaderLength(header.IPv4MinimumSize)
	oip.SetTOS(0)
	oip.SetTotalLength(uint16(len(oip)))
	oip.SetID(0)
	oip.SetFlagsFragmentOffset(0)
	oip.SetTTL(64)
	oip.SetProtocol(header.ProtocolICMP)
	oip.SetSourceAddress(from)
	oip.SetDestinationAddress(src)
	oip.SetChecksum(0)
	oip.SetChecksum(oip.CalculateChecksum())
	ic := header.ICMPv4(oip[header.IPv4MinimumSize:])
	ic.SetType(typ)
	ic.SetCode(code)
	ic.SetRestOfHeader(rest)
	copy(ic.Payload(), quoted)
	ic.SetChecksum(0)
	ic.SetChecksum(ic.CalculateChecksum())
	_ = w.transmit(f.ifs[outIdx], nh, fr, b)
}

// allowICMPError is a token bucket of icmpErrorsPerSecond, burst as large,
// driven by the Clock.
func (f *Firewall) allowICMPError(now int64) bool {
	f.icmpMu.Lock()
	defer f.icmpMu.Unlock()
	if f.icmpLast != 0 {
		f.icmpTokens = min(icmpErrorsPerSecond, f.icmpTokens+float64(now-f.icmpLast)/1e9*icmpErrorsPerSecond)
	}
	f.icmpLast = now
	if f.icmpTokens < 1 {
		return false
	}
	f.icmpTokens--
	return true
}

// related forwards an ICMP error about a packet of a known connection
// (port unreachable, time exceeded from a router beyond, fragmentation
// needed), translating the outer destination and the quoted packet the
// way the connection's NAT requires (RFC 5508). Errors about no known
// connection are dropped.
func (w *worker) related(frame []byte) DropReason {
	f := w.f
	p := &w.p
	ip := p.ip
	ic := header.ICMPv4(p.l4)
	key, r := quotedKey(ic)
	if r != dropNone {
		return r
	}
	inner := header.IPv4(ic.Payload())
	il4 := inner[inner.HeaderLength():]
	proto := key.Proto
	c, dir := f.conns.lookup(key)
	if c == nil {
		return DropNoConnection
	}
	if ip.TTL() <= 1 {
		return DropTTLExpired // no ICMP error about an ICMP error
	}
	// The quoted packet becomes the other tuple as its own side knows it.
	var other Tuple
	var outIdx int
	var nh [4]byte
	if dir == dirOrig {
		other, outIdx, nh = c.reply, int(c.outIf), c.origNextHop
	} else {
		other, outIdx, nh = c.orig, int(c.inIf), c.replyNextHop
	}
	inner.SetSourceAddress(other.Src)
	inner.SetDestinationAddress(other.Dst)
	inner.SetChecksum(inner.CalculateChecksum())
	switch proto {
	case header.ProtocolTCP, header.ProtocolUDP:
		il4[0], il4[1] = byte(other.SrcPort>>8), byte(other.SrcPort)
		il4[2], il4[3] = byte(other.DstPort>>8), byte(other.DstPort)
		if proto == header.ProtocolTCP && dir == dirReply {
			unrandomizeQuoted(c, il4)
		}
		if proto == header.ProtocolUDP {
			il4[6], il4[7] = 0, 0 // the quoted datagram may be cut short; drop its checksum rather than leave it wrong
		}
	case header.ProtocolICMP:
		il4[4], il4[5] = byte(other.SrcPort>>8), byte(other.SrcPort)
	}
	ic.SetChecksum(0)
	ic.SetChecksum(ic.CalculateChecksum())
	ip.DecrementTTLWithChecksumUpdate()
	ip.SetDestinationAddressWithChecksumUpdate(other.Src)
	if ip.SourceAddress() == key.Src {
		// The error comes from the far end itself: show its mapped address.
		ip.SetSourceAddressWithChecksumUpdate(other.Dst)
	}
	return w.transmit(f.ifs[outIdx], nh, frame, nil)
}

// quotedKey returns the connection key of the packet an ICMP error quotes,
// in the direction the error travels: the quoted packet left the firewall,
// so reversed it is the key of the error's direction.
func quotedKey(ic header.ICMPv4) (Tuple, DropReason) {
	inner := header.IPv4(ic.Payload())
	if len(inner) < header.IPv4MinimumSize || inner[0]>>4 != 4 {
		return Tuple{}, DropBadL4Header
	}
	hl := inner.HeaderLength()
	if hl < header.IPv4MinimumSize || len(inner) < hl+8 {
		return Tuple{}, DropBadL4Header
	}
	il4 := inner[hl:]
	proto := inner.Protocol()
	key := Tuple{Proto: proto, Src: inner.DestinationAddress(), Dst: inner.SourceAddress()}
	switch proto {
	case header.ProtocolTCP, header.ProtocolUDP:
		key.SrcPort = uint16(il4[2])<<8 | uint16(il4[3])
		key.DstPort = uint16(il4[0])<<8 | uint16(il4[1])
	case header.ProtocolICMP:
		if il4[0] != header.ICMPv4Echo && il4[0] != header.ICMPv4EchoReply {
			return Tuple{}, DropNoConnection
		}
		key.SrcPort = uint16(il4[4])<<8 | uint16(il4[5])
	default:
		return Tuple{}, DropNoConnection
	}
	return key, dropNone
}

// unrandomizeQuoted takes c's sequence offset back off the sequence number
// of a quoted initiator's TCP segment (il4, at least 8 bytes) in an ICMP
// error travelling to the initiator: hosts check that number against what
// they sent before they act on the error (RFC 5927; path MTU discovery
// depends on it). The caller recomputes the ICMP checksum.
func unrandomizeQuoted(c *conn, il4 []byte) {
	if c.seqOff == 0 {
		return
	}
	v := uint32(il4[4])<<24 | uint32(il4[5])<<16 | uint32(il4[6])<<8 | uint32(il4[7])
	v -= c.seqOff
	il4[4], il4[5], il4[6], il4[7] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}
