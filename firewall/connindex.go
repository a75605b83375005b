package firewall

import (
	"encoding/binary"
	"iter"
	"math/bits"
)

// connIndex finds a connection by either of its tuples within one shard:
// an open-addressing hash table of *conn (linear probing, a power-of-two
// number of slots), 8 bytes a slot. It replaced map[Tuple]*conn, whose
// slots held the 14-byte tuple beside the pointer (24 bytes, about 42 a
// key at the map's load): two keys a connection, that was a fifth of a
// connection's memory.
//
// A slot does not say under which tuple it was put: a probe for k stops
// at any connection that has k as its orig or reply tuple, which is the
// one connection k belongs to (insertConn keeps tuples unique). A delete
// marks slots with the tombstone (probes go on past it, inserts reuse it)
// and, for each of the connection's tuples, clears every slot holding the
// connection on that tuple's probe path, which includes the slot it was
// put in under that tuple. Tombstones go when the table is rebuilt.
//
// Guarded by the shard's lock.
type connIndex struct {
	slots []*conn
	orig  []uint64 // bit i: slots[i] holds its connection under its orig tuple (owned walks these)
	used  int      // slots holding a connection or a tombstone
	live  int      // slots holding a connection
	shard int      // the shard it indexes (rebuild puts back the tuples of this shard)
}

// tombstone marks a slot whose connection was deleted.
var tombstone = new(conn)

// tupleHash mixes all of a tuple's fields into 64 bits (the shard uses its
// own hash, shardOf, so the two are independent).
func tupleHash(k Tuple) uint64 {
	a := uint64(binary.BigEndian.Uint32(k.Src[:]))<<32 | uint64(binary.BigEndian.Uint32(k.Dst[:]))
	b := uint64(k.SrcPort)<<24 | uint64(k.DstPort)<<8 | uint64(k.Proto)
	h := a ^ (b+0x9e3779b97f4a7c15)*0xbf58476d1ce4e5b9
	h ^= h >> 31
	h *= 0x94d049bb133111eb
	h ^= h >> 29
	return h
}

func (c *conn) hasTuple(k Tuple) bool { return c.orig == k || c.reply == k }

// get returns the connection with tuple k, or nil.
func (x *connIndex) get(k Tuple) *conn {
	if len(x.slots) == 0 {
		return nil
	}
	mask := len(x.slots) - 1
	for i := int(tupleHash(k)) & mask; ; i = (i + 1) & mask {
		c := x.slots[i]
		if c == nil {
			return nil
		}
		if c != tombstone && c.hasTuple(k) {
			return c
		}
	}
}

// put adds c under k, which the index does not hold.
func (x *connIndex) put(k Tuple, c *conn) {
	if (x.used+1)*4 > len(x.slots)*3 {
		x.rebuild(2 * (x.live + 1)) // from 3/4 full to about 3/8
	}
	mask := len(x.slots) - 1
	for i := int(tupleHash(k)) & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == nil || s == tombstone {
			if s == nil {
				x.used++
			}
			x.slots[i] = c
			if k == c.orig {
				x.orig[i>>6] |= 1 << (i & 63)
			}
			x.live++
			return
		}
	}
}

// remove clears the slots holding c on k's probe path.
func (x *connIndex) remove(k Tuple, c *conn) {
	if len(x.slots) == 0 {
		return
	}
	mask := len(x.slots) - 1
	for i := int(tupleHash(k)) & mask; x.slots[i] != nil; i = (i + 1) & mask {
		if x.slots[i] == c {
			x.slots[i] = tombstone
			x.orig[i>>6] &^= 1 << (i & 63)
			x.live--
		}
	}
}

// rebuild puts every connection back into a table of the power of two
// slots at or above n (at least 8), without tombstones. A connection goes
// back under each of its tuples that belongs to this shard, unless the
// index already finds it by that tuple (its tuples share a probe path),
// so that get finds it by each and remove clears all its slots.
func (x *connIndex) rebuild(n int) {
	old := x.slots
	size := 8
	for size < n {
		size <<= 1
	}
	x.slots, x.orig, x.used, x.live = make([]*conn, size), make([]uint64, (size+63)/64), 0, 0
	for _, c := range old {
		if c == nil || c == tombstone {
			continue
		}
		for _, k := range [2]Tuple{c.orig, c.reply} {
			if shardOf(k) == x.shard && x.get(k) != c {
				x.put(k, c)
			}
		}
	}
}

// owned yields every connection whose orig tuple belongs to this shard,
// once each (at the slot it was put in under that tuple), in slot order:
// the shard's own connections, for paging, sweeping and snapshots. It
// reads only the orig bitmap and those slots. Deleting the one yielded is
// safe.
func (x *connIndex) owned() iter.Seq[*conn] {
	return func(yield func(*conn) bool) {
		for w, bitsLeft := range x.orig {
			for ; bitsLeft != 0; bitsLeft &= bitsLeft - 1 {
				if !yield(x.slots[w<<6+bits.TrailingZeros64(bitsLeft)]) {
					return
				}
			}
		}
	}
}
