package firewall

import (
	"math/bits"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/falab/falab/firewall/header"
)

// xlateKey identifies an xlate: a real address (and port, for PAT) as
// translated towards one mapped interface.
type xlateKey struct {
	kind     NATKind
	proto    uint8
	real     [4]byte
	realPort uint16
	mappedIf uint8
}

// xlate is one NAT translation slot. Fields are guarded by the lock of
// the xlateShard that holds it (the shard of key.real). It is 48 bytes (a
// size class): its digest contribution is not kept but recomputed from
// its record (hash), since an xlate changes about twice in its life.
type xlate struct {
	key        xlateKey
	realIf     uint8
	mapped     [4]byte
	mappedPort uint16
	refs       int32 // connections using it
	parked     int32 // of refs, connections in TIME_WAIT: they keep the port, not the host's quota
	created    int64
	idleSince  int64 // when refs last fell to zero
}

// hash is x's digest contribution.
func (x *xlate) hash(f *Firewall) uint64 {
	return entryHash(Change{Table: TableXlate, Op: OpUpsert, Xlate: x.record(f)})
}

func (x *xlate) record(f *Firewall) XlateRecord {
	return XlateRecord{
		Kind: x.key.kind, Proto: x.key.proto,
		Real: x.key.real, RealPort: x.key.realPort,
		Mapped: x.mapped, MappedPort: x.mappedPort,
		RealInterface: f.ifs[x.realIf].name, MappedInterface: f.ifs[x.key.mappedIf].name,
		Created: x.created,
	}
}

const (
	xlateShardBits = 6
	numXlateShards = 1 << xlateShardBits
)

// xlateTable holds static and PAT xlates. It is touched only when a
// connection is created or deleted, never per packet (the connection's
// tuples carry the mapping). It is sharded by real host address, so that
// new connections of different hosts allocate without sharing a lock and
// a host's quota of PAT xlates (per-host) is counted inside one shard;
// the mapped port space of each (protocol, mapped address) is a portPool
// with its own small lock, held only to pick or free one port. Every
// operation is O(1), a PAT allocation included (see portPool), so that a
// full pool costs no more than an empty one.
//
// Lock order: xlateShard.mu -> portPool.mu, and xlateShard.mu ->
// Firewall.changeMu (see commit); one shard at a time; never held
// together with connection shard locks.
type xlateTable struct {
	shards [numXlateShards]xlateShard
	pools  sync.Map      // poolKey -> *portPool, never deleted (bounded by the mapped addresses in use)
	count  atomic.Int64  // xlates in all shards
	probes atomic.Uint64 // bitmap words looked at by allocations (a test hook)
	sweep  atomic.Uint32 // next shard for sweepXlates
}

// xlateShard is one part of the xlate table: the xlates of the real hosts
// that hash to it.
type xlateShard struct {
	mu      sync.Mutex
	idx     xlateIndex        // guarded by mu
	perHost map[[4]byte]int32 // guarded by mu: PAT xlates in use by connections, per real host, for the quota
	cursor  int               // guarded by mu: sweep position, a slot of idx
	_       [64]byte          // keep neighbouring shards' locks off one cache line
}

func (t *xlateTable) init() {
	for i := range t.shards {
		t.shards[i].perHost = make(map[[4]byte]int32)
	}
}

// shardOf returns the shard of real host a.
func (t *xlateTable) shardOf(a [4]byte) *xlateShard {
	h := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) * 0x9e3779b1
	return &t.shards[h>>(32-xlateShardBits)]
}

// pool returns the port pool of k, creating it.
func (t *xlateTable) pool(k poolKey) *portPool {
	if p, ok := t.pools.Load(k); ok {
		return p.(*portPool)
	}
	p, _ := t.pools.LoadOrStore(k, new(portPool))
	return p.(*portPool)
}

// poolKey names the port space of one mapped address for one protocol.
type poolKey struct {
	proto  uint8
	mapped [4]byte
}

const (
	poolWords        = 1 << 16 / 64           // bitmap words for the 65536 ports
	poolSummaryWords = poolWords / 64         // words of the full-word summary
	maxPoolProbes    = 2 + 2*poolSummaryWords // bound on the words one search looks at
)

// portPool is the set of mapped ports in use for one poolKey: a bitmap of
// ports and above it a bitmap of the bitmap's full words, so that finding
// a free port looks at no more than maxPoolProbes words whatever the
// pool's size and occupancy (the scan it replaced looked at every port of
// a full pool, 64512 map lookups per new flow under the table lock). The
// cursor rotates through the pool so that a port just released is not
// handed out again at once. owner says which xlate holds each port, in
// blocks of 64 ports made on first use, so that a record applied over a
// port that another xlate holds does not free it when it goes.
type portPool struct {
	mu    sync.Mutex
	used  [poolWords]uint64        // guarded by mu: bit p: port p is mapped
	full  [poolSummaryWords]uint64 // guarded by mu: bit w: used[w] has no free port
	owner [poolWords]*[64]*xlate   // guarded by mu
	n     int                      // guarded by mu: ports in use
	next  uint16                   // guarded by mu: where the next search starts
}

func (p *portPool) isUsed(port uint16) bool { return p.used[port>>6]&(1<<(port&63)) != 0 }

func (p *portPool) set(port uint16) {
	w := port >> 6
	if p.used[w]&(1<<(port&63)) != 0 {
		return
	}
	p.used[w] |= 1 << (port & 63)
	p.n++
	if p.used[w] == ^uint64(0) {
		p.full[w>>6] |= 1 << (w & 63)
	}
}

func (p *portPool) clear(port uint16) {
	w := port >> 6
	if p.used[w]&(1<<(port&63)) == 0 {
		return
	}
	p.used[w] &^= 1 << (port & 63)
	p.n--
	p.full[w>>6] &^= 1 << (w & 63)
}

// findFree returns the lowest free port in [from, to], counting the words
// it looks at in *probes.
func (p *portPool) findFree(from, to uint16, probes *uint64) (uint16, bool) {
	if from > to {
		return 0, false
	}
	fw, tw := int(from>>6), int(to>>6)
	free := func(w int) uint64 {
		*probes++
		m := ^p.used[w]
		if w == fw {
			m &= ^uint64(0) << (from & 63)
		}
		if w == tw {
			m &= ^uint64(0) >> (63 - to&63)
		}
		return m
	}
	if m := free(fw); m != 0 {
		return uint16(fw<<6 + bits.TrailingZeros64(m)), true
	}
	for w := fw + 1; w <= tw; {
		*probes++
		s := ^p.full[w>>6] >> (w & 63) // words from w on in this summary word that have a free port
		if s == 0 {
			w = (w>>6 + 1) << 6
			continue
		}
		w += bits.TrailingZeros64(s)
		if w > tw {
			break
		}
		// A word that is not full has a free port; only the last, cut
		// short at to, may have none in range.
		if m := free(w); m != 0 {
			return uint16(w<<6 + bits.TrailingZeros64(m)), true
		}
		break
	}
	return 0, false
}

// markMapped records that x holds its mapped port. Caller holds x's shard
// lock.
func (t *xlateTable) markMapped(x *xlate) {
	p := t.pool(poolKey{proto: x.key.proto, mapped: x.mapped})
	p.mu.Lock()
	p.set(x.mappedPort)
	blk := &p.owner[x.mappedPort>>6]
	if *blk == nil {
		*blk = new([64]*xlate)
	}
	(*blk)[x.mappedPort&63] = x
	p.mu.Unlock()
}

// unmarkMapped frees x's mapped port if x holds it. Caller holds x's shard
// lock.
func (t *xlateTable) unmarkMapped(x *xlate) {
	p := t.pool(poolKey{proto: x.key.proto, mapped: x.mapped})
	p.mu.Lock()
	if blk := p.owner[x.mappedPort>>6]; blk != nil && blk[x.mappedPort&63] == x {
		blk[x.mappedPort&63] = nil
		p.clear(x.mappedPort)
	}
	p.mu.Unlock()
}

// reserve picks a free port of p for a new PAT xlate of realPort under
// rule and marks it used (markMapped then names its owner). The real port
// is kept when it is in the rule's range and free; otherwise the pool is
// searched from where the last allocation stopped.
func (t *xlateTable) reserve(p *portPool, rule *patRule, realPort uint16) (uint16, bool) {
	var probes uint64
	p.mu.Lock()
	defer p.mu.Unlock()
	port, found := realPort, false
	if port >= rule.low && port <= rule.high && !p.isUsed(port) {
		found = true
	} else {
		start := p.next
		if start < rule.low || start > rule.high {
			start = rule.low
		}
		port, found = p.findFree(start, rule.high, &probes)
		if !found && start > rule.low {
			port, found = p.findFree(rule.low, start-1, &probes)
		}
		if found {
			p.next = port + 1 // past high it is clamped back to low next time
		}
		t.probes.Add(probes)
	}
	if found {
		p.set(port)
	}
	return port, found
}

// xlateRef names the PAT xlate a connection uses.
type xlateRef struct {
	key        xlateKey
	mapped     [4]byte
	mappedPort uint16
	realIf     uint8
}

// patXlateOf returns the PAT xlate c's source translation belongs to, if
// its source was translated by PAT (not by a static rule, and not at all).
func (f *Firewall) patXlateOf(c *conn) (xlateRef, bool) {
	realPort, mappedPort := c.orig.SrcPort, c.reply.DstPort
	if c.orig.Proto == header.ProtocolICMP {
		mappedPort = c.reply.SrcPort
	}
	if c.orig.Src == c.reply.Dst && realPort == mappedPort {
		return xlateRef{}, false
	}
	for i := range f.statics {
		s := &f.statics[i]
		if s.real == c.orig.Src && s.mapped == c.reply.Dst && s.mappedIf == int(c.outIf) {
			return xlateRef{}, false
		}
	}
	return xlateRef{
		key:    xlateKey{kind: NATDynamicPAT, proto: c.orig.Proto, real: c.orig.Src, realPort: realPort, mappedIf: c.outIf},
		mapped: c.reply.Dst, mappedPort: mappedPort, realIf: c.inIf,
	}, true
}

// upsertXlateLocked creates or updates the xlate of rec and records the
// change. It is the one way xlates come to exist or change. Caller holds
// s, the shard of rec.Real.
func (f *Firewall) upsertXlateLocked(s *xlateShard, rec XlateRecord) (*xlate, error) {
	ri, ok1 := f.byName[rec.RealInterface]
	mi, ok2 := f.byName[rec.MappedInterface]
	if !ok1 || !ok2 {
		return nil, cfgErr("xlate names unknown interface %q or %q", rec.RealInterface, rec.MappedInterface)
	}
	t := &f.xlates
	k := xlateKey{kind: rec.Kind, proto: rec.Proto, real: rec.Real, realPort: rec.RealPort, mappedIf: uint8(mi)}
	x := s.idx.get(k)
	var oldHash uint64
	if x == nil {
		x = &xlate{key: k, created: rec.Created, idleSince: f.now()}
		s.idx.put(x)
		t.count.Add(1)
	} else {
		oldHash = x.hash(f)
		if x.key.kind == NATDynamicPAT {
			t.unmarkMapped(x)
		}
	}
	x.mapped, x.mappedPort, x.realIf = rec.Mapped, rec.MappedPort, uint8(ri)
	if k.kind == NATDynamicPAT {
		t.markMapped(x) // an applied record takes its port like a local allocation
	}
	ch := Change{Table: TableXlate, Op: OpUpsert, Xlate: x.record(f)}
	f.commit(ch, oldHash, entryHash(ch))
	return x, nil
}

// deleteXlateLocked removes x and records the deletion. It is the one way
// xlates go away. Caller holds s, x's shard.
func (f *Firewall) deleteXlateLocked(s *xlateShard, x *xlate) {
	t := &f.xlates
	if !s.idx.remove(x) {
		return
	}
	if x.key.kind == NATDynamicPAT {
		t.unmarkMapped(x)
		if x.live() {
			s.unhostLocked(x)
		}
	}
	t.count.Add(-1)
	ch := Change{Table: TableXlate, Op: OpDelete, Xlate: x.record(f)}
	f.commit(ch, entryHash(ch), 0)
}

// allocatePAT returns the PAT mapping of (proto, real, realPort) towards
// rule's mapped interface, creating the xlate and choosing a port if there
// is none (see reserve), and takes a reference on it for the caller. A
// host that holds its quota of PAT xlates gets DropNATHostQuota, a full
// pool DropNATExhausted; both cost O(1).
func (f *Firewall) allocatePAT(rule *patRule, proto uint8, real [4]byte, realPort uint16) (xlateRef, DropReason) {
	t := &f.xlates
	s := t.shardOf(real)
	s.mu.Lock()
	defer s.mu.Unlock()
	k := xlateKey{kind: NATDynamicPAT, proto: proto, real: real, realPort: realPort, mappedIf: uint8(rule.mappedIf)}
	if x := s.idx.get(k); x != nil {
		s.refLocked(x)
		return xlateRef{key: k, mapped: x.mapped, mappedPort: x.mappedPort, realIf: x.realIf}, dropNone
	}
	if q := f.limits.patPerHost; q > 0 && int(s.perHost[real]) >= q {
		return xlateRef{}, DropNATHostQuota
	}
	pool := t.pool(poolKey{proto: proto, mapped: rule.mapped})
	port, found := t.reserve(pool, rule, realPort)
	if !found {
		return xlateRef{}, DropNATExhausted
	}
	x, err := f.upsertXlateLocked(s, XlateRecord{
		Kind: NATDynamicPAT, Proto: proto, Real: real, RealPort: realPort,
		Mapped: rule.mapped, MappedPort: port,
		RealInterface: f.ifs[rule.realIf].name, MappedInterface: f.ifs[rule.mappedIf].name,
		Created: f.now(),
	})
	if err != nil {
		pool.mu.Lock()
		pool.clear(port)
		pool.mu.Unlock()
		return xlateRef{}, DropNATExhausted
	}
	s.refLocked(x)
	return xlateRef{key: k, mapped: x.mapped, mappedPort: x.mappedPort, realIf: x.realIf}, dropNone
}

// acquireXlate takes a reference on r's xlate for c, creating it when a
// replicated connection arrives before its xlate.
func (f *Firewall) acquireXlate(r xlateRef, c *conn) {
	s := f.xlates.shardOf(r.key.real)
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.idx.get(r.key)
	if x == nil {
		var err error
		x, err = f.upsertXlateLocked(s, XlateRecord{
			Kind: NATDynamicPAT, Proto: r.key.proto, Real: r.key.real, RealPort: r.key.realPort,
			Mapped: r.mapped, MappedPort: r.mappedPort,
			RealInterface: f.ifs[r.realIf].name, MappedInterface: f.ifs[r.key.mappedIf].name,
			Created: c.created,
		})
		if err != nil {
			return
		}
	}
	s.refLocked(x)
}

// live reports whether a connection not in TIME_WAIT uses x: what the
// per-host quota counts.
func (x *xlate) live() bool { return x.refs > x.parked }

// releaseXlate drops a connection's reference (parked: the connection had
// parked it in TIME_WAIT); the xlate then idles out after
// Timeouts.PATXlate.
func (f *Firewall) releaseXlate(r xlateRef, parked bool) {
	s := f.xlates.shardOf(r.key.real)
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.idx.get(r.key)
	if x == nil || x.refs == 0 {
		return
	}
	wasLive := x.live()
	x.refs--
	if parked && x.parked > 0 {
		x.parked--
	}
	if wasLive && !x.live() && x.key.kind == NATDynamicPAT {
		s.unhostLocked(x)
	}
	if x.refs == 0 {
		x.idleSince = f.now()
	}
}

// parkXlate marks a connection's reference as one in TIME_WAIT, where the
// connection only waits for a last ACK or a retransmitted FIN: it keeps
// the xlate (and so its port) until it is deleted, but no longer counts
// against its host's quota. Counted, a client that closes its connections
// the ordinary way (the FIN exchange, not a reset) held a port a
// connection for the whole TIME_WAIT and was capped at quota/time-wait new
// connections a second (4096/30 s: 136 a second). It reports whether it
// parked one: not when the xlate is gone (deleted while referenced).
func (f *Firewall) parkXlate(r xlateRef) bool {
	s := f.xlates.shardOf(r.key.real)
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.idx.get(r.key)
	if x == nil || !x.live() {
		return false
	}
	x.parked++
	if !x.live() && x.key.kind == NATDynamicPAT {
		s.unhostLocked(x)
	}
	return true
}

// refLocked takes a connection's reference on x. The per-host quota counts
// the PAT xlates a host's connections use, not the idle ones waiting out
// timeout pat-xlate: those hold their port for the host's next connection
// from the same source port, and counting them capped a busy client at
// quota/pat-xlate new connections a second (4096 in 30 s; `falab bench`
// fell from 13k to 254 connections a second). Caller holds s.mu.
func (s *xlateShard) refLocked(x *xlate) {
	if !x.live() && x.key.kind == NATDynamicPAT {
		s.perHost[x.key.real]++
	}
	x.refs++
}

// unhostLocked takes x off its host's count (its last reference went, or
// it is deleted while referenced). Caller holds s.mu.
func (s *xlateShard) unhostLocked(x *xlate) {
	if s.perHost[x.key.real]--; s.perHost[x.key.real] <= 0 {
		delete(s.perHost, x.key.real)
	}
}

// sweepXlates looks at up to budget xlates, shard after shard from where
// the previous call stopped and in each shard from its own cursor, and
// deletes the idle PAT xlates among them; one call visits each shard at
// most once.
func (f *Firewall) sweepXlates(budget int, now int64) {
	t := &f.xlates
	for range numXlateShards {
		if budget <= 0 {
			return
		}
		i := t.sweep.Load()
		t.sweep.Store((i + 1) % numXlateShards) // Maintain's callers do not overlap; a lost update costs one shard's turn
		budget = f.sweepXlateShard(&t.shards[i], budget, now)
	}
}

// sweepXlateShard sweeps s for up to budget entries and returns the budget
// left.
func (f *Firewall) sweepXlateShard(s *xlateShard, budget int, now int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	slots := s.idx.slots // deleting leaves every other entry in its slot
	for n := len(slots); n > 0 && budget > 0; n-- {
		if s.cursor >= len(slots) {
			s.cursor = 0
		}
		x := slots[s.cursor]
		s.cursor++
		if x == nil || x == xlateTombstone {
			continue
		}
		budget--
		if x.key.kind == NATDynamicPAT && x.refs == 0 && now-x.idleSince > int64(f.timeouts.PATXlate) {
			f.deleteXlateLocked(s, x)
		}
	}
	return budget
}

func (f *Firewall) touchAllXlates(now int64) {
	for i := range f.xlates.shards {
		s := &f.xlates.shards[i]
		s.mu.Lock()
		for x := range s.idx.all() {
			if x.refs == 0 {
				x.idleSince = now
			}
		}
		s.mu.Unlock()
	}
}

// XlateInfo describes one xlate for the API.
type XlateInfo struct {
	Kind            string         `json:"kind"`
	Protocol        string         `json:"protocol,omitempty"`
	RealInterface   string         `json:"real_interface"`
	MappedInterface string         `json:"mapped_interface"`
	Real            netip.AddrPort `json:"real"`
	Mapped          netip.AddrPort `json:"mapped"`
	Conns           int            `json:"conns"`
	Age             time.Duration  `json:"age_ns"`
}

// Xlates returns up to limit xlates from offset, and the total count, in
// table order (shard by shard, slot by slot), which is stable while the
// table does not change. Paging skips whole shards by their counts; within
// a shard it walks the slots.
func (f *Firewall) Xlates(offset, limit int) ([]XlateInfo, int) {
	now := f.now()
	out := make([]XlateInfo, 0, max(0, min(limit, 1024)))
	total := 0
	for i := range f.xlates.shards {
		s := &f.xlates.shards[i]
		s.mu.Lock()
		n := s.idx.live
		if offset >= n {
			offset -= n
		} else {
			for x := range s.idx.all() {
				if len(out) >= limit {
					break
				}
				if offset > 0 {
					offset--
					continue
				}
				out = append(out, f.xlateInfo(x, now))
			}
			offset = 0
		}
		total += n
		s.mu.Unlock()
	}
	return out, total
}

func (f *Firewall) xlateInfo(x *xlate, now int64) XlateInfo {
	in := XlateInfo{
		Kind: x.key.kind.String(), RealInterface: f.ifs[x.realIf].name, MappedInterface: f.ifs[x.key.mappedIf].name,
		Real:   netip.AddrPortFrom(netip.AddrFrom4(x.key.real), x.key.realPort),
		Mapped: netip.AddrPortFrom(netip.AddrFrom4(x.mapped), x.mappedPort),
		Conns:  int(x.refs), Age: time.Duration(now - x.created),
	}
	if x.key.kind == NATDynamicPAT {
		in.Protocol = protoName(x.key.proto)
	}
	return in
}
