package firewall

import "iter"

// xlateIndex finds an xlate by its key within one xlate shard: an
// open-addressing hash table of *xlate (linear probing, a power-of-two
// number of slots, deleted slots marked with xlateTombstone until the
// table is rebuilt), 8 bytes a slot. It replaced a map[xlateKey]*xlate
// (24-byte slots) and the list beside it that paging and sweeping walked:
// with an xlate per connection, the two cost about 50 bytes a connection.
// Iteration walks the slots, so a deleted entry does not move the others
// and a sweep's cursor (a slot) stays valid.
//
// Guarded by the shard's lock.
type xlateIndex struct {
	slots []*xlate
	used  int // slots holding an xlate or a tombstone
	live  int // slots holding an xlate
}

// xlateTombstone marks a slot whose xlate was deleted.
var xlateTombstone = new(xlate)

func (k xlateKey) hash() uint64 {
	h := uint64(k.real[0])<<56 | uint64(k.real[1])<<48 | uint64(k.real[2])<<40 | uint64(k.real[3])<<32 |
		uint64(k.realPort)<<16 | uint64(k.proto)<<8 | uint64(k.mappedIf)
	h ^= uint64(k.kind) << 60
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 31
	h *= 0x94d049bb133111eb
	h ^= h >> 29
	return h
}

// get returns the xlate of k, or nil.
func (t *xlateIndex) get(k xlateKey) *xlate {
	if len(t.slots) == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := int(k.hash()) & mask; ; i = (i + 1) & mask {
		x := t.slots[i]
		if x == nil {
			return nil
		}
		if x != xlateTombstone && x.key == k {
			return x
		}
	}
}

// put adds x, whose key the index does not hold.
func (t *xlateIndex) put(x *xlate) {
	if (t.used+1)*4 > len(t.slots)*3 {
		t.rebuild(2 * (t.live + 1)) // from 3/4 full to about 3/8
	}
	mask := len(t.slots) - 1
	for i := int(x.key.hash()) & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == nil || s == xlateTombstone {
			if s == nil {
				t.used++
			}
			t.slots[i] = x
			t.live++
			return
		}
	}
}

// remove deletes x if the index holds it, and reports whether it did.
func (t *xlateIndex) remove(x *xlate) bool {
	if len(t.slots) == 0 {
		return false
	}
	mask := len(t.slots) - 1
	for i := int(x.key.hash()) & mask; t.slots[i] != nil; i = (i + 1) & mask {
		if t.slots[i] == x {
			t.slots[i] = xlateTombstone
			t.live--
			return true
		}
	}
	return false
}

// rebuild puts every xlate back into a table of the power of two slots at
// or above n (at least 8), without tombstones.
func (t *xlateIndex) rebuild(n int) {
	old := t.slots
	size := 8
	for size < n {
		size <<= 1
	}
	t.slots, t.used, t.live = make([]*xlate, size), 0, 0
	for _, x := range old {
		if x != nil && x != xlateTombstone {
			t.put(x)
		}
	}
}

// all yields every xlate, in slot order; deleting the one yielded is safe.
func (t *xlateIndex) all() iter.Seq[*xlate] {
	return func(yield func(*xlate) bool) {
		for _, x := range t.slots {
			if x != nil && x != xlateTombstone && !yield(x) {
				return
			}
		}
	}
}
