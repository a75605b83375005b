package unit

import (
	"github.com/falab/falab/api"
	"log/slog"
	"sync"
	"time"
)

// Event is one entry of a unit's timeline (the API's form).
type Event = api.Event

// eventLogSize bounds the timeline kept in memory; older events are in the
// unit's log file.
const eventLogSize = 4096

// EventLog is a bounded, sequence-numbered timeline. Safe for concurrent use.
type EventLog struct {
	unit string
	log  *slog.Logger

	mu     sync.Mutex
	events []Event // ring, guarded by mu
	next   uint64  // sequence of the next event, guarded by mu
	wake   chan struct{}
}

// NewEventLog makes an empty timeline for unit that also logs each event.
func NewEventLog(unit string, log *slog.Logger) *EventLog {
	return &EventLog{unit: unit, log: log, next: 1, wake: make(chan struct{})}
}

// Add appends an event stamped now.
func (l *EventLog) Add(kind, msg string) Event {
	return l.AddAt(time.Now(), kind, msg)
}

// AddAt appends an event with the given time.
func (l *EventLog) AddAt(t time.Time, kind, msg string) Event {
	l.mu.Lock()
	e := Event{Seq: l.next, Time: t, Unit: l.unit, Kind: kind, Msg: msg}
	l.next++
	if len(l.events) < eventLogSize {
		l.events = append(l.events, e)
	} else {
		l.events[int(e.Seq-1)%eventLogSize] = e
	}
	wake := l.wake
	l.wake = make(chan struct{})
	l.mu.Unlock()
	close(wake)
	if l.log != nil {
		l.log.Info(msg, "event", kind, "t", t.Format("15:04:05.000"))
	}
	return e
}

// Since returns the events after seq, oldest first, and a channel closed
// when a newer event arrives (for long polling).
func (l *EventLog) Since(seq uint64) ([]Event, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	first := uint64(1)
	if l.next > eventLogSize {
		first = l.next - eventLogSize
	}
	if seq+1 > first {
		first = seq + 1
	}
	for s := first; s < l.next; s++ {
		out = append(out, l.events[int(s-1)%eventLogSize])
	}
	return out, l.wake
}
