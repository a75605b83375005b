// Package busyloop lets a goroutine that never blocks share a unit's one
// P with the goroutines that wait for sockets: Yield runs them, those
// whose sockets became ready included. A unit's data-plane readers and
// the standby's replication reader are such goroutines while their
// input never runs dry.
//
// It must not import any falab package.
package busyloop

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// PollInterval is how long, at most, a busy loop that yields lets pass
// between two polls of the network it forces.
const PollInterval = 250 * time.Microsecond

// poller forces the runtime to poll the network at most every
// PollInterval (yield).
type poller struct {
	last atomic.Int64 // when yield last forced a poll, in ns of monoNow
}

var (
	// processPoller is the process's poller: one, as the runtime's
	// network poller is.
	processPoller poller
	// pollMemStats is ReadMemStats' output, kept so a poll allocates
	// nothing (the struct is 5 KB); pollMu guards it.
	pollMemStats runtime.MemStats
	pollMu       sync.Mutex
	clockStart   = time.Now()
)

// monoNow is the monotonic clock in nanoseconds since the package loaded.
func monoNow() int64 { return int64(time.Since(clockStart)) }

// Due reports whether PollInterval has passed since the last forced poll:
// a loop that yields only when its batch was full, or when a poll is due,
// pays one clock read a pass. A loop whose every read finds a little input
// never blocks either, so it must not yield on full batches only.
func Due() bool {
	return monoNow()-processPoller.last.Load() >= int64(PollInterval)
}

// Yield lets the other goroutines run, forcing a poll of the network
// first when one is due.
//
// runtime.Gosched alone runs the goroutines that are ready, but a
// goroutine waiting for a socket (the failover hellos, the active's acks,
// the replication stream) becomes ready only when the runtime polls the
// network, and with its one P busy it polls only when the P finds nothing
// else to run, or from its monitor thread every 10 ms. Behind two
// data-plane readers that never parked, that was every 10 ms: under a
// saturated connection rate the replication lag had a median of 5 ms and
// a p99 of 13-15 ms, the active's hellos were read 4-4.6 ms late
// (median), since each waited for the next poll.
func Yield() { processPoller.yield(monoNow()) }

// yield is Yield at time now (monoNow).
func (p *poller) yield(now int64) {
	if last := p.last.Load(); now-last >= int64(PollInterval) &&
		p.last.CompareAndSwap(last, now) {
		pollNetwork()
	}
	runtime.Gosched()
}

// pollNetwork makes the runtime poll the network now, so the goroutines
// whose sockets became ready run at the Gosched that follows. The runtime
// has no call for that; it polls whenever it starts the world after
// stopping it (startTheWorldWithSema), and ReadMemStats is the cheapest
// public call that stops it: about 1.6 µs with one P. With more Ps the
// stop costs more (about 21 µs with two) and is not needed: an idle P
// polls the network itself. TestYieldPollsNetwork fails if a Go release
// stops polling there.
func pollNetwork() {
	if runtime.GOMAXPROCS(0) > 1 || !pollMu.TryLock() {
		return
	}
	runtime.ReadMemStats(&pollMemStats)
	pollMu.Unlock()
}
