package firewall

import (
	"encoding/binary"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/falab/falab/firewall/header"
)

const (
	connShardBits = 8
	numConnShards = 1 << connShardBits
)

// Direction of a packet relative to its connection.
const (
	dirOrig  = 0 // from the initiator
	dirReply = 1 // from the responder
)

// conn is one connection. Both tuples index it in the table.
//
// Lock order: shard locks (lower index first) -> conn.mu -> an xlate
// shard's mu -> Firewall.changeMu.
// Change records of one connection are emitted while mu (for state
// transitions) or both shard locks and mu (for creation and deletion) are
// held, so they leave in the order the table saw them.
//
// A TCP connection is announced (replicated, and counted in the digest)
// from its first state past SYN_SENT: a connection whose SYN has not been
// answered yet is not worth a record, since a unit that takes over
// without it sees the initiator's retransmitted SYN open it again, through
// the same PAT xlate (which is replicated), about a second later. That
// saves one record in three of every TCP connection's setup. hash is zero
// until the connection is announced.
type conn struct {
	// Fields are ordered for size (144 bytes, a size class): the narrow
	// ones first, then the 8-byte ones; the flags are bits.

	// Immutable after insertion.
	orig, reply  Tuple
	inIf, outIf  uint8
	origNextHop  [4]byte   // next hop towards the responder (leaving by outIf)
	replyNextHop [4]byte   // next hop towards the initiator (leaving by inIf)
	fixed        connFixed // HTTP, holds an xlate

	flags connFlags // guarded by mu: dead, half-open, pickup per direction

	seqOff uint32        // immutable: TCP sequence randomization offset (see ConnRecord.SeqOffset)
	state  atomic.Uint32 // TCPState | closeFlags<<8; written under mu, read without

	engine   *engine // immutable: the inspection engine bound by port (inspect.go), or nil
	created  int64   // immutable
	mu       sync.Mutex
	hash     uint64       // guarded by mu: digest contribution of the last record emitted; 0 until announced
	win      [2]TCPWindow // guarded by mu: TCP sequence tracking per direction
	lastSeen atomic.Int64 // unix nanoseconds
	packets  atomic.Uint64
	bytes    atomic.Uint64
}

// connFixed are a connection's immutable flags.
type connFixed uint8

const (
	fixedHTTP       connFixed = 1 << iota // TCP port 80 on either side (ConnRecord.HTTP)
	fixedHoldsXlate                       // holds a reference on the PAT xlate of its source
	fixedDiverted                         // a TCP connection the service module inspects (module.go)
)

// connFlags are a connection's mutable flags, guarded by its mu.
type connFlags uint8

const (
	flagPickupOrig  connFlags = 1 << iota // adopted from a record; the next segment from the initiator re-seeds win (tcp.go)
	flagPickupReply                       // the same from the responder
	flagDead                              // deleted from the table
	flagHalfOpen                          // counted by the embryonic table
	flagXlateParked                       // its PAT xlate reference is parked: in TIME_WAIT (parkXlate)
)

func (c *conn) http() bool       { return c.fixed&fixedHTTP != 0 }
func (c *conn) holdsXlate() bool { return c.fixed&fixedHoldsXlate != 0 }
func (c *conn) diverted() bool   { return c.fixed&fixedDiverted != 0 }

// dead reports whether c was deleted from the table. Caller holds c.mu.
func (c *conn) dead() bool { return c.flags&flagDead != 0 }

// pickup reports whether direction dir awaits pickup. Caller holds c.mu.
func (c *conn) pickup(dir int) bool { return c.flags&(flagPickupOrig<<dir) != 0 }

// setFlag sets or clears f. Caller holds c.mu.
func (c *conn) setFlag(f connFlags, on bool) {
	if on {
		c.flags |= f
	} else {
		c.flags &^= f
	}
}

// setPickup marks or unmarks direction dir for pickup. Caller holds c.mu.
func (c *conn) setPickup(dir int, on bool) { c.setFlag(flagPickupOrig<<dir, on) }

func (c *conn) tcpState() (TCPState, uint8) {
	v := c.state.Load()
	return TCPState(v), uint8(v >> 8)
}

// record returns the connection's replicated form. Caller holds c.mu (or
// owns c exclusively) so that state and the record agree.
func (c *conn) record(f *Firewall) ConnRecord {
	st, cf := c.tcpState()
	return ConnRecord{
		Orig: c.orig, Reply: c.reply,
		InInterface: f.ifs[c.inIf].name, OutInterface: f.ifs[c.outIf].name,
		State: st, CloseFlags: cf, HTTP: c.http(),
		Created: c.created, LastSeen: c.lastSeen.Load(),
		SeqOffset: c.seqOff, Window: c.win,
	}
}

type connShard struct {
	mu    sync.RWMutex
	idx   connIndex // guarded by mu: both tuples of every conn; idx.owned() yields those whose orig tuple hashes here
	owned int       // guarded by mu: how many conns' orig tuple hashes here, for paging
	_     [64]byte  // keep neighbouring shards' locks off one cache line
}

// connTable is the sharded connection table.
type connTable struct {
	shards [numConnShards]connShard
	count  atomic.Int64
}

func (t *connTable) init() {
	for i := range t.shards {
		t.shards[i].idx.shard = i
	}
}

func shardOf(k Tuple) int {
	a := binary.BigEndian.Uint32(k.Src[:])
	b := binary.BigEndian.Uint32(k.Dst[:])
	h := a*0x9e3779b1 ^ bits.RotateLeft32(b, 13)*0x85ebca6b ^ (uint32(k.SrcPort)<<16|uint32(k.DstPort))*0xc2b2ae35 ^ uint32(k.Proto)
	h ^= h >> 15
	h *= 0x2c1b3c6d
	return int(h >> (32 - connShardBits))
}

// lookup returns the connection k belongs to and the packet's direction.
func (t *connTable) lookup(k Tuple) (*conn, int) {
	s := &t.shards[shardOf(k)]
	s.mu.RLock()
	c := s.idx.get(k)
	s.mu.RUnlock()
	if c == nil {
		return nil, 0
	}
	if c.orig == k {
		return c, dirOrig
	}
	return c, dirReply
}

// lockPair locks the shards of a and b in index order and returns an
// unlock function's arguments.
func (t *connTable) lockPair(a, b int) {
	if a > b {
		a, b = b, a
	}
	t.shards[a].mu.Lock()
	if b != a {
		t.shards[b].mu.Lock()
	}
}

func (t *connTable) unlockPair(a, b int) {
	t.shards[a].mu.Unlock()
	if b != a {
		t.shards[b].mu.Unlock()
	}
}

// connTimeout returns how long c may stay idle in its current state.
func (f *Firewall) connTimeout(c *conn) int64 {
	switch c.orig.Proto {
	case header.ProtocolTCP:
		st, _ := c.tcpState()
		switch st {
		case TCPStateEstablished:
			return int64(f.timeouts.Conn)
		case TCPStateFinWait, TCPStateClosing:
			return int64(f.timeouts.HalfClosed)
		case TCPStateTimeWait:
			return int64(f.timeouts.TimeWait)
		default:
			return int64(f.timeouts.Embryonic)
		}
	case header.ProtocolUDP:
		return int64(f.timeouts.UDP)
	default:
		return int64(f.timeouts.ICMP)
	}
}

// insertConn adds a connection built from rec, or returns the one that
// already holds rec.Orig (existing = true). It is the one way connections
// come to exist, for the packet path and for ApplyChange alike. heldXlate
// says the caller already holds the PAT xlate reference the connection
// needs; otherwise insertConn takes it (creating the xlate if the record
// arrived before it).
func (f *Firewall) insertConn(rec ConnRecord, heldXlate bool) (c *conn, existing bool, err DropReason) {
	in, ok1 := f.byName[rec.InInterface]
	out, ok2 := f.byName[rec.OutInterface]
	if !ok1 || !ok2 {
		return nil, false, DropNoPort
	}
	c = &conn{
		orig: rec.Orig, reply: rec.Reply, inIf: uint8(in), outIf: uint8(out),
		created: rec.Created, seqOff: rec.SeqOffset, win: rec.Window,
	}
	if rec.HTTP {
		c.fixed |= fixedHTTP
	}
	c.engine = f.engineFor(rec.Orig)
	if f.divertsTo(rec.Orig) {
		c.fixed |= fixedDiverted
	}
	c.state.Store(uint32(rec.State) | uint32(rec.CloseFlags)<<8)
	c.lastSeen.Store(rec.LastSeen)
	c.origNextHop = f.nextHopOn(out, rec.Reply.Src)
	c.replyNextHop = f.nextHopOn(in, rec.Orig.Src)
	x, isPAT := f.patXlateOf(c)
	if isPAT {
		c.fixed |= fixedHoldsXlate
	}

	t := &f.conns
	so, sr := shardOf(rec.Orig), shardOf(rec.Reply)
	t.lockPair(so, sr)
	if old := t.shards[so].idx.get(rec.Orig); old != nil {
		t.unlockPair(so, sr)
		if heldXlate {
			f.releaseXlate(x, false)
		}
		return old, true, dropNone
	}
	if t.shards[sr].idx.get(rec.Reply) != nil {
		t.unlockPair(so, sr)
		if heldXlate {
			f.releaseXlate(x, false)
		}
		return nil, false, DropConnConflict
	}
	t.shards[so].idx.put(rec.Orig, c)
	if rec.Reply != rec.Orig {
		t.shards[sr].idx.put(rec.Reply, c)
	}
	t.shards[so].owned++
	t.count.Add(1)
	c.mu.Lock()
	f.embryonic.observe(c)
	if announced(rec.State) {
		ch := Change{Table: TableConn, Op: OpUpsert, Conn: c.record(f)}
		c.hash = entryHash(ch)
		f.commit(ch, 0, c.hash)
	}
	c.mu.Unlock()
	t.unlockPair(so, sr)
	if isPAT && !heldXlate {
		f.acquireXlate(x, c)
	}
	if rec.State == TCPStateTimeWait {
		// A record (a bulk sync) already in TIME_WAIT: park the
		// reference just taken, as setConnStateLocked would have.
		c.mu.Lock()
		f.parkXlateLocked(c)
		c.mu.Unlock()
	}
	return c, false, dropNone
}

// setConnStateLocked moves a TCP connection to a new state and close flags
// and records the change; the caller holds c.mu. It is the one way a
// connection's state changes.
func (f *Firewall) setConnStateLocked(c *conn, st TCPState, closeFlags uint8) {
	if c.dead() {
		return
	}
	v := uint32(st) | uint32(closeFlags)<<8
	if c.state.Load() == v {
		return
	}
	c.state.Store(v)
	f.embryonic.observe(c)
	if st == TCPStateTimeWait {
		f.parkXlateLocked(c)
	}
	if !announced(st) {
		return
	}
	ch := Change{Table: TableConn, Op: OpUpsert, Conn: c.record(f)}
	h := entryHash(ch)
	f.commit(ch, c.hash, h)
	c.hash = h
}

// parkXlateLocked parks c's PAT xlate reference once c is in TIME_WAIT
// (see parkXlate). Caller holds c.mu (lock order: conn.mu -> xlate
// shard).
func (f *Firewall) parkXlateLocked(c *conn) {
	if !c.holdsXlate() || c.flags&flagXlateParked != 0 {
		return
	}
	if x, ok := f.patXlateOf(c); ok && f.parkXlate(x) {
		c.flags |= flagXlateParked
	}
}

// announced reports whether a connection in state st is replicated: every
// one but a TCP connection in SYN_SENT (see conn).
func announced(st TCPState) bool { return st != TCPStateSynSent }

// adoptConn takes over the replicated state of rec into c, a connection
// just inserted from rec or already there: its state and close flags
// (recorded as a change like any other) and its TCP windows, each seen
// direction marked for pickup. Windows are only replicated on state
// transitions, so they lag the stream; rather than reject a unit's first
// segments after a takeover, each direction re-seeds from its first
// segment (conntrack's mid-stream pickup). See tcp.go.
func (f *Firewall) adoptConn(c *conn, rec ConnRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.orig.Proto == header.ProtocolTCP {
		c.win = rec.Window
		for d := range c.win {
			c.setPickup(d, c.win[d].Flags&TCPWinSeen != 0)
		}
		if rec.Window[dirOrig].Flags&TCPWinSeen == 0 && rec.State != TCPStateSynSent {
			// A record from a writer without tracking: adopt both sides.
			c.setPickup(dirOrig, true)
			c.setPickup(dirReply, true)
		}
	}
	f.setConnStateLocked(c, rec.State, rec.CloseFlags)
}

// deleteConn removes c from the table and records the deletion. It is the
// one way connections go away; deleting twice is harmless.
func (f *Firewall) deleteConn(c *conn) {
	t := &f.conns
	so, sr := shardOf(c.orig), shardOf(c.reply)
	t.lockPair(so, sr)
	c.mu.Lock()
	if c.dead() {
		c.mu.Unlock()
		t.unlockPair(so, sr)
		return
	}
	c.flags |= flagDead
	t.shards[so].idx.remove(c.orig, c)
	t.shards[sr].idx.remove(c.reply, c)
	t.shards[so].owned--
	t.count.Add(-1)
	f.embryonic.observe(c)
	if c.hash != 0 {
		f.commit(Change{Table: TableConn, Op: OpDelete, Conn: c.record(f)}, c.hash, 0)
	}
	parked := c.flags&flagXlateParked != 0
	c.mu.Unlock()
	t.unlockPair(so, sr)
	if c.holdsXlate() {
		if x, ok := f.patXlateOf(c); ok {
			f.releaseXlate(x, parked)
		}
	}
}

// nextHopOn returns the next hop for dst when leaving by interface ifIdx:
// the routed next hop if the best route leaves there, else dst itself.
func (f *Firewall) nextHopOn(ifIdx int, dst [4]byte) [4]byte {
	if i, nh, ok := f.lookupRoute(dst); ok && i == ifIdx {
		return nh
	}
	return dst
}

// expired reports whether c has been idle longer than its timeout.
func (f *Firewall) expired(c *conn, now int64) bool {
	return now-c.lastSeen.Load() > f.connTimeout(c)
}

// sweepConns deletes expired connections in n shards starting at the
// sweep cursor, so that a full pass over a million entries is spread over
// many calls instead of stopping the world.
func (f *Firewall) sweepConns(n int, now int64) {
	f.sweepMu.Lock()
	defer f.sweepMu.Unlock()
	for range n {
		s := &f.conns.shards[f.sweepCursor]
		f.sweepCursor = (f.sweepCursor + 1) % numConnShards
		f.sweepScratch = f.sweepScratch[:0]
		s.mu.RLock()
		for c := range s.idx.owned() {
			if f.expired(c, now) {
				f.sweepScratch = append(f.sweepScratch, c)
			}
		}
		s.mu.RUnlock()
		for i, c := range f.sweepScratch {
			f.deleteConn(c)
			f.sweepScratch[i] = nil
		}
	}
}

// touchAllConns sets every connection's last activity to now, so that
// nothing idles out the moment a standby takes over.
func (f *Firewall) touchAllConns(now int64) {
	for i := range f.conns.shards {
		s := &f.conns.shards[i]
		s.mu.RLock()
		for _, c := range s.idx.slots { // every conn, some twice
			if c != nil {
				c.lastSeen.Store(now)
			}
		}
		s.mu.RUnlock()
	}
}

// ConnInfo describes one connection for the API.
type ConnInfo struct {
	Protocol     string        `json:"protocol"`
	InInterface  string        `json:"in_interface"`
	OutInterface string        `json:"out_interface"`
	OrigSrc      string        `json:"orig_src"`
	OrigDst      string        `json:"orig_dst"`
	ReplySrc     string        `json:"reply_src"`
	ReplyDst     string        `json:"reply_dst"`
	State        string        `json:"state"`
	HTTP         bool          `json:"http"`
	Packets      uint64        `json:"packets"`
	Bytes        uint64        `json:"bytes"`
	Age          time.Duration `json:"age_ns"`
	Idle         time.Duration `json:"idle_ns"`

	// NotReplicated: Options.Replicated keeps this connection off the
	// state link (HTTP while HTTP replication is off).
	NotReplicated bool `json:"not_replicated,omitempty"`
}

// Conns returns up to limit connections starting at offset and the total
// count. Entries are in table order, which is stable while the table does
// not change; paging skips whole shards by their counts, so a page costs
// O(shards + the slots of the shards it reads), not O(offset).
func (f *Firewall) Conns(offset, limit int) ([]ConnInfo, int) {
	now := f.now()
	var out []ConnInfo
	total := 0
	for i := range f.conns.shards {
		s := &f.conns.shards[i]
		s.mu.RLock()
		n := s.owned
		if offset >= n {
			offset -= n
		} else {
			for c := range s.idx.owned() {
				if len(out) >= limit {
					break
				}
				if offset > 0 {
					offset--
					continue
				}
				out = append(out, f.connInfo(c, now))
			}
			offset = 0
		}
		total += n
		s.mu.RUnlock()
	}
	return out, total
}

func (f *Firewall) connInfo(c *conn, now int64) ConnInfo {
	st, _ := c.tcpState()
	return ConnInfo{
		Protocol:    protoName(c.orig.Proto),
		InInterface: f.ifs[c.inIf].name, OutInterface: f.ifs[c.outIf].name,
		OrigSrc: addrPort(c.orig.Src, c.orig.SrcPort), OrigDst: addrPort(c.orig.Dst, c.orig.DstPort),
		ReplySrc: addrPort(c.reply.Src, c.reply.SrcPort), ReplyDst: addrPort(c.reply.Dst, c.reply.DstPort),
		State:   st.String(),
		HTTP:    c.http(),
		Packets: c.packets.Load(), Bytes: c.bytes.Load(),
		Age:  time.Duration(now - c.created),
		Idle: time.Duration(now - c.lastSeen.Load()),

		NotReplicated: !f.connReplicated(c),
	}
}

// connReplicated applies Options.Replicated to a connection as its change
// records would meet it (the filter reads the tuples and the HTTP flag).
func (f *Firewall) connReplicated(c *conn) bool {
	return f.isReplicated(Change{Table: TableConn, Op: OpUpsert, Conn: ConnRecord{Orig: c.orig, Reply: c.reply, HTTP: c.http()}})
}

// UnreplicatedConnCount returns how many connections Options.Replicated
// keeps off the state link; 0 at once when every connection is
// replicated. It walks the table (for `show failover`, not per packet).
func (f *Firewall) UnreplicatedConnCount() int {
	if f.replicated == nil {
		return 0
	}
	n := 0
	for i := range f.conns.shards {
		s := &f.conns.shards[i]
		s.mu.RLock()
		for c := range s.idx.owned() {
			if !f.connReplicated(c) {
				n++
			}
		}
		s.mu.RUnlock()
	}
	return n
}

// ConnCount returns the number of connections.
func (f *Firewall) ConnCount() int { return int(f.conns.count.Load()) }
