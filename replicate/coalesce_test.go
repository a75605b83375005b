package replicate

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tableStats returns the sender's or receiver's counts of one table.
func tableStats(st Stats, table uint8) TableStats {
	for _, ts := range st.Tables {
		if ts.Table == table {
			return ts
		}
	}
	return TableStats{Table: table}
}

// TestCoalescing walks each rule of EmitEntry with the writer held back
// (an hour's flush interval: only a marker flushes), then checks what the
// standby received, what it holds, and that every marker matched.
func TestCoalescing(t *testing.T) {
	checkNoLeaks(t)
	p := newPair(t, func(c *SenderConfig) { c.FlushInterval = time.Hour }, nil)
	p.fw.hook, p.fw.entryHook = nil, p.s.EmitEntry
	for _, k := range []uint64{2, 4, 5} {
		p.fw.set(tblConn, k, fmt.Appendf(nil, "old%d", k))
	}
	p.start()
	_, pos := p.rev.waitFor(t, 0, "BulkSyncDone", isSyncDone(true))
	before, rbefore := tableStats(p.s.Stats(), tblConn), tableStats(p.r.Stats(), tblConn)

	// 1: created, changed and deleted in one batch: nothing is sent.
	p.fw.set(tblConn, 1, []byte("v1"))
	p.fw.set(tblConn, 1, []byte("v1b"))
	p.fw.del(tblConn, 1)
	// 2: held by the standby, changed then deleted: the delete is sent.
	p.fw.set(tblConn, 2, []byte("new2"))
	p.fw.del(tblConn, 2)
	// 3: a marker between its creation and its deletion: both are sent.
	p.fw.set(tblConn, 3, []byte("v3"))
	p.mark()
	// Once the marker is checked the writer has taken that queue; what
	// follows waits in a new one until the next marker.
	_, pos = p.rev.waitFor(t, pos, "first digest check", func(e Event) bool { _, ok := e.(DigestChecked); return ok })
	p.fw.del(tblConn, 3)
	// 4: deleted, then created again: both are sent.
	p.fw.del(tblConn, 4)
	p.fw.set(tblConn, 4, []byte("new4"))
	// 5: deleted, created again, deleted again: only the first delete.
	p.fw.del(tblConn, 5)
	p.fw.set(tblConn, 5, []byte("again5"))
	p.fw.del(tblConn, 5)
	// 6: created and changed: only the last upsert.
	p.fw.set(tblConn, 6, []byte("v6a"))
	p.fw.set(tblConn, 6, []byte("v6b"))
	p.mark()
	p.rev.waitFor(t, pos, "second digest check", func(e Event) bool { _, ok := e.(DigestChecked); return ok })
	p.close(t)

	if n := p.rev.count(isDigest(false)); n != 0 {
		t.Errorf("%d digest mismatches: %v", n, p.rev.all())
	}
	if diff := cmp.Diff(p.fw.contents(), p.store.contents()); diff != "" {
		t.Errorf("standby differs (-active +standby):\n%s", diff)
	}
	after, rafter := tableStats(p.s.Stats(), tblConn), tableStats(p.r.Stats(), tblConn)
	queued, sent, coalesced := after.Queued-before.Queued, after.Sent-before.Sent, after.Coalesced-before.Coalesced
	// Sent: 2's delete, 3's upsert and delete, 4's delete and upsert,
	// 5's first delete, 6's last upsert.
	if queued != 14 || sent != 7 || coalesced != 7 {
		t.Errorf("queued %d, sent %d, coalesced %d; want 14, 7, 7", queued, sent, coalesced)
	}
	if got := rafter.Received - rbefore.Received; got != sent {
		t.Errorf("standby received %d records, sender sent %d", got, sent)
	}
}

// TestCoalescingConverges runs random changes on few keys from several
// goroutines, through a bulk sync and on, with markers at random moments
// and the real 1 ms batching: every marker must match and the standby must
// end equal, while many records were coalesced.
func TestCoalescingConverges(t *testing.T) {
	checkNoLeaks(t)
	p := newPair(t, func(c *SenderConfig) { c.FlushInterval = 0 }, nil)
	p.fw.hook, p.fw.entryHook = nil, p.s.EmitEntry
	p.fw.fill(500)
	stop := make(chan struct{})
	var ops sync.WaitGroup
	for g := range 4 {
		ops.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			// Each goroutine its own keys.
			p.fw.churn(stop, rng, func() uint64 { return uint64(rng.IntN(200)*4 + g + 1) }, fmt.Sprintf("g%d-", g))
		})
	}
	ops.Go(func() {
		rng := rand.New(rand.NewPCG(9, 9))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(rng.IntN(3000)) * time.Microsecond):
				p.mark()
			}
		}
	})
	p.start()
	_, pos := p.rev.waitFor(t, 0, "BulkSyncDone", func(e Event) bool { _, ok := e.(BulkSyncDone); return ok })
	for range 20 { // twenty markers checked while the changes go on
		_, pos = p.rev.waitFor(t, pos, "DigestChecked", func(e Event) bool { _, ok := e.(DigestChecked); return ok })
	}
	close(stop)
	ops.Wait()
	// A marker the random one queued before the changes stopped may be
	// the next checked: wait for the standby to hold all of it.
	p.mark()
	waitUntil(t, "the standby holds what the active does", func() bool {
		return cmp.Equal(p.fw.contents(), p.store.contents())
	})
	p.close(t)
	if n := p.rev.count(isSyncDone(false)) + p.rev.count(isDigest(false)); n != 0 {
		t.Fatalf("%d mismatches: %v", n, p.rev.all())
	}
	st := p.s.Stats()
	var coalesced uint64
	for _, ts := range st.Tables {
		coalesced += ts.Coalesced
	}
	if coalesced == 0 {
		t.Errorf("no record was coalesced: %+v", st.Tables)
	}
	for _, ts := range st.Tables {
		if ts.Queued != ts.Sent+ts.Coalesced {
			t.Errorf("table %d: queued %d, sent %d + coalesced %d", ts.Table, ts.Queued, ts.Sent, ts.Coalesced)
		}
	}
	if st.Resyncs != 0 || st.Overflows != 0 {
		t.Errorf("resyncs %d, overflows %d", st.Resyncs, st.Overflows)
	}
	t.Logf("coalesced %d records; tables %+v", coalesced, st.Tables)
}

// TestCompactKeepsOrder kills records across runs separated by control
// items and checks what compact leaves.
func TestCompactKeepsOrder(t *testing.T) {
	q := new(queue)
	add := func(key byte) int {
		off := len(q.buf)
		if n := len(q.items); n == 0 || q.items[n-1].kind != qRecords {
			q.items = append(q.items, qitem{kind: qRecords, start: off, end: off})
		}
		it := &q.items[len(q.items)-1]
		q.buf = appendRecord(q.buf, tblConn, OpUpsert, []byte{key, key, key}[:int(key%3)+1])
		it.end, it.count = len(q.buf), it.count+1
		q.records++
		return off
	}
	a := add(1)
	add(2)
	q.items = append(q.items, qitem{kind: qMarker})
	c := add(3)
	d := add(4)
	add(5)
	q.kill(a)
	q.kill(c)
	q.kill(d)
	q.compact()
	var got [][]byte
	var counts []int
	for _, it := range q.items {
		if it.kind != qRecords {
			counts = append(counts, -1)
			continue
		}
		counts = append(counts, it.count)
		for off := it.start; off < it.end; {
			l := recordHeaderLen + int(q.buf[off+3])
			got = append(got, q.buf[off+recordHeaderLen:off+l])
			off += l
		}
	}
	want := [][]byte{{2, 2, 2}, {5, 5, 5}}
	if diff := cmp.Diff(want, got); diff != "" || !cmp.Equal(counts, []int{1, -1, 1}) {
		t.Errorf("after compact: payloads (-want +got):\n%s\nrun counts %v, want [1 -1 1]", diff, counts)
	}
	if q.records != 2 || q.dead != 0 {
		t.Errorf("records %d, dead %d; want 2, 0", q.records, q.dead)
	}
}

// racingSource creates an entry just before the snapshot reads its chunk
// and deletes it just after: a fresh upsert, the snapshot's record, then
// the delete, all in one batch.
type racingSource struct {
	*fakeFirewall
	key uint64
}

func (r racingSource) Snapshot(table uint8, cursor uint64, emit func([]byte)) (uint64, bool, error) {
	if table != tblConn || cursor != r.key%fakeBuckets {
		return r.fakeFirewall.Snapshot(table, cursor, emit)
	}
	r.set(tblConn, r.key, []byte("born in the bulk"))
	defer r.del(tblConn, r.key)
	return r.fakeFirewall.Snapshot(table, cursor, emit)
}

// TestNoCoalescingInBulk: the snapshot's record of an entry is not keyed,
// so coalescing the entry's fresh upsert with its delete around it would
// leave the snapshot's record on the standby. During a bulk sync nothing
// is coalesced.
func TestNoCoalescingInBulk(t *testing.T) {
	checkNoLeaks(t)
	p := newPair(t, func(c *SenderConfig) {
		// The last chunk, and a key not among fill's.
		c.Source = racingSource{c.Source.(*fakeFirewall), 11*fakeBuckets - 1}
		c.FlushInterval = time.Hour
	}, nil)
	p.fw.hook, p.fw.entryHook = nil, p.s.EmitEntry
	p.fw.fill(100)
	p.start()
	p.rev.waitFor(t, 0, "BulkSyncDone", func(e Event) bool { _, ok := e.(BulkSyncDone); return ok })
	p.close(t)
	if n := p.rev.count(isSyncDone(false)); n != 0 {
		t.Errorf("bulk sync ended with a mismatch: %v", p.rev.all())
	}
	if diff := cmp.Diff(p.fw.contents(), p.store.contents()); diff != "" {
		t.Errorf("standby differs (-active +standby):\n%s", diff)
	}
}

// TestForgetEntriesDropsABurstsMap: a queue whose map of entries grew past
// entriesKept gets a new one when emptied, so later flushes do not clear
// the burst's room; a small map is kept for reuse.
func TestForgetEntriesDropsABurstsMap(t *testing.T) {
	var q queue
	name := func(n int) {
		for i := range n {
			q.remember(entryRef{key: EntryKey{byte(i), byte(i >> 8)}}, entrySlot{})
		}
	}
	name(10)
	q.reset()
	if q.entries == nil || len(q.entries) != 0 {
		t.Fatalf("a map of 10 entries was not kept empty for reuse: %v", q.entries)
	}
	name(entriesKept + 1)
	q.reset()
	if q.entries != nil || q.entriesPeak != 0 {
		t.Fatalf("a map that held %d entries was kept (peak %d)", entriesKept+1, q.entriesPeak)
	}
}
