package firewall

import (
	"encoding/binary"
	"iter"
	"math/bits"
)

// connIndex finds a connection by either of its tuples within one shard:
// an open-addressing hash table of *conn (linear probing, a power-of-two
// number of slots), 9 bytes a slot. It replaced map[Tuple]*conn, whose
// slots held the 14-byte tuple beside the pointer (24 bytes, about 42 a
// key at the map's load): two keys a connection, that was a fifth of a
// connection's memory.
//
// Beside each slot is a tag byte, as a Swiss table's control bytes: empty,
// deleted (a tombstone: probes go on past it, inserts reuse it), or seven
// bits of the key's hash, so that a probe reads the connections only
// whose tag matches (1 in 128 of the others), not every one on its path.
// A slot does not say under which tuple it was put: a probe for k stops at
// any connection that has k as its orig or reply tuple, which is the one
// connection k belongs to (insertConn keeps tuples unique). A delete, for
// each of the connection's tuples, clears every slot holding the
// connection on that tuple's probe path, which includes the slot it was
// put in under that tuple. Tombstones go when the table is rebuilt.
//
// Guarded by the shard's lock.
type connIndex struct {
	slots []*conn
	tags  []uint8  // per slot: tagEmpty, tagDeleted, or tagOf the key's hash
	orig  []uint64 // bit i: slots[i] holds its connection under its orig tuple (owned walks these)
	used  int      // slots holding a connection or a tombstone
	live  int      // slots holding a connection
	shard int      // the shard it indexes (rebuild puts back the tuples of this shard)
}

const (
	tagEmpty   = 0
	tagDeleted = 1
)

// tagOf is a slot's tag for a key of hash h: its top seven bits, with the
// high bit set so that it is neither tagEmpty nor tagDeleted.
func tagOf(h uint64) uint8 { return uint8(h>>57) | 0x80 }

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
	h := tupleHash(k)
	tag, mask := tagOf(h), len(x.slots)-1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		switch t := x.tags[i]; {
		case t == tagEmpty:
			return nil
		case t == tag && x.slots[i].hasTuple(k):
			return x.slots[i]
		}
	}
}

// put adds c under k, which the index does not hold.
func (x *connIndex) put(k Tuple, c *conn) {
	if (x.used+1)*4 > len(x.slots)*3 {
		x.rebuild(2 * (x.live + 1)) // from 3/4 full to about 3/8
	}
	h := tupleHash(k)
	mask := len(x.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		if t := x.tags[i]; t == tagEmpty || t == tagDeleted {
			if t == tagEmpty {
				x.used++
			}
			x.slots[i], x.tags[i] = c, tagOf(h)
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
	for i := int(tupleHash(k)) & mask; x.tags[i] != tagEmpty; i = (i + 1) & mask {
		if x.slots[i] == c {
			x.slots[i], x.tags[i] = nil, tagDeleted
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
	x.slots, x.tags, x.orig = make([]*conn, size), make([]uint8, size), make([]uint64, (size+63)/64)
	x.used, x.live = 0, 0
	for _, c := range old {
		if c == nil {
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
