package firewall

// ARP: the neighbour table of the routed mode.
//
// The table is replicated, so one forged frame that moved an entry would
// move it on both units. Entries therefore change only as Linux's and an
// ASA with ARP inspection would let them:
//
//   - An entry is created only from a solicited reply (one answering a
//     resolution the firewall started, addressed to its own address) or
//     from a host that talks to the firewall (a request for one of its
//     addresses from a sender on the interface's subnet). Unsolicited
//     replies and gratuitous ARP create nothing.
//   - A frame that claims a known address for another MAC never moves the
//     entry. It is dropped and counted (arp-conflict), and the firewall
//     asks the old MAC, by unicast, whether it still owns the address. An
//     answer confirms the entry; if none comes after arpProbes requests the
//     entry is deleted, and the next packet resolves the address afresh by
//     broadcast, so a host that really changed its MAC is reachable again
//     within seconds while a spoofer never takes over a live host.
//   - A frame from another station claiming one of the unit's own
//     addresses is counted (arp-addr-conflict) and, on the active unit,
//     answered by a gratuitous ARP (at most one per interface per
//     arpDefendInterval), so the hosts the forgery poisoned learn the right
//     MAC again.
//   - The firewall never ARPs for an address that cannot be a neighbour:
//     off the interface's subnet, its network or broadcast address, zero
//     or multicast.

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/falab/falab/firewall/header"
)

const (
	// arpQueueLen and arpQueueBytes bound the frames held per unresolved
	// next hop, like Linux's unres_qlen (101) and unres_qlen_bytes (64 KiB):
	// a burst of new connections to one next hop (20 SYNs at once) must
	// not lose its first packets.
	arpQueueLen   = 100
	arpQueueBytes = 64 << 10
	// arpMaxPendingPerIf bounds the next hops resolved at once on one
	// interface, and arpMaxQueuedBytes the frames queued for all of them,
	// so that a scan of a connected subnet cannot hold the buffer pool.
	arpMaxPendingPerIf = 256
	arpMaxQueuedBytes  = 4 << 20
	arpRetryInterval   = time.Second // between ARP requests for one next hop
	arpMaxRequests     = 3           // requests before queued frames are dropped
	// arpProbes unicast requests, arpRetryInterval apart, go to the MAC of
	// an entry a frame contradicted (or that a takeover left unconfirmed)
	// before the entry is deleted.
	arpProbes = 2
	// arpRevalidatePerCall bounds the entries a new active starts probing
	// per Maintain call, so that a takeover does not burst the whole table.
	arpRevalidatePerCall = 64
	// arpDefendInterval is the least time between two gratuitous ARPs that
	// defend an interface's addresses against a conflicting station.
	arpDefendInterval = time.Second
	arpFrameLen       = header.EthernetLen + header.ARPLen
)

var zeroMAC [6]byte
var broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

type arpKey struct {
	ifIdx uint8
	ip    [4]byte
}

// arpEntry fields are guarded by arpTable.mu. Only mac (with the key) is
// replicated; the probe state is the unit's own.
type arpEntry struct {
	mac        [6]byte
	updated    int64 // last confirmation by the owner of mac
	hash       uint64
	probes     int   // unicast probes sent since the last confirmation; 0: not probing
	probeAt    int64 // when the last probe left
	revalidate bool  // probe at the next Maintain (set on takeover)
}

// localEntry is a neighbour the standby learnt for its own traffic.
type localEntry struct {
	mac     [6]byte
	updated int64
}

// pendingQueue holds frames waiting for a next hop's MAC; guarded by arpTable.mu.
type pendingQueue struct {
	bufs        []*packetBuf
	bytes       int
	requests    int
	lastRequest int64
}

// arpTable is the replicated ARP table, the standby's own neighbours and
// the queues of frames awaiting resolution.
//
// Lock order: arpTable.mu -> Firewall.changeMu.
type arpTable struct {
	mu          sync.RWMutex
	m           map[arpKey]*arpEntry     // guarded by mu: replicated entries
	local       map[arpKey]localEntry    // guarded by mu: learnt while standby, never replicated
	pending     map[arpKey]*pendingQueue // guarded by mu
	pendingIf   [256]int                 // guarded by mu: len(pending) per interface
	queuedBytes int                      // guarded by mu: frame bytes in all pending queues
	defended    [256]int64               // guarded by mu: last defending GARP per interface
}

func (t *arpTable) init() {
	t.m = make(map[arpKey]*arpEntry)
	t.local = make(map[arpKey]localEntry)
	t.pending = make(map[arpKey]*pendingQueue)
}

// resolve returns the MAC of ip on interface ifIdx: from the replicated
// table, or on the standby from its own neighbours.
func (f *Firewall) resolve(ifIdx int, ip [4]byte) ([6]byte, bool) {
	k := arpKey{uint8(ifIdx), ip}
	t := &f.arp
	t.mu.RLock()
	defer t.mu.RUnlock()
	if e := t.m[k]; e != nil {
		return e.mac, true
	}
	if e, ok := t.local[k]; ok {
		return e.mac, true
	}
	return zeroMAC, false
}

// upsertARPLocked creates, moves or refreshes an ARP entry; only creation
// and a MAC change are recorded (a refresh would flood the stream). It is
// the one way ARP entries come to exist or change: the packet path calls
// it only for what handleARP allows, ApplyChange for what the active sent.
// Caller holds t.mu.
func (f *Firewall) upsertARPLocked(rec ARPRecord) error {
	i, ok := f.byName[rec.Interface]
	if !ok {
		return cfgErr("arp entry names unknown interface %q", rec.Interface)
	}
	k := arpKey{uint8(i), rec.IP}
	e := f.arp.m[k]
	if e != nil && e.mac == rec.MAC {
		e.updated = max(e.updated, rec.Updated)
		return nil
	}
	var old uint64
	if e == nil {
		e = &arpEntry{}
		f.arp.m[k] = e
	} else {
		old = e.hash
	}
	e.mac, e.updated = rec.MAC, rec.Updated
	e.probes, e.revalidate = 0, false
	ch := Change{Table: TableARP, Op: OpUpsert, ARP: rec}
	e.hash = entryHash(ch)
	f.commit(ch, old, e.hash)
	return nil
}

// deleteARPLocked removes an entry and records it. Caller holds t.mu.
func (f *Firewall) deleteARPLocked(k arpKey) {
	e := f.arp.m[k]
	if e == nil {
		return
	}
	delete(f.arp.m, k)
	f.commit(Change{Table: TableARP, Op: OpDelete, ARP: ARPRecord{
		Interface: f.ifs[k.ifIdx].name, IP: k.ip, MAC: e.mac, Updated: e.updated}}, e.hash, 0)
}

// neighbourAddr reports whether ip can be a neighbour on in: inside the
// interface's subnet and neither its network nor its broadcast address
// (which also excludes 0.0.0.0 and multicast, never inside a valid subnet
// but as those two).
func neighbourAddr(in *iface, ip [4]byte) bool {
	a := u32(ip)
	return a&in.mask == in.netAddr && a != in.netAddr && a != in.netAddr|^in.mask && ip != [4]byte{} && ip[0] < 224
}

// claimsOurs reports whether ip is one the unit answers for on in in its
// current role: the active address and the NAT mapped addresses while
// active, the standby address while standby.
func claimsOurs(in *iface, ip [4]byte, active bool) bool {
	if active {
		return ip == in.addr || slices.Contains(in.proxyARP, ip)
	}
	return in.hasStandby && ip == in.standby
}

// unitAddr reports whether ip is any address of the pair on in (the
// peer's included), which is never learnt as a neighbour.
func unitAddr(in *iface, ip [4]byte) bool {
	return ip == in.addr || in.hasStandby && ip == in.standby || slices.Contains(in.proxyARP, ip)
}

// handleARP learns from, and answers, an ARP packet on interface in.
func (w *worker) handleARP(in *iface, frame []byte) DropReason {
	f := w.f
	eth := header.Ethernet(frame)
	a := header.ARP(eth.Payload())
	if !a.IsValid() {
		if len(a) < header.ARPLen {
			return DropTruncated
		}
		return DropBadARP
	}
	active := f.forwarding(w.now)
	spa, tpa := a.SenderProtocolAddress(), a.TargetProtocolAddress()
	sha := [6]byte(a.SenderHardwareAddress())
	op := a.Op()
	if op != header.ARPRequest && op != header.ARPReply {
		return DropBadARP
	}
	if header.IsMulticast(sha[:]) || sha == zeroMAC {
		return DropBadARP
	}
	mac := f.ourMAC(in)
	if sha == *mac {
		return dropNone // our own frame, looped back by the segment
	}
	if claimsOurs(in, spa, active) {
		return w.defend(in, spa, active)
	}
	forUs := claimsOurs(in, tpa, active)
	request := op == header.ARPRequest

	switch {
	case unitAddr(in, spa):
		// The peer unit: answered, never learnt.
	case spa == [4]byte{}:
		// An RFC 5227 probe: answered (the address is taken), not learnt.
	case !neighbourAddr(in, spa):
		if forUs {
			return DropARPNonConnected // as an ASA without "arp permit-nonconnected"
		}
		return dropNone
	default:
		ourIP, ok := f.ourIP(in)
		if r := w.learnARP(in, spa, sha, request && forUs, !request && ok && tpa == ourIP); r != dropNone {
			return r
		}
	}

	if request && forUs {
		// Answer in place: the request's bytes become the reply.
		eth.SetDestination(sha[:])
		eth.SetSource(mac[:])
		a.SetOp(header.ARPReply)
		a.SetTarget(sha[:], spa)
		a.SetSender(mac[:], tpa)
		w.queue(in.idx, frame, nil)
	}
	return dropNone
}

// learnARP applies what an on-subnet sender's ARP says about (spa, sha):
// talksToUs is a request for one of our addresses, replyToUs a reply
// addressed to our address (solicited if a resolution of spa is pending).
// A contradicting claim changes nothing and is reported as arp-conflict.
func (w *worker) learnARP(in *iface, spa [4]byte, sha [6]byte, talksToUs, replyToUs bool) DropReason {
	f := w.f
	active := f.active.Load()
	k := arpKey{uint8(in.idx), spa}
	var q *pendingQueue
	var probe [6]byte
	probing := false
	r := dropNone
	f.arp.mu.Lock()
	pq := f.arp.pending[k]
	create := talksToUs || replyToUs && pq != nil
	learnt := false
	if active {
		switch e := f.arp.m[k]; {
		case e != nil && e.mac == sha:
			e.updated = max(e.updated, w.now)
			e.probes, e.revalidate = 0, false
		case e != nil:
			r = DropARPConflict
			if e.probes == 0 {
				e.probes, e.probeAt, e.revalidate = 1, w.now, false
				probe, probing = e.mac, true
			}
		case create:
			_ = f.upsertARPLocked(ARPRecord{Interface: in.name, IP: spa, MAC: sha, Updated: w.now})
			learnt = true
		}
	} else {
		switch e, ok := f.arp.local[k]; {
		case ok && e.mac == sha:
			f.arp.local[k] = localEntry{sha, w.now}
		case ok:
			r = DropARPConflict // the standby's own neighbours age out instead
		case create:
			f.arp.local[k] = localEntry{sha, w.now}
			learnt = true
		}
	}
	if learnt && pq != nil {
		q = pq
		f.arp.removePendingLocked(k, pq)
	}
	f.arp.mu.Unlock()
	if q != nil {
		mac := f.ourMAC(in)
		for _, b := range q.bufs {
			fr := b.data[:b.n]
			e := header.Ethernet(fr)
			e.SetDestination(sha[:])
			e.SetSource(mac[:])
			w.queue(in.idx, fr, b)
		}
	}
	if probing {
		w.sendARPProbe(in, probe, spa)
	}
	return r
}

// defend handles a frame from another station claiming ip, one of the
// unit's own addresses on in: counted, and on the active unit answered by
// a rate-limited gratuitous ARP so that the poisoned hosts relearn.
func (w *worker) defend(in *iface, ip [4]byte, active bool) DropReason {
	f := w.f
	if !active {
		return DropARPAddrConflict // only the active unit defends
	}
	f.arp.mu.Lock()
	last := f.arp.defended[in.idx]
	announce := last == 0 || w.now-last >= int64(arpDefendInterval)
	if announce {
		f.arp.defended[in.idx] = w.now
	}
	f.arp.mu.Unlock()
	if announce && in.port != nil {
		b := f.getBuf()
		fr := buildARP(b, header.ARPRequest, broadcastMAC[:], in.activeMAC[:], ip, zeroMAC[:], ip)
		w.queue(in.idx, fr, b)
	}
	return DropARPAddrConflict
}

// removePendingLocked forgets the pending resolution k (its frames are
// the caller's). Caller holds t.mu.
func (t *arpTable) removePendingLocked(k arpKey, q *pendingQueue) {
	delete(t.pending, k)
	t.pendingIf[k.ifIdx]--
	t.queuedBytes -= q.bytes
}

// ourMAC returns the interface's MAC for the current role.
func (f *Firewall) ourMAC(in *iface) *[6]byte {
	if f.active.Load() {
		return &in.activeMAC
	}
	return &in.standbyMAC
}

// ourIP returns the interface's address for the current role.
func (f *Firewall) ourIP(in *iface) ([4]byte, bool) {
	if f.active.Load() {
		return in.addr, true
	}
	return in.standby, in.hasStandby
}

// buildARP fills b with an ARP frame.
func buildARP(b *packetBuf, op uint16, ethDst, srcMAC []byte, srcIP [4]byte, tgtMAC []byte, tgtIP [4]byte) []byte {
	fr := b.data[:arpFrameLen]
	e := header.Ethernet(fr)
	e.SetDestination(ethDst)
	e.SetSource(srcMAC)
	e.SetEtherType(header.EtherTypeARP)
	a := header.ARP(e.Payload())
	a.SetIPv4OverEthernet()
	a.SetOp(op)
	a.SetSender(srcMAC, srcIP)
	a.SetTarget(tgtMAC, tgtIP)
	b.n = len(fr)
	return fr
}

// sendARPRequest queues a broadcast request for ip on interface in.
func (w *worker) sendARPRequest(in *iface, ip [4]byte) {
	w.sendARPProbe(in, broadcastMAC, ip)
}

// sendARPProbe queues a request for ip on interface in to the Ethernet
// destination dst: broadcast to resolve, the known MAC to confirm it.
func (w *worker) sendARPProbe(in *iface, dst [6]byte, ip [4]byte) {
	src, ok := w.f.ourIP(in)
	if !ok || in.port == nil {
		return
	}
	b := w.f.getBuf()
	fr := buildARP(b, header.ARPRequest, dst[:], w.f.ourMAC(in)[:], src, zeroMAC[:], ip)
	w.queue(in.idx, fr, b)
}

// enqueueUnresolved holds frame until nextHop on out answers ARP, sending
// the first request. frame is copied unless it already lives in buf. An
// address that cannot be a neighbour is never ARPed for, and the number of
// resolutions and the bytes they hold are bounded.
func (w *worker) enqueueUnresolved(out *iface, nextHop [4]byte, frame []byte, buf *packetBuf) DropReason {
	f := w.f
	drop := func(r DropReason) DropReason {
		if buf != nil {
			f.putBuf(buf)
		}
		return r
	}
	if !neighbourAddr(out, nextHop) || unitAddr(out, nextHop) {
		return drop(DropInvalidNextHop)
	}
	if w.carriesOffload(frame) {
		// A super-frame kept whole needs its virtio_net_hdr, which the
		// queue does not keep (nor a buffer its size): the sender resends.
		return drop(DropNoAdjacency)
	}
	k := arpKey{uint8(out.idx), nextHop}
	f.arp.mu.Lock()
	q := f.arp.pending[k]
	first := q == nil
	switch {
	case first && f.arp.pendingIf[k.ifIdx] >= arpMaxPendingPerIf,
		!first && (len(q.bufs) >= arpQueueLen || q.bytes+len(frame) > arpQueueBytes),
		f.arp.queuedBytes+len(frame) > arpMaxQueuedBytes:
		f.arp.mu.Unlock()
		return drop(DropNoAdjacency)
	}
	if first {
		q = &pendingQueue{requests: 1, lastRequest: w.now}
		f.arp.pending[k] = q
		f.arp.pendingIf[k.ifIdx]++
	}
	if buf == nil {
		buf = f.getBuf()
		buf.n = copy(buf.data[:], frame)
	}
	q.bufs = append(q.bufs, buf)
	q.bytes += buf.n
	f.arp.queuedBytes += buf.n
	f.arp.mu.Unlock()
	if first {
		w.sendARPRequest(out, nextHop)
	}
	return dropNone
}

// maintainARP retries requests for unresolved next hops and drops the
// frames of those that never answer; on the active it probes contradicted
// and takeover entries (deleting those whose owner is gone) and ages
// entries out; on either role it ages the standby's own neighbours.
func (w *worker) maintainARP(active bool) {
	f := w.f
	type probe struct {
		in  *iface
		dst [6]byte
		ip  [4]byte
	}
	var probes []probe
	var dropped int
	f.arp.mu.Lock()
	for k, q := range f.arp.pending {
		if w.now-q.lastRequest < int64(arpRetryInterval) {
			continue
		}
		if q.requests >= arpMaxRequests {
			for _, b := range q.bufs {
				f.putBuf(b)
			}
			dropped += len(q.bufs)
			f.arp.removePendingLocked(k, q)
			continue
		}
		q.requests++
		q.lastRequest = w.now
		probes = append(probes, probe{f.ifs[k.ifIdx], broadcastMAC, k.ip})
	}
	if active {
		budget := arpRevalidatePerCall
		for k, e := range f.arp.m {
			switch {
			case w.now-e.updated > int64(f.timeouts.ARP):
				f.deleteARPLocked(k)
				continue
			case e.probes > 0 && w.now-e.probeAt >= int64(arpRetryInterval):
				if e.probes >= arpProbes {
					f.deleteARPLocked(k) // the owner is gone: resolve afresh on demand
					continue
				}
				e.probes++
			case e.revalidate && e.probes == 0 && budget > 0:
				budget--
				e.probes, e.revalidate = 1, false
			default:
				continue
			}
			e.probeAt = w.now
			probes = append(probes, probe{f.ifs[k.ifIdx], e.mac, k.ip})
		}
	}
	for k, e := range f.arp.local {
		if w.now-e.updated > int64(f.timeouts.ARP) {
			delete(f.arp.local, k)
		}
	}
	f.arp.mu.Unlock()
	if dropped > 0 {
		f.drops[DropARPTimeout].Add(uint64(dropped))
	}
	for _, p := range probes {
		w.sendARPProbe(p.in, p.dst, p.ip)
	}
}

// touchAllARP prepares the table for a new active: entries stay usable
// (so no flow stalls at takeover) with a fresh age, but each is confirmed
// by a unicast probe over the next Maintain calls, since the standby never
// saw the hosts' ARP traffic; those that do not answer (a host that
// changed its MAC or left) are deleted and resolved afresh. The standby's
// own neighbours are forgotten: the replicated table is the active's.
func (f *Firewall) touchAllARP(now int64) {
	f.arp.mu.Lock()
	for _, e := range f.arp.m {
		e.updated = now
		e.probes, e.revalidate = 0, true
	}
	clear(f.arp.local)
	f.arp.mu.Unlock()
}

// dropAllPending discards every queued frame (on leaving the active role).
func (f *Firewall) dropAllPending() {
	f.arp.mu.Lock()
	for k, q := range f.arp.pending {
		for _, b := range q.bufs {
			f.putBuf(b)
		}
		f.arp.removePendingLocked(k, q)
	}
	f.arp.mu.Unlock()
}

// ARPInfo describes one ARP entry for the API.
type ARPInfo struct {
	Interface string        `json:"interface"`
	IP        netip.Addr    `json:"ip"`
	MAC       string        `json:"mac"`
	Age       time.Duration `json:"age_ns"`
}

// ARPEntries returns the replicated ARP table sorted by interface and address.
func (f *Firewall) ARPEntries() []ARPInfo {
	now := f.now()
	f.arp.mu.RLock()
	out := make([]ARPInfo, 0, len(f.arp.m))
	for k, e := range f.arp.m {
		out = append(out, ARPInfo{Interface: f.ifs[k.ifIdx].name, IP: netip.AddrFrom4(k.ip),
			MAC: net.HardwareAddr(e.mac[:]).String(), Age: time.Duration(now - e.updated)})
	}
	f.arp.mu.RUnlock()
	slices.SortFunc(out, func(a, b ARPInfo) int {
		if a.Interface != b.Interface {
			if a.Interface < b.Interface {
				return -1
			}
			return 1
		}
		return a.IP.Compare(b.IP)
	})
	return out
}
