package firewall

// The to-the-box path: the unit's own IP stack.
//
// The units' data interfaces carry no kernel addresses (only the userspace
// firewall answers ARP and forwards), so an ordinary socket in the unit
// (the IKE responder on UDP 500/4500, the cut-through proxy's listener on
// TCP) has nothing to bind to. The unit therefore owns a TUN device (the
// "box", box0 in its namespace) that carries its *current* interface
// addresses as /32s (the active addresses while active, the standby
// addresses while standby; the unit swaps them on a role change) with
// routes to the connected subnets through it.
//
// Inbound, a packet addressed to the unit's own current address on the
// interface it arrived on has passed the ingress sanity checks (martians,
// land, options, reverse path); it is written to the box if the
// management policy lets it (ICMP echo, UDP 500 and 4500, TCP to the
// configured listener ports; everything else is DropToSelf), and the
// kernel answers it. Fragments are not delivered: reassembly here is
// virtual, so the datagram never exists in one buffer (DropToSelf).
//
// Outbound, a packet the kernel writes to the box must come from one of the
// unit's current addresses; it is routed by the firewall's own routes and
// sent with its ARP table out of the right interface, not through the
// transit policy, the connection table or NAT (it is the unit speaking,
// as an ASA's control plane does). An active unit whose forwarding lease
// lapsed (frozen) sends nothing.
//
// Why a TUN and not a userspace TCP/IP endpoint: the kernel already has a
// complete, well-tested stack (TCP retransmission, windows, PMTU, ICMP
// echo, socket options), and Go's net package works on it unchanged, so
// the IKE responder, a uauth listener or a debugging `nc` in the unit are
// plain sockets. The price is one write system call per packet to the box,
// paid only by traffic to the unit, never by transit traffic.

import (
	"errors"
	"io"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/falab/falab/firewall/header"
)

// Box is the unit's own IP stack as the data plane sees it: a TUN device
// without packet information, one IPv4 packet per Read and Write. Write
// may be called from several packet readers at once; Close unblocks Read.
type Box = io.ReadWriteCloser

// Well-known ports the management policy lets through to the box: IKE
// and its NAT-traversal port (RFC 7296 §2, RFC 3948).
const (
	PortIKE     = 500
	PortIKENATT = 4500
)

// boxState is the attached box and its policy.
type boxState struct {
	dev      Box
	tcpPorts []uint16 // TCP listener ports admitted; immutable after AttachBox
	writeMu  sync.Mutex
	rx, tx   atomic.Uint64 // packets delivered to the box, sent from it
}

// AttachBox makes dev the unit's own IP stack (see box.go): packets to the
// unit's current addresses that the management policy admits (ICMP echo,
// UDP 500/4500, TCP to tcpPorts) are written to it, and Run reads what the
// kernel sends from it. Without a box the unit answers ping itself. Call
// before Run.
func (f *Firewall) AttachBox(dev Box, tcpPorts []uint16) error {
	if f.transparent {
		return errors.New("attach box: routed mode only")
	}
	if dev == nil {
		return errors.New("attach box: no device")
	}
	f.box = &boxState{dev: dev, tcpPorts: slices.Clone(tcpPorts)}
	return nil
}

// BoxAddress is one address the unit's box carries for a role.
type BoxAddress struct {
	Interface string
	Addr      netip.Addr   // the interface's address for the role, a /32 on the box
	Subnet    netip.Prefix // its connected subnet, routed through the box
}

// BoxAddresses returns, for the role (active or standby), the addresses
// the box must carry: per routed interface, the active address or the
// standby address (none if the interface has no standby address).
func (f *Firewall) BoxAddresses(active bool) []BoxAddress {
	var out []BoxAddress
	for _, it := range f.ifs {
		a := it.addr
		if !active {
			if !it.hasStandby {
				continue
			}
			a = it.standby
		}
		out = append(out, BoxAddress{Interface: it.name, Addr: netip.AddrFrom4(a), Subnet: it.prefix.Masked()})
	}
	return out
}

// BoxStats returns the packets delivered to the box and sent from it.
func (f *Firewall) BoxStats() (toBox, fromBox uint64) {
	if f.box == nil {
		return 0, 0
	}
	return f.box.rx.Load(), f.box.tx.Load()
}

// toUnit handles a packet addressed to the unit's current address on in:
// to the box if one is attached and the policy admits it, else the
// unit's own ping answer (local).
func (w *worker) toUnit(in *iface, frame []byte) DropReason {
	b := w.f.box
	if b == nil {
		return w.local(in, frame)
	}
	if w.p.ip.IsFragment() || w.frag.releasing {
		return DropToSelf
	}
	if !b.admits(&w.p) {
		return DropToSelf
	}
	if b.Deliver(w.p.ip) != nil {
		return DropBoxError
	}
	return dropNone
}

// admits is the management policy: ICMP echo, IKE, and TCP to a listener.
func (b *boxState) admits(p *parsed) bool {
	switch p.tuple.Proto {
	case header.ProtocolICMP:
		return p.icmpType == header.ICMPv4Echo
	case header.ProtocolUDP:
		return p.tuple.DstPort == PortIKE || p.tuple.DstPort == PortIKENATT
	case header.ProtocolTCP:
		return slices.Contains(b.tcpPorts, p.tuple.DstPort)
	}
	return false
}

// BoxStack returns the box as the local stack that steered segments are
// delivered to (AttachUAuth), or nil without a box.
func (f *Firewall) BoxStack() LocalStack {
	if f.box == nil {
		return nil
	}
	return f.box
}

// Deliver writes one packet to the box: a segment steered to a listener
// in the unit's own stack. The write copies ip.
func (b *boxState) Deliver(ip []byte) error {
	b.writeMu.Lock()
	_, err := b.dev.Write(ip)
	b.writeMu.Unlock()
	if err != nil {
		return err
	}
	b.rx.Add(1)
	return nil
}

// answerUnit is the standby's (or a bridge's management) path for a packet
// to its own address: parse, then toUnit.
func (w *worker) answerUnit(in *iface, ip header.IPv4, frame []byte) DropReason {
	if r := w.parse(ip); r != dropNone {
		return r
	}
	if w.off.set() {
		if r, done := w.plain(in, frame); done {
			return r
		}
	}
	return w.toUnit(in, frame)
}

// boxLoop reads the packets the kernel sends from the box and sends each
// out of its interface, until the box is closed.
func (f *Firewall) boxLoop() error {
	w := f.workers.New().(*worker)
	for {
		b := f.getBuf()
		n, err := f.box.dev.Read(b.data[header.EthernetLen:])
		if err != nil {
			f.putBuf(b)
			return err
		}
		w.now = f.now()
		if r := w.fromBox(b, header.EthernetLen+n); r != dropNone {
			f.drops[r].Add(1)
		}
		w.flush()
	}
}

// fromBox sends one packet the kernel wrote to the box (in b.data after
// room for the Ethernet header): from one of the unit's current addresses,
// by the firewall's routes and ARP table. It takes ownership of b.
func (w *worker) fromBox(b *packetBuf, size int) DropReason {
	f := w.f
	frame := b.data[:size]
	b.n = size
	drop := func(r DropReason) DropReason { f.putBuf(b); return r }
	ip := header.IPv4(frame[header.EthernetLen:])
	if ip.Check() != nil || int(ip.TotalLength()) != len(ip) {
		return drop(DropBadIPHeader)
	}
	active := f.active.Load()
	if active && !f.forwarding(w.now) {
		return drop(DropLeaseExpired)
	}
	if !f.isCurrentAddr(ip.SourceAddress(), active) {
		return drop(DropMartianSource)
	}
	// The listener's answer to a steered client leaves as the server
	// the client addressed (uauth.go); the source was checked first.
	f.Unsteer(ip, w.now)
	out, nh, ok := f.lookupRoute(ip.DestinationAddress())
	if !ok {
		return drop(DropNoRoute)
	}
	header.Ethernet(frame).SetEtherType(header.EtherTypeIPv4)
	f.box.tx.Add(1)
	if len(ip) > f.ifs[out].mtu {
		return w.fragmentOut(f.ifs[out], nh, frame, b)
	}
	return w.transmit(f.ifs[out], nh, frame, b)
}

// isCurrentAddr reports whether a is one of the unit's addresses for its
// role: the active addresses while active, the standby addresses else.
func (f *Firewall) isCurrentAddr(a [4]byte, active bool) bool {
	for _, it := range f.ifs {
		if active && it.addr == a || !active && it.hasStandby && it.standby == a {
			return true
		}
	}
	return false
}

// RouteInterface names the interface the firewall routes dst by.
func (f *Firewall) RouteInterface(dst netip.Addr) (string, bool) {
	if !dst.Is4() {
		return "", false
	}
	i, _, ok := f.lookupRoute(dst.As4())
	if !ok {
		return "", false
	}
	return f.ifs[i].name, true
}
