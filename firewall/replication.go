package firewall

import "fmt"

// xlateSnapshotParts splits the xlate table into this many parts for bulk
// sync, so a large PAT table goes out in chunks the sender can drain.
const xlateSnapshotParts = 16

func (k xlateKey) part() uint64 {
	h := uint32(k.real[0])<<24 | uint32(k.real[1])<<16 | uint32(k.real[2])<<8 | uint32(k.real[3])
	h ^= uint32(k.realPort)*0x9e3779b1 ^ uint32(k.proto)<<8 ^ uint32(k.mappedIf)
	h ^= h >> 15
	h *= 0x2c1b3c6d
	h ^= h >> 12
	return uint64(h % xlateSnapshotParts)
}

// isReplicated applies Options.Replicated.
func (f *Firewall) isReplicated(c Change) bool {
	return f.replicated == nil || f.replicated(c)
}

// XlateCount returns the number of xlates.
func (f *Firewall) XlateCount() int {
	f.xlates.mu.Lock()
	defer f.xlates.mu.Unlock()
	return len(f.xlates.list)
}

// SnapshotChunk emits one chunk of table t for a bulk sync, starting at
// cursor (0 first), and returns the cursor to continue from and whether the
// table is done. Each entry is emitted while the lock under which its
// changes are reported is held (a connection's shard and own lock, the
// xlate or ARP table lock), so that for every key the snapshot record and
// the change records reach emit's queue in the order the table saw them:
// emit must only queue, never call back into the firewall. Entries that
// Options.Replicated refuses are skipped, as their changes are. A chunk is
// one connection shard, one xlate part, the whole ARP table, or one bridge
// table shard; limit is a hint for tables that can honour it.
func (f *Firewall) SnapshotChunk(t Table, cursor uint64, limit int, emit func(Change)) (next uint64, done bool) {
	switch t {
	case TableConn:
		if cursor >= numConnShards {
			return cursor, true
		}
		s := &f.conns.shards[cursor]
		s.mu.RLock()
		for _, c := range s.list {
			c.mu.Lock()
			if !c.dead {
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
		if cursor >= xlateSnapshotParts {
			return cursor, true
		}
		f.xlates.mu.Lock()
		for _, x := range f.xlates.list {
			if x.key.part() == cursor {
				emit(Change{Table: TableXlate, Op: OpUpsert, Xlate: x.record(f)})
			}
		}
		f.xlates.mu.Unlock()
		return cursor + 1, cursor+1 >= xlateSnapshotParts
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
			all = append(all, s.list...)
			s.mu.RUnlock()
		}
		for _, c := range all {
			f.deleteConn(c)
		}
	case TableXlate:
		f.xlates.mu.Lock()
		for len(f.xlates.list) > 0 {
			f.deleteXlateLocked(f.xlates.list[len(f.xlates.list)-1])
		}
		f.xlates.mu.Unlock()
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
