package firewall

// ICMP the firewall sends (errors about a packet it refuses) and reads
// (the packet an error quotes, to find the connection it belongs to).

import "github.com/falab/falab/firewall/header"

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

// translateRelated rewrites, in place, a routed ICMP error (w.p) about a
// packet of c, travelling in direction dir of c: the quoted packet (key,
// reversed) becomes the other tuple as its own side knows it, the outer
// destination that side's address, and an error from the far end itself
// shows the far end's mapped address. The TTL is decremented.
func (w *worker) translateRelated(c *conn, dir int, key Tuple) {
	p := &w.p
	ip := p.ip
	ic := header.ICMPv4(p.l4)
	inner := header.IPv4(ic.Payload())
	il4 := inner[inner.HeaderLength():]
	other := c.reply
	if dir == dirReply {
		other = c.orig
	}
	inner.SetSourceAddress(other.Src)
	inner.SetDestinationAddress(other.Dst)
	inner.SetChecksum(inner.CalculateChecksum())
	switch key.Proto {
	case header.ProtocolTCP, header.ProtocolUDP:
		il4[0], il4[1] = byte(other.SrcPort>>8), byte(other.SrcPort)
		il4[2], il4[3] = byte(other.DstPort>>8), byte(other.DstPort)
		if key.Proto == header.ProtocolTCP && dir == dirReply {
			unrandomizeQuoted(c, il4)
		}
		if key.Proto == header.ProtocolUDP {
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
}
