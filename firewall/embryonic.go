package firewall

import (
	"net/netip"
	"sync"

	"github.com/falab/falab/firewall/header"
)

// Embryonic (half-open) TCP connection limits, as the ASA's "set
// connection embryonic-conn-max" and "per-client-embryonic-max": a SYN
// flood, spoofed or from real inside hosts, creates a connection (and
// often a PAT xlate) per SYN that nobody completes. Limits.EmbryonicMax
// and Limits.EmbryonicPerClient bound how many such connections exist at
// once, in total and per initiator; a SYN beyond either is dropped
// (embryonic-limit) before it takes a PAT port, so that the flood's
// memory stays bounded and the established connections of other hosts
// are untouched. Half-open connections idle out after
// Timeouts.Embryonic (30 s; see connTimeout).
//
// The counts follow the connection table's one way of creating, changing
// and deleting a connection (insertConn, setConnStateLocked, deleteConn;
// local or applied), so that they stay exact without hooks in the TCP
// tracker and are right on a standby the moment it takes over. Only the admission check is on the
// packet path, once per new TCP flow.
//
// TCP intercept (answering SYNs beyond the limit with SYN cookies) is not
// implemented: beyond the limit SYNs are dropped.

// embryonicTable counts the half-open TCP connections.
//
// Which connections are counted is each connection's own flagHalfOpen
// (no map of them: a SYN flood's connections cost nothing more here).
//
// Lock order: embryonicTable.mu is a leaf, taken under a connection's own
// lock and alone by admitEmbryonic.
type embryonicTable struct {
	mu      sync.Mutex
	total   int             // guarded by mu: half-open connections
	perHost map[[4]byte]int // guarded by mu: half-open connections per initiator
}

func (t *embryonicTable) init() {
	t.perHost = make(map[[4]byte]int)
}

func isEmbryonic(st TCPState) bool { return st == TCPStateSynSent || st == TCPStateSynReceived }

// observe counts c in or out after a change: half-open while it is a TCP
// connection in the table in SYN_SENT or SYN_RCVD. Caller holds c.mu.
func (t *embryonicTable) observe(c *conn) {
	if c.orig.Proto != header.ProtocolTCP {
		return
	}
	st, _ := c.tcpState()
	half := !c.dead() && isEmbryonic(st)
	if half == (c.flags&flagHalfOpen != 0) {
		return
	}
	c.setFlag(flagHalfOpen, half)
	t.mu.Lock()
	defer t.mu.Unlock()
	src := c.orig.Src
	if half {
		t.total++
		t.perHost[src]++
		return
	}
	t.total--
	if t.perHost[src]--; t.perHost[src] <= 0 {
		delete(t.perHost, src)
	}
}

// admitEmbryonic reports whether initiator src may open one more
// half-open TCP connection. Readers that admit SYNs at the same moment
// may overshoot a limit by one each; the bound still holds within the
// number of readers.
func (f *Firewall) admitEmbryonic(src [4]byte) bool {
	l := &f.limits
	if l.embryonicMax == 0 && l.embryonicPerClient == 0 {
		return true
	}
	t := &f.embryonic
	t.mu.Lock()
	defer t.mu.Unlock()
	if l.embryonicMax > 0 && t.total >= l.embryonicMax {
		return false
	}
	return l.embryonicPerClient == 0 || t.perHost[src] < l.embryonicPerClient
}

// EmbryonicCounts are the half-open TCP connection counts and limits.
type EmbryonicCounts struct {
	Total        int                `json:"total"`
	Max          int                `json:"max"`            // 0: no limit
	PerClientMax int                `json:"per_client_max"` // 0: no limit
	Clients      map[netip.Addr]int `json:"clients"`        // per initiator with any
}

// EmbryonicCounts returns the half-open TCP connections in total and per
// initiator, with the limits that apply to them.
func (f *Firewall) EmbryonicCounts() EmbryonicCounts {
	t := &f.embryonic
	t.mu.Lock()
	defer t.mu.Unlock()
	out := EmbryonicCounts{Total: t.total, Max: f.limits.embryonicMax, PerClientMax: f.limits.embryonicPerClient,
		Clients: make(map[netip.Addr]int, len(t.perHost))}
	for h, n := range t.perHost {
		out.Clients[netip.AddrFrom4(h)] = n
	}
	return out
}
