package firewall

import (
	"math/bits"
	"net/netip"
	"sync"
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

// mappedKey identifies a mapped PAT port, to keep allocations unique.
type mappedKey struct {
	proto  uint8
	mapped [4]byte
	port   uint16
}

// xlate is one NAT translation slot. Fields are guarded by xlateTable.mu.
type xlate struct {
	key        xlateKey
	mapped     [4]byte
	mappedPort uint16
	realIf     uint8
	created    int64
	refs       int   // connections using it
	idleSince  int64 // when refs last fell to zero
	hash       uint64
	listIdx    int
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

// xlateTable holds static and PAT xlates. It is touched only when a
// connection is created or deleted, never per packet (the connection's
// tuples carry the mapping), so one mutex is enough: every operation
// under it is O(1), a PAT allocation included (see portPool), so that a
// full pool costs no more than an empty one.
//
// Lock order: xlateTable.mu -> Firewall.changeMu; never held together with
// connection shard locks.
type xlateTable struct {
	mu       sync.Mutex
	m        map[xlateKey]*xlate   // guarded by mu
	byMapped map[mappedKey]*xlate  // guarded by mu: PAT xlates by mapped port
	list     []*xlate              // guarded by mu: for paging and sweeping
	pools    map[poolKey]*portPool // guarded by mu: mapped ports in use, per (proto, mapped address)
	perHost  map[[4]byte]int       // guarded by mu: PAT xlates in use by connections, per real host, for the quota
	cursor   int                   // guarded by mu: sweep position in list
	probes   uint64                // guarded by mu: bitmap words looked at by allocations (a test hook)
}

func (t *xlateTable) init() {
	t.m = make(map[xlateKey]*xlate)
	t.byMapped = make(map[mappedKey]*xlate)
	t.pools = make(map[poolKey]*portPool)
	t.perHost = make(map[[4]byte]int)
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
// handed out again at once.
type portPool struct {
	used [poolWords]uint64        // bit p: port p is mapped
	full [poolSummaryWords]uint64 // bit w: used[w] has no free port
	n    int                      // ports in use
	next uint16                   // where the next search starts
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

// markMappedLocked records that x holds its mapped port. Caller holds t.mu.
func (t *xlateTable) markMappedLocked(x *xlate) {
	pk := poolKey{proto: x.key.proto, mapped: x.mapped}
	p := t.pools[pk]
	if p == nil {
		p = new(portPool)
		t.pools[pk] = p
	}
	t.byMapped[mappedKey{proto: x.key.proto, mapped: x.mapped, port: x.mappedPort}] = x
	p.set(x.mappedPort)
}

// unmarkMappedLocked frees x's mapped port if x holds it. Caller holds t.mu.
func (t *xlateTable) unmarkMappedLocked(x *xlate) {
	mk := mappedKey{proto: x.key.proto, mapped: x.mapped, port: x.mappedPort}
	if t.byMapped[mk] != x {
		return
	}
	delete(t.byMapped, mk)
	pk := poolKey{proto: x.key.proto, mapped: x.mapped}
	if p := t.pools[pk]; p != nil {
		p.clear(x.mappedPort)
		if p.n == 0 {
			delete(t.pools, pk) // bounded by the mapped addresses in use
		}
	}
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
// t.mu.
func (f *Firewall) upsertXlateLocked(rec XlateRecord) (*xlate, error) {
	ri, ok1 := f.byName[rec.RealInterface]
	mi, ok2 := f.byName[rec.MappedInterface]
	if !ok1 || !ok2 {
		return nil, cfgErr("xlate names unknown interface %q or %q", rec.RealInterface, rec.MappedInterface)
	}
	t := &f.xlates
	k := xlateKey{kind: rec.Kind, proto: rec.Proto, real: rec.Real, realPort: rec.RealPort, mappedIf: uint8(mi)}
	x := t.m[k]
	var oldHash uint64
	if x == nil {
		x = &xlate{key: k, created: rec.Created, idleSince: f.now(), listIdx: len(t.list)}
		t.m[k] = x
		t.list = append(t.list, x)
	} else {
		oldHash = x.hash
		if x.key.kind == NATDynamicPAT {
			t.unmarkMappedLocked(x)
		}
	}
	x.mapped, x.mappedPort, x.realIf = rec.Mapped, rec.MappedPort, uint8(ri)
	if k.kind == NATDynamicPAT {
		t.markMappedLocked(x) // an applied record takes its port like a local allocation
	}
	ch := Change{Table: TableXlate, Op: OpUpsert, Xlate: x.record(f)}
	x.hash = entryHash(ch)
	f.commit(ch, oldHash, x.hash)
	return x, nil
}

// deleteXlateLocked removes x and records the deletion. It is the one way
// xlates go away. Caller holds t.mu.
func (f *Firewall) deleteXlateLocked(x *xlate) {
	t := &f.xlates
	if t.m[x.key] != x {
		return
	}
	delete(t.m, x.key)
	if x.key.kind == NATDynamicPAT {
		t.unmarkMappedLocked(x)
		if x.refs > 0 {
			t.unhostLocked(x)
		}
	}
	last := len(t.list) - 1
	t.list[x.listIdx] = t.list[last]
	t.list[x.listIdx].listIdx = x.listIdx
	t.list[last] = nil
	t.list = t.list[:last]
	f.commit(Change{Table: TableXlate, Op: OpDelete, Xlate: x.record(f)}, x.hash, 0)
}

// allocatePAT returns the PAT mapping of (proto, real, realPort) towards
// rule's mapped interface, creating the xlate and choosing a port if there
// is none, and takes a reference on it for the caller. The real port is
// kept when it is in the pool and free; otherwise the pool is searched
// from where the last allocation stopped. A host that holds its quota of
// PAT xlates gets DropNATHostQuota, a full pool DropNATExhausted; both
// cost O(1).
func (f *Firewall) allocatePAT(rule *patRule, proto uint8, real [4]byte, realPort uint16) (xlateRef, DropReason) {
	t := &f.xlates
	t.mu.Lock()
	defer t.mu.Unlock()
	k := xlateKey{kind: NATDynamicPAT, proto: proto, real: real, realPort: realPort, mappedIf: uint8(rule.mappedIf)}
	if x := t.m[k]; x != nil {
		t.refLocked(x)
		return xlateRef{key: k, mapped: x.mapped, mappedPort: x.mappedPort, realIf: x.realIf}, dropNone
	}
	if q := f.limits.patPerHost; q > 0 && t.perHost[real] >= q {
		return xlateRef{}, DropNATHostQuota
	}
	pool := t.pools[poolKey{proto: proto, mapped: rule.mapped}]
	if pool == nil {
		pool = new(portPool) // empty; kept by markMappedLocked below
		t.pools[poolKey{proto: proto, mapped: rule.mapped}] = pool
	}
	port, found := realPort, false
	if port >= rule.low && port <= rule.high && !pool.isUsed(port) {
		found = true
	} else {
		start := pool.next
		if start < rule.low || start > rule.high {
			start = rule.low
		}
		port, found = pool.findFree(start, rule.high, &t.probes)
		if !found && start > rule.low {
			port, found = pool.findFree(rule.low, start-1, &t.probes)
		}
		if found {
			pool.next = port + 1 // past high it is clamped back to low next time
		}
	}
	if !found {
		return xlateRef{}, DropNATExhausted
	}
	x, err := f.upsertXlateLocked(XlateRecord{
		Kind: NATDynamicPAT, Proto: proto, Real: real, RealPort: realPort,
		Mapped: rule.mapped, MappedPort: port,
		RealInterface: f.ifs[rule.realIf].name, MappedInterface: f.ifs[rule.mappedIf].name,
		Created: f.now(),
	})
	if err != nil {
		return xlateRef{}, DropNATExhausted
	}
	t.refLocked(x)
	return xlateRef{key: k, mapped: x.mapped, mappedPort: x.mappedPort, realIf: x.realIf}, dropNone
}

// acquireXlate takes a reference on r's xlate for c, creating it when a
// replicated connection arrives before its xlate.
func (f *Firewall) acquireXlate(r xlateRef, c *conn) {
	t := &f.xlates
	t.mu.Lock()
	defer t.mu.Unlock()
	x := t.m[r.key]
	if x == nil {
		var err error
		x, err = f.upsertXlateLocked(XlateRecord{
			Kind: NATDynamicPAT, Proto: r.key.proto, Real: r.key.real, RealPort: r.key.realPort,
			Mapped: r.mapped, MappedPort: r.mappedPort,
			RealInterface: f.ifs[r.realIf].name, MappedInterface: f.ifs[r.key.mappedIf].name,
			Created: c.created,
		})
		if err != nil {
			return
		}
	}
	t.refLocked(x)
}

// releaseXlate drops a connection's reference; the xlate then idles out
// after Timeouts.PATXlate.
func (f *Firewall) releaseXlate(r xlateRef) {
	t := &f.xlates
	t.mu.Lock()
	defer t.mu.Unlock()
	if x := t.m[r.key]; x != nil && x.refs > 0 {
		x.refs--
		if x.refs == 0 {
			x.idleSince = f.now()
			if x.key.kind == NATDynamicPAT {
				t.unhostLocked(x)
			}
		}
	}
}

// refLocked takes a connection's reference on x. The per-host quota counts
// the PAT xlates a host's connections use, not the idle ones waiting out
// timeout pat-xlate: those hold their port for the host's next connection
// from the same source port, and counting them capped a busy client at
// quota/pat-xlate new connections a second (4096 in 30 s; `falab bench`
// fell from 13k to 254 connections a second). Caller holds t.mu.
func (t *xlateTable) refLocked(x *xlate) {
	if x.refs == 0 && x.key.kind == NATDynamicPAT {
		t.perHost[x.key.real]++
	}
	x.refs++
}

// unhostLocked takes x off its host's count (its last reference went, or
// it is deleted while referenced). Caller holds t.mu.
func (t *xlateTable) unhostLocked(x *xlate) {
	if t.perHost[x.key.real]--; t.perHost[x.key.real] <= 0 {
		delete(t.perHost, x.key.real)
	}
}

// sweepXlates deletes up to budget idle PAT xlates' worth of the list,
// continuing where the previous call stopped.
func (f *Firewall) sweepXlates(budget int, now int64) {
	t := &f.xlates
	t.mu.Lock()
	defer t.mu.Unlock()
	for ; budget > 0 && len(t.list) > 0; budget-- {
		if t.cursor >= len(t.list) {
			t.cursor = 0
		}
		x := t.list[t.cursor]
		if x.key.kind == NATDynamicPAT && x.refs == 0 && now-x.idleSince > int64(f.timeouts.PATXlate) {
			f.deleteXlateLocked(x) // the last entry moved into cursor's slot: look at it next
			continue
		}
		t.cursor++
	}
}

func (f *Firewall) touchAllXlates(now int64) {
	t := &f.xlates
	t.mu.Lock()
	for _, x := range t.list {
		if x.refs == 0 {
			x.idleSince = now
		}
	}
	t.mu.Unlock()
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

// Xlates returns up to limit xlates from offset, and the total count.
func (f *Firewall) Xlates(offset, limit int) ([]XlateInfo, int) {
	now := f.now()
	t := &f.xlates
	t.mu.Lock()
	defer t.mu.Unlock()
	total := len(t.list)
	if offset > total {
		offset = total
	}
	end := min(total, offset+max(limit, 0))
	out := make([]XlateInfo, 0, end-offset)
	for _, x := range t.list[offset:end] {
		in := XlateInfo{
			Kind: x.key.kind.String(), RealInterface: f.ifs[x.realIf].name, MappedInterface: f.ifs[x.key.mappedIf].name,
			Real:   netip.AddrPortFrom(netip.AddrFrom4(x.key.real), x.key.realPort),
			Mapped: netip.AddrPortFrom(netip.AddrFrom4(x.mapped), x.mappedPort),
			Conns:  x.refs, Age: time.Duration(now - x.created),
		}
		if x.key.kind == NATDynamicPAT {
			in.Protocol = protoName(x.key.proto)
		}
		out = append(out, in)
	}
	return out, total
}
