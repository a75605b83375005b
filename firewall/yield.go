package firewall

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// networkPollInterval is how long, at most, a reader whose ring never
// empties lets pass between two polls of the network it forces (yield).
const networkPollInterval = 250 * time.Microsecond

// networkPoller forces the runtime to poll the network at most every
// networkPollInterval (yield).
type networkPoller struct {
	last atomic.Int64 // when yield last forced a poll, in ns of monoNow
}

var (
	// processPoller is the readers' poller: one per process, as the
	// runtime's network poller is.
	processPoller networkPoller
	// pollMemStats is ReadMemStats' output, kept so a poll allocates
	// nothing (the struct is 5 KB); pollMu guards it.
	pollMemStats runtime.MemStats
	pollMu       sync.Mutex
	clockStart   = time.Now()
)

// monoNow is the monotonic clock in nanoseconds since the package loaded.
func monoNow() int64 { return int64(time.Since(clockStart)) }

// yieldBetweenBatches lets the unit's other goroutines run after a batch
// of n frames (of at most batch). A reader whose ring never empties never
// blocks, and a unit runs its Go code on one CPU
// (labfile.DefaultUnitCPUs): without a yield its hello timers and
// replication sender would wait for the runtime's preemption, about 10
// ms, behind a saturated data path. It yields after a full batch, and
// after any batch once a poll interval has passed: a reader that finds a
// few frames at every read never blocks either.
func yieldBetweenBatches(n, batch int) {
	now := monoNow()
	if n == batch || now-processPoller.last.Load() >= int64(networkPollInterval) {
		processPoller.yield(now)
	}
}

// yield is yieldBetweenBatches' work at time now (monoNow). runtime.Gosched
// alone runs the goroutines that are ready, but a goroutine waiting for
// a socket (the failover hellos, the standby's acks, the replication
// stream when its send buffer was full) becomes ready only when the
// runtime polls the network, and with one P busy it polls only when the
// P finds nothing else to run, or from its monitor thread every 10 ms.
// Behind two readers that never park, that was every 10 ms: the
// replication lag under a saturated connection rate had a median of 5 ms
// and a p99 of 13-15 ms, since an ack waited for the next poll. So every
// networkPollInterval a yield forces a poll first.
func (p *networkPoller) yield(now int64) {
	if last := p.last.Load(); now-last >= int64(networkPollInterval) &&
		p.last.CompareAndSwap(last, now) {
		pollNetwork()
	}
	runtime.Gosched()
}

// pollNetwork makes the runtime poll the network now, so the goroutines
// whose sockets became ready run at the Gosched that follows. The runtime
// has no call for that; it polls whenever it starts the world after
// stopping it (startTheWorldWithSema), and ReadMemStats is the cheapest
// public call that stops the world: about 1.6 µs with one P. With more
// Ps the stop costs more (about 21 µs with two) and is not needed: an
// idle P polls the network itself. TestYieldPollsNetwork fails if a Go
// release stops polling there.
func pollNetwork() {
	if runtime.GOMAXPROCS(0) > 1 || !pollMu.TryLock() {
		return
	}
	runtime.ReadMemStats(&pollMemStats)
	pollMu.Unlock()
}
