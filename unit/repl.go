package unit

import (
	"fmt"

	"github.com/falab/falab/firewall"
	"github.com/falab/falab/replicate"
)

// snapshotChunk bounds the records one Snapshot call emits, well under the
// sender's queue limit, so the sender can drain between chunks.
const snapshotChunk = 512

// fwSource adapts the firewall's tables to replicate.Source (the active).
type fwSource struct{ u *Unit }

var _ replicate.Source = fwSource{}

// Snapshot emits one chunk of table t from cursor on. The firewall emits
// each entry under that entry's own lock, the same lock under which it
// reports the entry's changes, so the records about one key enter the
// stream in the order its changes happened (see replicate's correctness
// argument).
func (s fwSource) Snapshot(table uint8, cursor uint64, emit func(payload []byte)) (uint64, bool, error) {
	if e, ok := s.u.engine(table); ok {
		e.Snapshot(emit)
		return 1, true, nil
	}
	var buf [512]byte
	next, done := s.u.fw.SnapshotChunk(firewall.Table(table), cursor, snapshotChunk, func(c firewall.Change) {
		emit(c.AppendBinary(buf[:0]))
	})
	return next, done, nil
}

// MarkDigests pairs the firewall's digests with the sender's stream
// position under the firewall's change lock.
func (s fwSource) MarkDigests(mark func(map[uint8]uint64)) {
	s.u.fw.DigestsLocked(func(d map[firewall.Table]uint64) {
		m := make(map[uint8]uint64, len(d)+len(s.u.engines))
		for t, v := range d {
			m[uint8(t)] = v
		}
		s.u.markEngineDigests(0, m, mark)
	})
}

// fwStore applies the stream to the standby's firewall, through the same
// table methods the packet path uses.
type fwStore struct{ u *Unit }

var _ replicate.Store = fwStore{}

func (s fwStore) Reset(table uint8) error {
	if e, ok := s.u.engine(table); ok {
		e.Reset()
		return nil
	}
	return s.u.fw.ResetTable(firewall.Table(table))
}

func (s fwStore) Apply(table uint8, op replicate.Op, payload []byte) error {
	if e, ok := s.u.engine(table); ok {
		return e.Apply(op, payload)
	}
	c, err := firewall.ParseChange(payload)
	if err != nil {
		return err
	}
	if uint8(c.Table) != table {
		return fmt.Errorf("record for table %s arrived as table %s", c.Table, s.u.tableName(table))
	}
	return s.u.fw.ApplyChange(c)
}

func (s fwStore) Digests() map[uint8]uint64 {
	m := make(map[uint8]uint64, len(s.u.tables))
	for _, t := range s.u.tables {
		if e, ok := s.u.engine(t); ok {
			e.DigestLocked(func(v uint64) { m[t] = v })
			continue
		}
		m[t] = s.u.fw.Digest(firewall.Table(t))
	}
	return m
}
