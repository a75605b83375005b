package tui

import "time"

// A unit that stops answering (frozen, killed, or its API hung) leaves its
// last data on screen until a read of it fails or times out, seconds
// later for a table. That data must never look live: a unit whose status
// read fails is stale from the last time it answered, and every table
// shown from it says so above its rows, dims them (when the active's
// side is stale) and shows ? for its ✓ ✗ + marks, without "in step": a
// comparison with old data proves nothing.

// staleNote is "fw-a: stale since 12:00:03 (not answering)" for a unit
// that does not answer now, "" for one that does (or never answered).
func (m *Model) staleNote(unit string) string {
	for i := range m.units {
		u := &m.units[i]
		if u.name != unit || u.ok || u.staleSince.IsZero() {
			continue
		}
		return unit + ": stale since " + u.staleSince.In(m.loc).Format(time.TimeOnly) + " (not answering)"
	}
	return ""
}

// markStale tells a table tab which of its two sides came from a unit
// that no longer answers.
func (m *Model) markStale(t *tableTab) {
	t.staleActive, t.staleStandby = "", ""
	if !t.loaded {
		return
	}
	// A standby whose read failed has no rows here, but the note stays:
	// it says since when, which "no answer" in the summary does not.
	t.staleActive = m.staleNote(t.data.active)
	if t.data.standby != "" {
		t.staleStandby = m.staleNote(t.data.standby)
	}
}

// staleLines is how many stale notes the tab shows above its rows.
func (t *tableTab) staleLines() int {
	n := 0
	if t.staleActive != "" {
		n++
	}
	if t.staleStandby != "" {
		n++
	}
	return n
}
