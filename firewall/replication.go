package firewall

import "fmt"

// isReplicated applies Options.Replicated.
func (f *Firewall) isReplicated(c Change) bool {
	return f.replicated == nil || f.replicated(c)
}

// XlateCount returns the number of xlates.
func (f *Firewall) XlateCount() int {
	return int(f.xlates.count.Load())
}

// SnapshotChunk emits one chunk of table t for a bulk sync, starting at
// cursor (0 first), and returns the cursor to continue from and whether the
// table is done. Each entry is emitted while the lock under which its
// changes are reported is held (a connection's shard and own lock, the
// xlate shard's or the ARP table's lock), so that for every key the
// snapshot record and the change records reach emit's queue in the order
// the table saw them: emit must only queue, never call back into the
// firewall. Entries that Options.Replicated refuses are skipped, as their
// changes are, and so are connections not yet announced (SYN_SENT, see
// conn), which have had no change record either. A chunk is one
// connection shard, one xlate shard, the whole ARP table, or one bridge
// table shard; limit is a hint for tables that can honour it.
func (f *Firewall) SnapshotChunk(t Table, cursor uint64, limit int, emit func(Change)) (next uint64, done bool) {
	switch t {
	case TableConn:
		if cursor >= numConnShards {
			return cursor, true
		}
		s := &f.conns.shards[cursor]
		s.mu.RLock()
		for c := range s.idx.owned() {
			c.mu.Lock()
			if !c.dead() && c.hash != 0 { // dead or not announced: no record
				ch := Change{Table: TableConn, Op: OpUpsert, Conn: c.record(f)}
				if f.isReplicated(ch) {
					emit(ch)
				}
			}
			c.mu.Unlock()
		}
		s.mu.RUnlock()
		return cursor + 1, cursor+1 >= numConnShards
	case TableXlate:
		if cursor >= numXlateShards {
			return cursor, true
		}
		s := &f.xlates.shards[cursor]
		s.mu.Lock()
		for x := range s.idx.all() {
			emit(Change{Table: TableXlate, Op: OpUpsert, Xlate: x.record(f)})
		}
		s.mu.Unlock()
		return cursor + 1, cursor+1 >= numXlateShards
	case TableARP:
		f.arp.mu.RLock()
		for k, e := range f.arp.m {
			emit(Change{Table: TableARP, Op: OpUpsert, ARP: ARPRecord{Interface: f.ifs[k.ifIdx].name, IP: k.ip, MAC: e.mac, Updated: e.updated}})
		}
		f.arp.mu.RUnlock()
		return 1, true
	case TableBridge:
		return f.snapshotBridgeChunk(cursor, emit)
	}
	return cursor, true
}

// ResetTable empties table t through the table's own delete methods (so
// digests and change reports stay right), before a bulk sync refills it on
// the standby. Static xlates go too; the bulk sync brings them back.
func (f *Firewall) ResetTable(t Table) error {
	switch t {
	case TableConn:
		var all []*conn
		for i := range f.conns.shards {
			s := &f.conns.shards[i]
			s.mu.RLock()
			for c := range s.idx.owned() {
				all = append(all, c)
			}
			s.mu.RUnlock()
		}
		for _, c := range all {
			f.deleteConn(c)
		}
	case TableXlate:
		for i := range f.xlates.shards {
			s := &f.xlates.shards[i]
			s.mu.Lock()
			for x := range s.idx.all() {
				f.deleteXlateLocked(s, x)
			}
			s.mu.Unlock()
		}
	case TableARP:
		f.arp.mu.Lock()
		for k := range f.arp.m {
			f.deleteARPLocked(k)
		}
		f.arp.mu.Unlock()
	case TableBridge:
		f.resetBridge()
	default:
		return fmt.Errorf("reset: %w %d", ErrChangeTable, t)
	}
	return nil
}
