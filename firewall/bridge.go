package firewall

// Transparent (bridging) mode, as on an ASA in "firewall transparent":
// the unit is a bump in the wire inside one subnet. It learns which data
// interface each station MAC sits behind, forwards frames by destination
// MAC (flooding the unknown ones, broadcast and multicast), and passes
// IPv4 through the same connection table and policy as the routed mode,
// without NAT and without touching the TTL. ARP is bridged; other
// EtherTypes only when Config.AllowEtherTypes names them.
//
// The bridge table is replicated like the others (TableBridge), so that a
// standby that takes over forwards known stations at once instead of
// flooding. The standby blocks every data frame: two units bridging the
// same two segments would otherwise make a loop.

import (
	"bytes"
	"cmp"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/falab/falab/firewall/header"
)

const (
	bridgeShardBits = 4
	numBridgeShards = 1 << bridgeShardBits
	// maxBridgeEntries bounds the bridge table so that a MAC flood (a host
	// sending from random source MACs) cannot exhaust memory or the
	// replication stream; unlearnt stations are still reached by flooding.
	maxBridgeEntries         = 1 << 16
	bridgeSweepShardsPerCall = 4 // a full ageing pass every 4 Maintain calls
	// announceLimit bounds the stations AnnounceBridge announces, so that
	// a takeover does not send a burst the size of the whole table.
	announceLimit = 1024
	// bridgeConnRefresh is how often at most the active reports, by a
	// refresh record, that a station still carries connection traffic
	// (see noteConnStation).
	bridgeConnRefresh = 10 * time.Second
	// EtherTypeRARP is the EtherType of the reverse-ARP frames that
	// AnnounceBridge sends.
	EtherTypeRARP      uint16 = 0x8035
	rarpRequestReverse uint16 = 3
	minEthernetFrame   int    = 60 // without the FCS
)

// errBridgeFull is returned by ApplyChange when the bridge table is full.
var errBridgeFull = errors.New("bridge table full")

// macEntry is one station of the bridge table.
type macEntry struct {
	ifIdx   uint8        // guarded by the shard's mu
	hash    uint64       // guarded by the shard's mu: digest contribution
	updated atomic.Int64 // unix nanoseconds of the last frame from the station (on a standby: of the last record)
	// connSeen is when the station last sent a packet of a known
	// connection (on a standby: the time of the last refresh record), or
	// zero. AnnounceBridge announces such stations first.
	connSeen atomic.Int64
}

type bridgeShard struct {
	mu sync.RWMutex
	m  map[[6]byte]*macEntry // guarded by mu
	_  [64]byte              // keep neighbouring shards' locks off one cache line
}

// bridgeTable is the replicated bridge (MAC address) table, keyed by the
// station's MAC (a pointer-free array, cheap to hash and compare).
//
// Lock order: bridgeShard.mu -> Firewall.changeMu. Lookups and refreshes
// of an entry on the interface it already has take only the read lock;
// creation, moves and deletion take the write lock and emit a Change.
type bridgeTable struct {
	shards      [numBridgeShards]bridgeShard
	count       atomic.Int64
	perIf       [256]atomic.Int64 // stations learnt per interface, for Limits.MACsPerInterface
	activeSince atomic.Int64      // when the unit last became active: no entry ages out before activeSince + the timeout
	sweepCursor int               // guarded by Firewall.sweepMu
}

func (t *bridgeTable) init() {
	for i := range t.shards {
		t.shards[i].m = make(map[[6]byte]*macEntry)
	}
}

func (t *bridgeTable) shard(mac [6]byte) *bridgeShard {
	h := uint32(mac[2])<<24 | uint32(mac[3])<<16 | uint32(mac[4])<<8 | uint32(mac[5])
	h ^= uint32(mac[0])<<8 | uint32(mac[1])
	h *= 0x9e3779b1
	return &t.shards[h>>(32-bridgeShardBits)]
}

// validStationMAC reports whether mac can be a station's source address:
// neither a group (multicast or broadcast) address nor all zeros.
func validStationMAC(mac [6]byte) bool { return mac[0]&1 == 0 && mac != zeroMAC }

// compileTransparent validates the transparent-mode parts of cfg. It runs
// before the interfaces are compiled, so that they know the mode.
func (f *Firewall) compileTransparent(cfg Config) error {
	f.transparent = true
	if len(cfg.Routes) > 0 {
		return cfgErr("transparent mode has no routes, %d configured", len(cfg.Routes))
	}
	if len(cfg.NAT) > 0 {
		return cfgErr("transparent mode does no NAT, %d rules configured", len(cfg.NAT))
	}
	if m := cfg.ManagementAddr; m.IsValid() {
		if !m.Addr().Is4() || m.Bits() == 0 || m.Bits() > 30 {
			return cfgErr("management address %v must be an IPv4 address with a /1-/30 mask", m)
		}
		f.mgmtPrefix, f.mgmtAddr, f.hasMgmt = m, m.Addr().As4(), true
	}
	if s := cfg.ManagementStandbyAddr; s.IsValid() {
		if !f.hasMgmt || !s.Is4() || !cfg.ManagementAddr.Contains(s) || s == cfg.ManagementAddr.Addr() {
			return cfgErr("management standby address %v must be another address of the management network %v", s, cfg.ManagementAddr)
		}
		f.mgmtStandby, f.hasMgmtStandby = s.As4(), true
	}
	for _, et := range cfg.AllowEtherTypes {
		switch {
		case et < 0x0600:
			return cfgErr("allowed EtherType %#04x is an 802.3 length, not an EtherType", et)
		case et == header.EtherTypeIPv4 || et == header.EtherTypeARP, slices.Contains(f.allowEther, et):
			// Always bridged, or listed twice.
		default:
			f.allowEther = append(f.allowEther, et)
		}
	}
	return nil
}

// Transparent reports whether the firewall runs in transparent mode.
func (f *Firewall) Transparent() bool { return f.transparent }

// isUnitMAC reports whether mac is one of the pair's own interface MACs.
// Both units use the same active and standby MACs, so this covers the peer.
func (f *Firewall) isUnitMAC(mac [6]byte) bool {
	for _, it := range f.ifs {
		if mac == it.activeMAC || mac == it.standbyMAC {
			return true
		}
	}
	return false
}

// allowsEtherType reports whether frames of EtherType et other than IPv4
// and ARP are bridged (Config.AllowEtherTypes).
func (f *Firewall) allowsEtherType(et uint16) bool { return slices.Contains(f.allowEther, et) }

// bridgeOut queues frame unchanged on interface out, or on every other
// attached interface when out is -1.
func (w *worker) bridgeOut(in *iface, out int, frame []byte) {
	if out >= 0 {
		w.queue(out, frame, nil)
		return
	}
	for _, it := range w.f.ifs {
		if it != in && it.port != nil {
			w.queue(it.idx, frame, nil)
		}
	}
}

// flood queues frame unchanged on every interface w.permitted marks: the
// first packet of a bridged flow to an unknown MAC, where the policy let it.
func (w *worker) flood(frame []byte) {
	for _, it := range w.f.ifs {
		if w.permitted.has(it.idx) {
			w.queue(it.idx, frame, nil)
		}
	}
}

// lookupMAC returns the interface a station was learnt on.
func (f *Firewall) lookupMAC(mac [6]byte) (int, bool) {
	s := f.bridge.shard(mac)
	s.mu.RLock()
	e := s.m[mac]
	var i int
	if e != nil {
		i = int(e.ifIdx)
	}
	s.mu.RUnlock()
	return i, e != nil
}

// learnMAC records that a frame from mac arrived on ifIdx at now and
// returns the station's entry (nil if the table is full: the station is
// left to flooding). A station seen again on the same interface only
// refreshes its entry, under the read lock and without a change record.
// A new station, or one moving, on an interface that already has
// Limits.MACsPerInterface stations is not learnt and its frame is
// dropped (port security), so that a MAC flood on one segment cannot
// take the table from the stations of the others.
func (f *Firewall) learnMAC(mac [6]byte, ifIdx int, now int64) (*macEntry, DropReason) {
	s := f.bridge.shard(mac)
	s.mu.RLock()
	e := s.m[mac]
	if e != nil && int(e.ifIdx) == ifIdx {
		if e.updated.Load() != now {
			e.updated.Store(now)
		}
		s.mu.RUnlock()
		return e, dropNone
	}
	s.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e = s.m[mac]; e == nil || int(e.ifIdx) != ifIdx {
		if lim := f.limits.macsPerIf; lim > 0 && f.bridge.perIf[ifIdx].Load() >= int64(lim) {
			return nil, DropMACLimit
		}
	}
	_ = f.upsertMACLocked(s, mac, ifIdx, now) // a full table leaves the station to flooding
	return s.m[mac], dropNone
}

// noteConnStation records that station mac (entry e) sent a packet of a
// known connection at now. At most every bridgeConnRefresh it also sends
// a refresh record (an upsert of the unchanged entry, which leaves the
// digest as it is), so that the standby knows which stations carry
// connections and announces them first when it takes over (see
// applyBridge and AnnounceBridge). Per packet it costs one atomic load.
func (f *Firewall) noteConnStation(mac [6]byte, e *macEntry, now int64) {
	last := e.connSeen.Load()
	if now-last < int64(bridgeConnRefresh) || !e.connSeen.CompareAndSwap(last, now) {
		return
	}
	s := f.bridge.shard(mac)
	s.mu.RLock() // excludes moves and deletion, which take the write lock
	if s.m[mac] == e {
		f.commit(Change{Table: TableBridge, Op: OpUpsert, Bridge: BridgeRecord{
			MAC: mac, Interface: f.ifs[e.ifIdx].name, Updated: now}}, e.hash, e.hash)
	}
	s.mu.RUnlock()
}

// upsertMACLocked creates, moves or refreshes a bridge entry; only
// creation and a move are recorded (a refresh would flood the stream). It
// is the one way bridge entries come to exist or change, for the packet
// path and ApplyChange alike. Caller holds s.mu, the shard of mac.
func (f *Firewall) upsertMACLocked(s *bridgeShard, mac [6]byte, ifIdx int, updated int64) error {
	e := s.m[mac]
	if e != nil && int(e.ifIdx) == ifIdx {
		if updated > e.updated.Load() {
			e.updated.Store(updated)
		}
		return nil
	}
	var old uint64
	if e == nil {
		if f.bridge.count.Load() >= maxBridgeEntries {
			return errBridgeFull
		}
		e = &macEntry{}
		s.m[mac] = e
		f.bridge.count.Add(1)
	} else {
		old = e.hash
		f.bridge.perIf[e.ifIdx].Add(-1)
	}
	f.bridge.perIf[ifIdx].Add(1)
	e.ifIdx = uint8(ifIdx)
	e.updated.Store(updated)
	ch := Change{Table: TableBridge, Op: OpUpsert, Bridge: BridgeRecord{MAC: mac, Interface: f.ifs[ifIdx].name, Updated: updated}}
	e.hash = entryHash(ch)
	f.commit(ch, old, e.hash)
	return nil
}

// deleteMACLocked removes a bridge entry and records it. Caller holds
// s.mu, the shard of mac.
func (f *Firewall) deleteMACLocked(s *bridgeShard, mac [6]byte) {
	e := s.m[mac]
	if e == nil {
		return
	}
	delete(s.m, mac)
	f.bridge.count.Add(-1)
	f.bridge.perIf[e.ifIdx].Add(-1)
	f.commit(Change{Table: TableBridge, Op: OpDelete, Bridge: BridgeRecord{
		MAC: mac, Interface: f.ifs[e.ifIdx].name, Updated: e.updated.Load()}}, e.hash, 0)
}

// applyBridge applies a replicated bridge change.
func (f *Firewall) applyBridge(c Change) error {
	r := c.Bridge
	s := f.bridge.shard(r.MAC)
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Op == OpDelete {
		f.deleteMACLocked(s, r.MAC)
		return nil
	}
	if !validStationMAC(r.MAC) {
		return errors.New("apply bridge entry: " + net.HardwareAddr(r.MAC[:]).String() + " is not a station MAC")
	}
	i, ok := f.byName[r.Interface]
	if !ok {
		return cfgErr("bridge entry names unknown interface %q", r.Interface)
	}
	if e := s.m[r.MAC]; e != nil && int(e.ifIdx) == i {
		// The active records an unchanged entry only to say that the
		// station carries connection traffic (noteConnStation).
		if r.Updated > e.connSeen.Load() {
			e.connSeen.Store(r.Updated)
		}
	}
	if err := f.upsertMACLocked(s, r.MAC, i, r.Updated); err != nil {
		return errors.New("apply bridge entry " + net.HardwareAddr(r.MAC[:]).String() + ": " + err.Error())
	}
	return nil
}

// sweepBridge ages out the entries of n shards from the sweep cursor.
func (f *Firewall) sweepBridge(n int, now int64) {
	f.sweepMu.Lock()
	defer f.sweepMu.Unlock()
	limit := int64(f.timeouts.MACAddress)
	for range n {
		s := &f.bridge.shards[f.bridge.sweepCursor]
		f.bridge.sweepCursor = (f.bridge.sweepCursor + 1) % numBridgeShards
		s.mu.Lock()
		since := f.bridge.activeSince.Load()
		for mac, e := range s.m {
			if now-max(e.updated.Load(), since) > limit {
				f.deleteMACLocked(s, mac)
			}
		}
		s.mu.Unlock()
	}
}

// touchAllBridge makes every station fresh, so that nothing ages out the
// moment a standby takes over (its entries carry the time of their last
// record, not of the last frame seen). It leaves the entries' times alone,
// so that AnnounceBridge can still order them by recency.
func (f *Firewall) touchAllBridge(now int64) { f.bridge.activeSince.Store(now) }

// snapshotBridgeChunk emits every entry of one shard (cursor) while
// holding its lock; see SnapshotChunk.
func (f *Firewall) snapshotBridgeChunk(cursor uint64, emit func(Change)) (uint64, bool) {
	if cursor >= numBridgeShards {
		return cursor, true
	}
	s := &f.bridge.shards[cursor]
	s.mu.RLock()
	for mac, e := range s.m {
		ch := Change{Table: TableBridge, Op: OpUpsert, Bridge: f.bridgeRecord(mac, e)}
		if f.isReplicated(ch) {
			emit(ch)
			if cs := e.connSeen.Load(); cs != 0 {
				ch.Bridge.Updated = cs // the refresh that says "carries connections"
				emit(ch)
			}
		}
	}
	s.mu.RUnlock()
	return cursor + 1, cursor+1 >= numBridgeShards
}

// bridgeRecord returns an entry's replicated form; caller holds its shard lock.
func (f *Firewall) bridgeRecord(mac [6]byte, e *macEntry) BridgeRecord {
	return BridgeRecord{MAC: mac, Interface: f.ifs[e.ifIdx].name, Updated: e.updated.Load()}
}

// bridgeRecords copies out up to limit entries (all for limit < 0).
func (f *Firewall) bridgeRecords(limit int) []BridgeRecord {
	var out []BridgeRecord
	for i := range f.bridge.shards {
		s := &f.bridge.shards[i]
		s.mu.RLock()
		for mac, e := range s.m {
			if limit >= 0 && len(out) >= limit {
				break
			}
			out = append(out, f.bridgeRecord(mac, e))
		}
		s.mu.RUnlock()
	}
	return out
}

// resetBridge empties the bridge table through its delete method.
func (f *Firewall) resetBridge() {
	for i := range f.bridge.shards {
		s := &f.bridge.shards[i]
		s.mu.Lock()
		for mac := range s.m {
			f.deleteMACLocked(s, mac)
		}
		s.mu.Unlock()
	}
}

// AnnounceBridge makes the switches move the learnt stations to this
// unit's ports after it takes over in transparent mode, and returns how
// many frames it sent.
//
// The switches on each segment learnt every station behind the firewall
// on the old active's port; until a frame from that station arrives on
// the new active's port they keep sending there, into a standby that
// blocks everything. So for each bridge entry (at most 1024, to bound the
// burst: see announceOrder for which) the active sends, on every other
// attached data interface, one broadcast RARP request (EtherType 0x8035,
// what hypervisors send after a live migration for the same purpose) with
// the station's MAC as the Ethernet source and as both hardware addresses
// and no protocol addresses. Every switch on that segment then moves the
// station to the port towards the new active; hosts ignore RARP. The
// stations' own segment needs nothing: they never moved there.
//
// SendGratuitousARP calls it in transparent mode. It sends nothing while
// standby (the standby would pull traffic into its block) or in routed mode.
func (f *Firewall) AnnounceBridge() int {
	if !f.transparent || !f.active.Load() {
		return 0
	}
	w := f.workers.Get().(*worker)
	w.now = f.now()
	recs := f.announceOrder(announceLimit, w.now)
	sent := 0
	for _, r := range recs {
		from, ok := f.byName[r.Interface]
		if !ok {
			continue
		}
		for _, it := range f.ifs {
			if it.idx == from || it.port == nil {
				continue
			}
			b := f.getBuf()
			w.queue(it.idx, buildRARP(b, r.MAC), b)
			sent++
			if len(w.held) >= readBatchSize {
				w.flush()
			}
		}
	}
	w.flush()
	f.workers.Put(w)
	return sent
}

// announceOrder returns up to limit bridge entries in the order
// AnnounceBridge announces them: first the stations that carried
// connection traffic within the MAC address timeout, most recent first,
// then the others by the time of their last frame (on a unit that just
// took over: of their last record), most recent first. After a MAC flood
// the table is mostly junk that never carried a connection; announcing
// in table order sent junk and left the real stations blacked out until
// they spoke again.
func (f *Firewall) announceOrder(limit int, now int64) []BridgeRecord {
	type cand struct {
		rec  BridgeRecord
		conn int64 // connSeen if recent enough to count, else 0
	}
	live := now - int64(f.timeouts.MACAddress)
	var all []cand
	for i := range f.bridge.shards {
		s := &f.bridge.shards[i]
		s.mu.RLock()
		for mac, e := range s.m {
			c := cand{rec: f.bridgeRecord(mac, e)}
			if cs := e.connSeen.Load(); cs != 0 && cs >= live {
				c.conn = cs
			}
			all = append(all, c)
		}
		s.mu.RUnlock()
	}
	slices.SortFunc(all, func(a, b cand) int {
		if a.conn != b.conn {
			return cmp.Compare(b.conn, a.conn) // with connections first, most recent first
		}
		if a.rec.Updated != b.rec.Updated {
			return cmp.Compare(b.rec.Updated, a.rec.Updated)
		}
		return bytes.Compare(a.rec.MAC[:], b.rec.MAC[:]) // deterministic
	})
	out := make([]BridgeRecord, 0, min(limit, len(all)))
	for _, c := range all[:min(limit, len(all))] {
		out = append(out, c.rec)
	}
	return out
}

// buildRARP fills b with a broadcast RARP request announcing mac.
func buildRARP(b *packetBuf, mac [6]byte) []byte {
	fr := b.data[:minEthernetFrame]
	clear(fr)
	e := header.Ethernet(fr)
	e.SetDestination(broadcastMAC[:])
	e.SetSource(mac[:])
	e.SetEtherType(EtherTypeRARP)
	a := header.ARP(e.Payload())
	a.SetIPv4OverEthernet()
	a.SetOp(rarpRequestReverse)
	a.SetSender(mac[:], [4]byte{})
	a.SetTarget(mac[:], [4]byte{})
	b.n = len(fr)
	return fr
}

// sendManagementGARP queues, per attached interface, a gratuitous ARP for
// the active management address from the interface's active MAC.
func (w *worker) sendManagementGARP() {
	f := w.f
	if !f.hasMgmt {
		return
	}
	for _, it := range f.ifs {
		if it.port == nil {
			continue
		}
		b := f.getBuf()
		fr := buildARP(b, header.ARPRequest, broadcastMAC[:], it.activeMAC[:], f.mgmtAddr, zeroMAC[:], f.mgmtAddr)
		w.queue(it.idx, fr, b)
	}
}

// BridgeInfo describes one bridge table entry for the API.
type BridgeInfo struct {
	MAC       string        `json:"mac"`
	Interface string        `json:"interface"`
	Age       time.Duration `json:"age_ns"` // since the last frame from the station
}

// BridgeEntries returns the bridge table sorted by MAC.
func (f *Firewall) BridgeEntries() []BridgeInfo {
	now := f.now()
	recs := f.bridgeRecords(-1)
	slices.SortFunc(recs, func(a, b BridgeRecord) int { return bytes.Compare(a.MAC[:], b.MAC[:]) })
	out := make([]BridgeInfo, 0, len(recs))
	for _, r := range recs {
		out = append(out, BridgeInfo{MAC: net.HardwareAddr(r.MAC[:]).String(), Interface: r.Interface,
			Age: time.Duration(now - r.Updated)})
	}
	return out
}

// BridgeCount returns the number of bridge table entries.
func (f *Firewall) BridgeCount() int { return int(f.bridge.count.Load()) }

// ManagementAddress returns the management address with its mask in
// transparent mode (the zero Prefix if none).
func (f *Firewall) ManagementAddress() netip.Prefix { return f.mgmtPrefix }
