package firewall

import (
	"math/rand/v2"
	"testing"
)

// TestConnIndexAgainstAMap inserts and deletes connections at random in a
// connection table and checks every lookup against a map: a connection is
// found by both of its tuples while it is in the table and by neither
// after, through growth, tombstones and rebuilds, including connections
// whose two tuples fall in one shard (about 1 in 256 here) and one whose
// tuples are equal; and owned() yields every connection once, from the
// shard of its orig tuple.
func TestConnIndexAgainstAMap(t *testing.T) {
	var tab connTable
	tab.init()
	model := map[Tuple]*conn{}
	var live []*conn
	rng := rand.New(rand.NewPCG(1, 2))
	tuple := func() Tuple {
		return Tuple{Proto: 17, Src: [4]byte{10, 0, byte(rng.IntN(4)), byte(rng.IntN(256))}, Dst: [4]byte{10, 1, 0, byte(rng.IntN(8))},
			SrcPort: uint16(rng.IntN(2000)), DstPort: 53}
	}
	add := func(c *conn) {
		so, sr := shardOf(c.orig), shardOf(c.reply)
		if tab.shards[so].idx.get(c.orig) != nil || tab.shards[sr].idx.get(c.reply) != nil {
			return
		}
		tab.shards[so].idx.put(c.orig, c)
		if c.reply != c.orig {
			tab.shards[sr].idx.put(c.reply, c)
		}
		model[c.orig], model[c.reply] = c, c
		live = append(live, c)
	}
	del := func(i int) {
		c := live[i]
		tab.shards[shardOf(c.orig)].idx.remove(c.orig, c)
		tab.shards[shardOf(c.reply)].idx.remove(c.reply, c)
		delete(model, c.orig)
		delete(model, c.reply)
		live[i] = live[len(live)-1]
		live = live[:len(live)-1]
	}
	same := tuple()
	add(&conn{orig: same, reply: same})
	sameShard := 0
	for step := range 60_000 {
		if len(live) > 0 && rng.IntN(5) < 2 {
			del(rng.IntN(len(live)))
		} else {
			o, r := tuple(), tuple()
			r.Proto = 17
			if shardOf(o) == shardOf(r) {
				sameShard++
			}
			add(&conn{orig: o, reply: r})
		}
		if step%6000 == 0 {
			for k, c := range model {
				if got, _ := tab.lookup(k); got != c {
					t.Fatalf("step %d: lookup %v = %p, want %p", step, k, got, c)
				}
			}
			for range 100 {
				k := tuple()
				if got, _ := tab.lookup(k); got != model[k] {
					t.Fatalf("step %d: lookup %v = %p, want %p", step, k, got, model[k])
				}
			}
		}
	}
	owned := map[*conn]int{}
	for i := range tab.shards {
		for c := range tab.shards[i].idx.owned() {
			owned[c]++
		}
	}
	if len(owned) != len(live) {
		t.Errorf("owned() yields %d conns over all shards, %d live", len(owned), len(live))
	}
	for _, c := range live {
		if owned[c] != 1 {
			t.Errorf("owned() yields %v %d times", c.orig, owned[c])
		}
	}
	if sameShard == 0 {
		t.Errorf("no connection had both tuples in one shard")
	}
	for len(live) > 0 {
		del(len(live) - 1)
	}
	for i := range tab.shards {
		if x := &tab.shards[i].idx; x.live != 0 {
			t.Errorf("shard %d: %d live slots after deleting everything", i, x.live)
		}
	}
}
