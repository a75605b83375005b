package unit

import (
	"fmt"

	"github.com/falab/falab/replicate"
)

// EngineTable is the replicated table of an inspection engine (GTP PDP
// contexts, IKE and IPsec SAs, SIP sessions): the unit carries it on the
// state link beside the firewall's own tables, with the same bulk sync,
// change stream and digest check. An engine whose state the ASA does not
// replicate (CTIQBE, the uauth table, a service module's flows) registers
// no table.
type EngineTable interface {
	// Name names the table in `show failover` and the replication stats,
	// e.g. "gtp-pdp".
	Name() string
	// SetEmit installs the function the engine calls with every change of
	// its table, in order, while it holds the lock under which it changes
	// the table (so the stream's order is the table's). emit only queues.
	SetEmit(emit func(op replicate.Op, payload []byte))
	// Snapshot emits every entry as an upsert record, holding that same
	// lock throughout (one chunk: engine tables are bounded by their own
	// limits, a few thousand entries at most).
	Snapshot(emit func(payload []byte))
	// Apply installs one record of the active's on the standby.
	Apply(op replicate.Op, payload []byte) error
	// Reset empties the table before a bulk sync refills it.
	Reset()
	// DigestLocked calls fn with the table's order-independent digest
	// while holding the lock under which the table changes, so the digest
	// matches the stream position the caller marks inside fn.
	DigestLocked(fn func(digest uint64))
}

// firstEngineTable is the first table id given to an engine table; the
// firewall's own tables stay below it.
const firstEngineTable = 32

// engineTable is a registered EngineTable with its stream id.
type engineTable struct {
	id uint8
	EngineTable
}

// AddEngineTable registers t to be replicated beside the firewall's tables,
// after them in bulk-sync order (an engine's entries may refer to
// connections, never the other way round). Call before Run.
func (u *Unit) AddEngineTable(t EngineTable) error {
	if len(u.engines) >= 256-firstEngineTable {
		return fmt.Errorf("too many engine tables")
	}
	for _, e := range u.engines {
		if e.Name() == t.Name() {
			return fmt.Errorf("engine table %q registered twice", t.Name())
		}
	}
	id := uint8(firstEngineTable + len(u.engines))
	u.engines = append(u.engines, engineTable{id: id, EngineTable: t})
	u.tables = append(u.tables, id)
	t.SetEmit(func(op replicate.Op, payload []byte) {
		if s := u.sender.Load(); s != nil {
			s.Emit(id, op, payload)
		}
	})
	return nil
}

// engine returns the engine table with stream id id.
func (u *Unit) engine(id uint8) (EngineTable, bool) {
	if id < firstEngineTable || int(id-firstEngineTable) >= len(u.engines) {
		return nil, false
	}
	return u.engines[id-firstEngineTable].EngineTable, true
}

// markEngineDigests adds each engine table's digest to d and calls mark
// while every engine's lock is held, nesting one engine inside the next.
func (u *Unit) markEngineDigests(i int, d map[uint8]uint64, mark func(map[uint8]uint64)) {
	if i == len(u.engines) {
		mark(d)
		return
	}
	e := u.engines[i]
	e.DigestLocked(func(v uint64) {
		d[e.id] = v
		u.markEngineDigests(i+1, d, mark)
	})
}
