package firewall

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/falab/falab/firewall/header"
)

const (
	arpQueueLen      = 16          // frames held per unresolved next hop
	arpRetryInterval = time.Second // between ARP requests for one next hop
	arpMaxRequests   = 3           // requests before queued frames are dropped
	arpFrameLen      = header.EthernetLen + header.ARPLen
)

var zeroMAC [6]byte
var broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

type arpKey struct {
	ifIdx uint8
	ip    [4]byte
}

// arpEntry fields are guarded by arpTable.mu.
type arpEntry struct {
	mac     [6]byte
	updated int64
	hash    uint64
}

// pendingQueue holds frames waiting for a next hop's MAC; guarded by arpTable.mu.
type pendingQueue struct {
	bufs        []*packetBuf
	requests    int
	lastRequest int64
}

// arpTable is the replicated ARP table, the standby's own neighbours and
// the queues of frames awaiting resolution.
//
// Lock order: arpTable.mu -> Firewall.changeMu.
type arpTable struct {
	mu      sync.RWMutex
	m       map[arpKey]*arpEntry     // guarded by mu: replicated entries
	local   map[arpKey][6]byte       // guarded by mu: learnt while standby, never replicated
	pending map[arpKey]*pendingQueue // guarded by mu
}

func (t *arpTable) init() {
	t.m = make(map[arpKey]*arpEntry)
	t.local = make(map[arpKey][6]byte)
	t.pending = make(map[arpKey]*pendingQueue)
}

// resolve returns the MAC of ip on interface ifIdx.
func (f *Firewall) resolve(ifIdx int, ip [4]byte) ([6]byte, bool) {
	k := arpKey{uint8(ifIdx), ip}
	t := &f.arp
	t.mu.RLock()
	defer t.mu.RUnlock()
	if e := t.m[k]; e != nil {
		return e.mac, true
	}
	if mac, ok := t.local[k]; ok {
		return mac, true
	}
	return zeroMAC, false
}

// upsertARPLocked creates, moves or refreshes an ARP entry; only creation
// and a MAC change are recorded (a refresh would flood the stream). It is
// the one way ARP entries come to exist or change. Caller holds t.mu.
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
	active := f.active.Load()
	spa, tpa := a.SenderProtocolAddress(), a.TargetProtocolAddress()
	sha := [6]byte(a.SenderHardwareAddress())
	op := a.Op()
	if op != header.ARPRequest && op != header.ARPReply {
		return DropBadARP
	}
	if header.IsMulticast(sha[:]) || sha == zeroMAC {
		return DropBadARP
	}
	ours := tpa == in.addr
	if !active {
		ours = in.hasStandby && tpa == in.standby
	}
	proxied := active && slices.Contains(in.proxyARP, tpa)

	// Learn the sender if it is a neighbour on this network and not one of
	// our own addresses (a duplicate or the peer unit).
	if spa != in.addr && !(in.hasStandby && spa == in.standby) && u32(spa)&in.mask == in.netAddr && spa != [4]byte{} {
		k := arpKey{uint8(in.idx), spa}
		f.arp.mu.Lock()
		_, known := f.arp.m[k]
		_, pending := f.arp.pending[k]
		learnt := false
		if active {
			if known || pending || ours || proxied {
				_ = f.upsertARPLocked(ARPRecord{Interface: in.name, IP: spa, MAC: sha, Updated: w.now})
				learnt = true
			}
		} else if ours || pending {
			f.arp.local[k] = sha
			learnt = true
		}
		var q *pendingQueue
		if learnt && pending {
			q = f.arp.pending[k]
			delete(f.arp.pending, k)
		}
		f.arp.mu.Unlock()
		if q != nil {
			for _, b := range q.bufs {
				fr := b.data[:b.n]
				e := header.Ethernet(fr)
				e.SetDestination(sha[:])
				e.SetSource(f.ourMAC(in)[:])
				w.queue(in.idx, fr, b)
			}
		}
	}

	if op == header.ARPRequest && (ours || proxied) {
		mac := f.ourMAC(in)
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

// sendARPRequest queues a request for ip on interface in.
func (w *worker) sendARPRequest(in *iface, ip [4]byte) {
	src, ok := w.f.ourIP(in)
	if !ok {
		return
	}
	b := w.f.getBuf()
	fr := buildARP(b, header.ARPRequest, broadcastMAC[:], w.f.ourMAC(in)[:], src, zeroMAC[:], ip)
	w.queue(in.idx, fr, b)
}

// enqueueUnresolved holds frame until nextHop on out answers ARP, sending
// the first request. frame is copied unless it already lives in buf.
func (w *worker) enqueueUnresolved(out *iface, nextHop [4]byte, frame []byte, buf *packetBuf) DropReason {
	f := w.f
	k := arpKey{uint8(out.idx), nextHop}
	f.arp.mu.Lock()
	q := f.arp.pending[k]
	first := q == nil
	if first {
		q = &pendingQueue{requests: 1, lastRequest: w.now}
		f.arp.pending[k] = q
	}
	if len(q.bufs) >= arpQueueLen {
		f.arp.mu.Unlock()
		if buf != nil {
			f.putBuf(buf)
		}
		return DropNoAdjacency
	}
	if buf == nil {
		buf = f.getBuf()
		buf.n = copy(buf.data[:], frame)
	}
	q.bufs = append(q.bufs, buf)
	f.arp.mu.Unlock()
	if first {
		w.sendARPRequest(out, nextHop)
	}
	return dropNone
}

// maintainARP retries requests for unresolved next hops, drops the frames
// of those that never answer and, while active, ages entries out.
func (w *worker) maintainARP(active bool) {
	f := w.f
	type retry struct {
		in *iface
		ip [4]byte
	}
	var retries []retry
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
			delete(f.arp.pending, k)
			continue
		}
		q.requests++
		q.lastRequest = w.now
		retries = append(retries, retry{f.ifs[k.ifIdx], k.ip})
	}
	if active {
		for k, e := range f.arp.m {
			if w.now-e.updated > int64(f.timeouts.ARP) {
				f.deleteARPLocked(k)
			}
		}
	}
	f.arp.mu.Unlock()
	if dropped > 0 {
		f.drops[DropARPTimeout].Add(uint64(dropped))
	}
	for _, r := range retries {
		w.sendARPRequest(r.in, r.ip)
	}
}

func (f *Firewall) touchAllARP(now int64) {
	f.arp.mu.Lock()
	for _, e := range f.arp.m {
		e.updated = now
	}
	f.arp.mu.Unlock()
}

// dropAllPending discards every queued frame (on leaving the active role).
func (f *Firewall) dropAllPending() {
	f.arp.mu.Lock()
	for k, q := range f.arp.pending {
		for _, b := range q.bufs {
			f.putBuf(b)
		}
		delete(f.arp.pending, k)
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
