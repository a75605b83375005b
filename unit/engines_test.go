package unit

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/falab/falab/replicate"
)

// fakeEngine is a replicated key/value table of uint32s, as an engine
// would keep one.
type fakeEngine struct {
	name string
	mu   sync.Mutex
	m    map[uint32]bool
	emit func(replicate.Op, []byte)
}

func newFakeEngine(name string) *fakeEngine { return &fakeEngine{name: name, m: map[uint32]bool{}} }

func (e *fakeEngine) Name() string                              { return e.name }
func (e *fakeEngine) SetEmit(f func(op replicate.Op, p []byte)) { e.emit = f }
func (e *fakeEngine) Reset()                                    { e.mu.Lock(); clear(e.m); e.mu.Unlock() }

func (e *fakeEngine) put(k uint32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[k] = true
	e.emit(replicate.OpUpsert, binary.BigEndian.AppendUint32(nil, k))
}

func (e *fakeEngine) Snapshot(emit func([]byte)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.m {
		emit(binary.BigEndian.AppendUint32(nil, k))
	}
}

func (e *fakeEngine) Apply(op replicate.Op, p []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := binary.BigEndian.Uint32(p)
	if op == replicate.OpDelete {
		delete(e.m, k)
	} else {
		e.m[k] = true
	}
	return nil
}

func (e *fakeEngine) DigestLocked(fn func(uint64)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var d uint64
	for k := range e.m {
		d += uint64(k)*0x9e3779b97f4a7c15 + 1
	}
	fn(d)
}

// TestEngineTableReplicates carries an engine's table from one unit's
// source to another's store the way a bulk sync does, and checks that
// the digests both sides report agree and name the engine's table.
func TestEngineTableReplicates(t *testing.T) {
	a := newTestUnit(t, "fw-a", "fw-b", testKey(1))
	b := newTestUnit(t, "fw-b", "fw-a", testKey(1))
	ea, eb := newFakeEngine("gtp-pdp"), newFakeEngine("gtp-pdp")
	if err := a.AddEngineTable(ea); err != nil {
		t.Fatal(err)
	}
	if err := b.AddEngineTable(eb); err != nil {
		t.Fatal(err)
	}
	if err := a.AddEngineTable(newFakeEngine("gtp-pdp")); err == nil {
		t.Fatal("a second table with the same name was accepted")
	}
	ea.put(7) // no sender yet: the change is kept locally only
	ea.put(9)
	id := a.tables[len(a.tables)-1]
	if got := a.tableName(id); got != "gtp-pdp" {
		t.Fatalf("table %d is named %q", id, got)
	}
	if err := (fwStore{b}).Reset(id); err != nil {
		t.Fatal(err)
	}
	_, done, err := fwSource{a}.Snapshot(id, 0, func(p []byte) {
		if err := (fwStore{b}).Apply(id, replicate.OpUpsert, p); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil || !done {
		t.Fatalf("snapshot: done=%v err=%v", done, err)
	}
	var marked map[uint8]uint64
	fwSource{a}.MarkDigests(func(d map[uint8]uint64) { marked = d })
	mine := (fwStore{b}).Digests()
	if marked[id] == 0 || marked[id] != mine[id] {
		t.Fatalf("engine digests differ: active %x standby %x", marked[id], mine[id])
	}
	for tb, v := range marked {
		if mine[tb] != v {
			t.Errorf("table %s: active %x standby %x", a.tableName(tb), v, mine[tb])
		}
	}
	if err := (fwStore{b}).Apply(id, replicate.OpDelete, binary.BigEndian.AppendUint32(nil, 9)); err != nil {
		t.Fatal(err)
	}
	if (fwStore{b}).Digests()[id] == marked[id] {
		t.Fatal("a delete on the standby left its digest unchanged")
	}
}
