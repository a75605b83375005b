package firewall

// IPsec in the data plane: ESP tunnel mode over UDP 4500 (RFC 4303,
// RFC 4106, RFC 3948) on an interface with a crypto map.
//
// Inbound, UDP 4500 to the unit's active address on a crypto-map interface
// that is not IKE (no non-ESP marker) and not a NAT-keepalive is ESP: it
// is decrypted in place on the reader goroutine (no box, no copy), its
// inner packet must lie inside the SA's traffic selectors, and then it
// runs the rest of the packet path as if it had arrived on that interface:
// sanity checks, connection table, policy, NAT. Outbound, a packet the
// path is about to send out of a crypto-map interface whose addresses
// match a crypto ACL (local source, remote destination) is encrypted with
// the newest SA for them and sent as UDP 4500 to the peer, by route and
// ARP; with no SA up it is dropped (the unit only responds to IKE). A
// flow matching a crypto ACL is exempt from NAT, as the ASA's identity
// NAT exemption that goes with every site-to-site tunnel.
//
// The SAs come from the unit (InstallIPsecSA), which negotiates them with
// IKE and replicates them; the outbound sequence numbers are leased
// (GrantIPsecLease, see package esp). An ESP datagram that arrives in
// fragments (a peer behind a smaller MTU) is reassembled into one buffer
// once whole (releaseJoined in fragment.go; elsewhere reassembly is
// virtual) and then decrypted like any other. Outbound ESP larger than
// the egress MTU is fragmented (the outer header never has DF).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/falab/falab/esp"
	"github.com/falab/falab/firewall/header"
)

// AddrRange is a traffic selector's address range (RFC 7296 §3.13.1).
type AddrRange struct {
	From, To netip.Addr
}

func (r AddrRange) contains(a uint32) bool {
	return a >= u32(r.From.As4()) && a <= u32(r.To.As4())
}

func inRanges(rs []AddrRange, a [4]byte) bool {
	v := u32(a)
	for _, r := range rs {
		if r.contains(v) {
			return true
		}
	}
	return false
}

// IPsecSA is a child SA as the unit installs it.
type IPsecSA struct {
	Interface string         // the crypto map's interface
	Peer      netip.AddrPort // where ESP goes (the peer's NAT-T address)
	InSPI     uint32         // ours: the peer sends with it
	OutSPI    uint32         // the peer's
	InKey     []byte
	InSalt    []byte
	OutKey    []byte
	OutSalt   []byte
	LocalTS   []AddrRange // our protected networks
	RemoteTS  []AddrRange // the peer's
	// NextSeq is the first outbound sequence number: 1 for a new SA, the
	// last leased limit at a takeover. Nothing is sent before a grant.
	NextSeq uint64
	// ReplayTop is the inbound window's synced top (0 for a new SA).
	ReplayTop uint32
	// ReplayBitmap is the synced window below ReplayTop, as
	// IPsecReplayWindow returns it: numbers received there stay refused,
	// the others are accepted. Nil: everything up to ReplayTop counts as
	// received.
	ReplayBitmap []uint64
	// ReplayWindow is the window in packets (0: 1024).
	ReplayWindow int
}

// ipsecSA is an installed child SA: esp's halves, each under its own lock
// (inbound packets arrive on one interface's reader, outbound on others).
type ipsecSA struct {
	cfg      IPsecSA
	ifIdx    int
	local    [4]byte
	peer     [4]byte
	peerPort uint16

	inMu  sync.Mutex
	in    *esp.Inbound
	outMu sync.Mutex
	out   *esp.Outbound

	encaps, decaps          atomic.Uint64
	encapBytes, decapBytes  atomic.Uint64
	replayDrops, authDrops  atomic.Uint64
	leaseDrops, policyDrops atomic.Uint64
}

// ipsecTable is an immutable snapshot of the installed SAs, swapped whole.
type ipsecTable struct {
	byIn map[uint32]*ipsecSA
	list []*ipsecSA // newest first: outbound prefers the newest (a rekey's)
}

// cryptoRule is one crypto ACL line of a crypto-map interface.
type cryptoRule struct {
	ifIdx           int
	srcNet, srcMask uint32
	dstNet, dstMask uint32
}

// compileCrypto makes the crypto ACLs; fwconfig has validated them.
func (f *Firewall) compileCrypto(cfg Config) {
	for _, m := range cfg.CryptoMaps {
		i := f.byName[m.Interface]
		f.ifs[i].crypto = true
		for _, a := range m.MatchAddress {
			sn, sm, _ := prefixMatch(a.Source)
			dn, dm, _ := prefixMatch(a.Destination)
			f.cryptoRules = append(f.cryptoRules, cryptoRule{ifIdx: i, srcNet: sn, srcMask: sm, dstNet: dn, dstMask: dm})
		}
	}
}

// cryptoMatch reports whether traffic from src to dst leaving by out is a
// crypto ACL's.
func (f *Firewall) cryptoMatch(out int, src, dst [4]byte) bool {
	s, d := u32(src), u32(dst)
	for i := range f.cryptoRules {
		r := &f.cryptoRules[i]
		if r.ifIdx == out && s&r.srcMask == r.srcNet && d&r.dstMask == r.dstNet {
			return true
		}
	}
	return false
}

// InstallIPsecSA installs (or replaces, by InSPI) a child SA.
func (f *Firewall) InstallIPsecSA(c IPsecSA) error {
	i, ok := f.byName[c.Interface]
	if !ok || !f.ifs[i].crypto {
		return fmt.Errorf("install IPsec SA: %q is not a crypto-map interface", c.Interface)
	}
	if !c.Peer.Addr().Is4() {
		return errors.New("install IPsec SA: the peer is not IPv4")
	}
	win := c.ReplayWindow
	if win == 0 {
		win = 1024
	}
	in, err := esp.NewInbound(c.InSPI, c.InKey, c.InSalt, win)
	if err != nil {
		return fmt.Errorf("install IPsec SA %08x: %w", c.InSPI, err)
	}
	if c.ReplayBitmap != nil {
		in.Window().Restore(c.ReplayTop, c.ReplayBitmap)
	} else {
		in.Window().Advance(c.ReplayTop)
	}
	out, err := esp.NewOutbound(c.OutSPI, c.OutKey, c.OutSalt, c.NextSeq)
	if err != nil {
		return fmt.Errorf("install IPsec SA %08x: %w", c.InSPI, err)
	}
	sa := &ipsecSA{cfg: c, ifIdx: i, local: f.ifs[i].addr, peer: c.Peer.Addr().As4(), peerPort: c.Peer.Port(), in: in, out: out}
	f.ipsecMu.Lock()
	defer f.ipsecMu.Unlock()
	old := f.ipsec.Load()
	t := &ipsecTable{byIn: map[uint32]*ipsecSA{c.InSPI: sa}, list: []*ipsecSA{sa}}
	if old != nil {
		for _, s := range old.list {
			if s.cfg.InSPI != c.InSPI {
				t.byIn[s.cfg.InSPI] = s
				t.list = append(t.list, s)
			}
		}
	}
	f.ipsec.Store(t)
	return nil
}

// RemoveIPsecSA removes the child SA with our SPI inSPI.
func (f *Firewall) RemoveIPsecSA(inSPI uint32) {
	f.ipsecMu.Lock()
	defer f.ipsecMu.Unlock()
	old := f.ipsec.Load()
	if old == nil || old.byIn[inSPI] == nil {
		return
	}
	t := &ipsecTable{byIn: map[uint32]*ipsecSA{}}
	for _, s := range old.list {
		if s.cfg.InSPI != inSPI {
			t.byIn[s.cfg.InSPI] = s
			t.list = append(t.list, s)
		}
	}
	f.ipsec.Store(t)
}

// RemoveAllIPsecSAs empties the SA table (a unit stepping down: the next
// takeover reinstalls from the replicated records with fresh leases).
func (f *Firewall) RemoveAllIPsecSAs() {
	f.ipsecMu.Lock()
	f.ipsec.Store(nil)
	f.ipsecMu.Unlock()
}

// GrantIPsecLease lets SA inSPI send sequence numbers below upTo (the
// unit grants only limits the standby acknowledged).
func (f *Firewall) GrantIPsecLease(inSPI uint32, upTo uint64) {
	t := f.ipsec.Load()
	if t == nil || t.byIn[inSPI] == nil {
		return
	}
	sa := t.byIn[inSPI]
	sa.outMu.Lock()
	sa.out.Grant(upTo)
	sa.outMu.Unlock()
}

// IPsecReplayWindow appends SA inSPI's inbound replay window to dst (see
// esp.Window.Snapshot) and returns it with the window's top, for the
// standby; ok is false if there is no such SA.
func (f *Firewall) IPsecReplayWindow(inSPI uint32, dst []uint64) (top uint32, words []uint64, ok bool) {
	t := f.ipsec.Load()
	if t == nil || t.byIn[inSPI] == nil {
		return 0, dst, false
	}
	sa := t.byIn[inSPI]
	sa.inMu.Lock()
	defer sa.inMu.Unlock()
	return sa.in.Window().Top(), sa.in.Window().Snapshot(dst), true
}

// IPsecSAInfo is an installed SA's state and counters (show crypto ipsec sa).
type IPsecSAInfo struct {
	Interface    string         `json:"interface"`
	Local        netip.Addr     `json:"local"`
	Peer         netip.AddrPort `json:"peer"`
	InSPI        uint32         `json:"in_spi"`
	OutSPI       uint32         `json:"out_spi"`
	LocalTS      []AddrRange    `json:"local_ts"`
	RemoteTS     []AddrRange    `json:"remote_ts"`
	Encaps       uint64         `json:"encaps"`
	Decaps       uint64         `json:"decaps"`
	EncapBytes   uint64         `json:"encap_bytes"`
	DecapBytes   uint64         `json:"decap_bytes"`
	ReplayDrops  uint64         `json:"replay_drops"`
	AuthDrops    uint64         `json:"auth_drops"`
	LeaseDrops   uint64         `json:"lease_drops"`
	PolicyDrops  uint64         `json:"policy_drops"`
	NextSeq      uint64         `json:"next_seq"`    // the next outbound sequence number
	LeaseLimit   uint64         `json:"lease_limit"` // numbers below it may be sent
	NeedGrant    bool           `json:"need_grant"`  // less than half the last grant is left
	ReplayTop    uint32         `json:"replay_top"`  // the highest inbound sequence number accepted
	ReplayWindow int            `json:"replay_window"`
}

// IPsecSAs returns the installed SAs, newest first.
func (f *Firewall) IPsecSAs() []IPsecSAInfo {
	t := f.ipsec.Load()
	if t == nil {
		return nil
	}
	out := make([]IPsecSAInfo, 0, len(t.list))
	for _, sa := range t.list {
		i := IPsecSAInfo{Interface: sa.cfg.Interface, Local: netip.AddrFrom4(sa.local), Peer: sa.cfg.Peer, InSPI: sa.cfg.InSPI, OutSPI: sa.cfg.OutSPI,
			LocalTS: sa.cfg.LocalTS, RemoteTS: sa.cfg.RemoteTS,
			Encaps: sa.encaps.Load(), Decaps: sa.decaps.Load(), EncapBytes: sa.encapBytes.Load(), DecapBytes: sa.decapBytes.Load(),
			ReplayDrops: sa.replayDrops.Load(), AuthDrops: sa.authDrops.Load(), LeaseDrops: sa.leaseDrops.Load(), PolicyDrops: sa.policyDrops.Load()}
		sa.outMu.Lock()
		i.NextSeq, i.LeaseLimit, i.NeedGrant = sa.out.Next(), sa.out.Limit(), sa.out.NeedGrant() || sa.out.Limit() <= sa.out.Next()
		sa.outMu.Unlock()
		sa.inMu.Lock()
		i.ReplayTop, i.ReplayWindow = sa.in.Window().Top(), sa.in.Window().Size()
		sa.inMu.Unlock()
		out = append(out, i)
	}
	return out
}

// decapESP handles UDP 4500 to the unit's active address on a crypto-map
// interface: ESP is decrypted in place and its inner packet runs the path
// from the network layer on, as if it arrived on in. IKE and keepalives
// are not ESP (done false: they go to the box).
func (w *worker) decapESP(in *iface, frame []byte) (r DropReason, done bool) {
	f := w.f
	p := &w.p
	payload := p.l4[header.UDPMinimumSize:]
	if esp.IsIKE(payload) || esp.IsKeepalive(payload) {
		return dropNone, false
	}
	if w.inTunnel || w.frag.releasing || p.ip.IsFragment() {
		// ESP in ESP, or a fragment, which releaseJoined never lets through:
		// never a whole datagram here.
		return DropESPAuth, true
	}
	t := f.ipsec.Load()
	if t == nil || len(payload) < 4 {
		return DropESPNoSA, true
	}
	sa := t.byIn[binary.BigEndian.Uint32(payload)]
	if sa == nil || sa.ifIdx != in.idx {
		return DropESPNoSA, true
	}
	const espHeader = 16 // SPI, sequence number, IV
	sa.inMu.Lock()
	var inner []byte
	var err error
	if len(payload) >= espHeader {
		inner, err = sa.in.Decap(payload[espHeader:espHeader], payload) // in place
	} else {
		err = esp.ErrShort
	}
	sa.inMu.Unlock()
	switch {
	case errors.Is(err, esp.ErrReplay):
		sa.replayDrops.Add(1)
		return DropESPReplay, true
	case err != nil:
		sa.authDrops.Add(1)
		return DropESPAuth, true
	}
	ip := header.IPv4(inner)
	if ip.Check() != nil || !inRanges(sa.cfg.RemoteTS, ip.SourceAddress()) || !inRanges(sa.cfg.LocalTS, ip.DestinationAddress()) {
		sa.policyDrops.Add(1)
		return DropESPPolicy, true
	}
	sa.decaps.Add(1)
	sa.decapBytes.Add(uint64(len(inner)))
	off := header.EthernetLen + p.ip.HeaderLength() + header.UDPMinimumSize + espHeader
	innerFrame := frame[off-header.EthernetLen : off+len(inner)]
	copy(innerFrame[:12], frame[:12])
	header.Ethernet(innerFrame).SetEtherType(header.EtherTypeIPv4)
	w.inTunnel = true
	r = w.network(in, linkIPv4, innerFrame)
	w.inTunnel = false
	return r, true
}

// tunnelled is encapESP for forward's switch: it reports whether the
// frame was the tunnel's, with the verdict in *r.
func (w *worker) tunnelled(out int, frame []byte, r *DropReason) bool {
	v, done := w.encapESP(out, frame)
	if done {
		*r = v
	}
	return done
}

// encapESP sends the IPv4 frame through the tunnel if out is a crypto-map
// interface and the packet matches a crypto ACL (done false otherwise).
func (w *worker) encapESP(out int, frame []byte) (r DropReason, done bool) {
	f := w.f
	inner := header.IPv4(frame[header.EthernetLen:])
	src, dst := inner.SourceAddress(), inner.DestinationAddress()
	if !f.cryptoMatch(out, src, dst) {
		return dropNone, false
	}
	var sa *ipsecSA
	if t := f.ipsec.Load(); t != nil {
		for _, s := range t.list {
			if s.ifIdx == out && inRanges(s.cfg.LocalTS, src) && inRanges(s.cfg.RemoteTS, dst) {
				sa = s
				break
			}
		}
	}
	if sa == nil {
		return DropESPNoSA, true
	}
	const outer = header.EthernetLen + header.IPv4MinimumSize + header.UDPMinimumSize
	b := f.getBuf()
	sa.outMu.Lock()
	pkt, err := sa.out.Encap(b.data[:outer], inner)
	sa.outMu.Unlock()
	if err != nil {
		f.putBuf(b)
		sa.leaseDrops.Add(1)
		return DropESPLease, true
	}
	b.n = len(pkt)
	sa.encaps.Add(1)
	sa.encapBytes.Add(uint64(len(inner)))
	header.Ethernet(pkt).SetEtherType(header.EtherTypeIPv4)
	ip := header.IPv4(pkt[header.EthernetLen:])
	ip.SetVersionAndHeaderLength(header.IPv4MinimumSize)
	ip.SetTOS(0)
	ip.SetTotalLength(uint16(len(ip)))
	ip.SetID(uint16(f.ipsecID.Add(1)))
	ip.SetFlagsFragmentOffset(0)
	ip.SetTTL(64)
	ip.SetProtocol(header.ProtocolUDP)
	ip.SetSourceAddress(sa.local)
	ip.SetDestinationAddress(sa.peer)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())
	u := header.UDP(ip[header.IPv4MinimumSize:])
	u.SetSourcePort(PortIKENATT)
	u.SetDestinationPort(sa.peerPort)
	u.SetLength(uint16(len(u)))
	u.SetChecksum(0) // RFC 3948 §2.1: ESP in UDP goes with a zero checksum
	egress, nh, ok := f.lookupRoute(sa.peer)
	if !ok {
		f.putBuf(b)
		return DropNoRoute, true
	}
	if len(ip) > f.ifs[egress].mtu {
		return w.fragmentOut(f.ifs[egress], nh, pkt, b), true
	}
	return w.transmit(f.ifs[egress], nh, pkt, b), true
}
