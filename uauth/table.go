package uauth

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ASA defaults: "timeout uauth 0:05:00 absolute" is in every default
// running-config, and inactivity is off unless configured.
const (
	DefaultAbsolute   = 5 * time.Minute
	DefaultInactivity = 0
)

// ErrNoCaching is returned by New when both timeouts are zero. On the ASA
// "timeout uauth 0" disables the cache, and Cisco warns not to do that with
// virtual http: the redirect after a successful login would meet an empty
// table and ask again, forever.
var ErrNoCaching = errors.New("uauth: absolute and inactivity timeouts both 0 (no caching): the listener's redirect could never pass")

// Config configures cut-through proxy authentication. Start from
// DefaultConfig; zero fields of the limits get their defaults in New.
type Config struct {
	Rules        Rules  // the match ACL
	Users        []User // the LOCAL database
	ListenerPort uint16 // "aaa authentication listener http inside port N" (default 80)
	Realm        string // Basic realm (default "falab")

	Absolute   time.Duration // "timeout uauth H:MM:SS absolute"; 0 = off
	Inactivity time.Duration // "timeout uauth H:MM:SS inactivity"; 0 = off

	MaxFailures     int           // failures in a row before a source is refused (default 3)
	Backoff         time.Duration // first refusal period; doubles with each further failure (default 2s)
	MaxBackoff      time.Duration // cap of the refusal period (default 5m)
	MaxVerify       int           // argon2id verifications at once (default 2)
	MaxSources      int           // sources tracked as in progress or failing (default 4096)
	ProgressTimeout time.Duration // how long a challenged source counts as "in progress" (default 2m)

	// Now is the handler's clock (default time.Now); the table's methods
	// take the time as an argument.
	Now func() time.Time
}

// DefaultConfig returns the ASA's defaults.
func DefaultConfig() Config {
	return Config{ListenerPort: 80, Realm: "falab", Absolute: DefaultAbsolute, Inactivity: DefaultInactivity}
}

func (c *Config) fill() error {
	if c.Absolute < 0 || c.Inactivity < 0 {
		return fmt.Errorf("uauth: negative timeout")
	}
	if c.Absolute == 0 && c.Inactivity == 0 {
		return ErrNoCaching
	}
	seen := map[string]bool{}
	for _, u := range c.Users {
		if u.Name == "" || seen[u.Name] {
			return fmt.Errorf("uauth: user name %q empty or repeated", u.Name)
		}
		seen[u.Name] = true
		if err := u.Hash.check(); err != nil {
			return fmt.Errorf("uauth: user %s: %w", u.Name, err)
		}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxFailures, 3)
	def(&c.MaxVerify, 2)
	def(&c.MaxSources, 4096)
	defD(&c.Backoff, 2*time.Second)
	defD(&c.MaxBackoff, 5*time.Minute)
	defD(&c.ProgressTimeout, 2*time.Minute)
	if c.ListenerPort == 0 {
		c.ListenerPort = 80
	}
	if c.Realm == "" {
		c.Realm = "falab"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Entry is one authenticated source as listed. A zero deadline is off.
type Entry struct {
	User               string
	Addr               netip.Addr
	AuthenticatedAt    time.Time
	LastSeen           time.Time
	AbsoluteDeadline   time.Time
	InactivityDeadline time.Time
}

type entry struct {
	user     string
	addr     netip.Addr
	authAt   int64        // UnixNano
	absolute int64        // UnixNano deadline, 0 = none
	lastSeen atomic.Int64 // UnixNano; written under the read lock by Authorized
}

// Table is the uauth table plus the listener's per-source attempt state.
//
// Concurrency: all methods are safe for concurrent use. Authorized takes
// only the read lock of mu (it refreshes lastSeen atomically), so checks
// from many data-plane workers do not serialise; recording, clearing and
// expiring take the write lock. The listener's attempt state has its own
// lock (amu) so logins never block the data path.
type Table struct {
	cfg    Config
	users  map[string]*User
	verify chan struct{} // semaphore of MaxVerify slots

	mu       sync.RWMutex
	entries  map[netip.Addr]*entry // guarded by mu
	mostSeen int                   // guarded by mu

	amu            sync.Mutex
	attempts       map[netip.Addr]*attempt // guarded by amu
	mostInProgress int                     // guarded by amu
	stats          Stats                   // guarded by amu
}

// attempt is a source that was challenged or failed and has not yet
// authenticated.
type attempt struct {
	challenged   int64 // UnixNano of the last 401 challenge, 0 = none outstanding
	failures     int   // bad credentials in a row
	blockedUntil int64 // UnixNano
	last         int64 // UnixNano of the last request
}

// Stats counts the listener's outcomes.
type Stats struct {
	Challenges  uint64 // 401 for a request without credentials
	Successes   uint64 // good credentials, entry recorded
	Failures    uint64 // 401 for bad credentials
	Refused     uint64 // 429 while a source is backing off
	Busy        uint64 // 503 because MaxVerify verifications were running
	BadRequests uint64 // 400: no usable source address or Host
	Expired     uint64 // entries removed by Expire
	Cleared     uint64 // entries removed by Clear*
}

// New returns an empty table for cfg.
func New(cfg Config) (*Table, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	t := &Table{cfg: cfg, users: make(map[string]*User, len(cfg.Users)),
		verify:  make(chan struct{}, cfg.MaxVerify),
		entries: make(map[netip.Addr]*entry), attempts: make(map[netip.Addr]*attempt)}
	for i := range cfg.Users {
		t.users[cfg.Users[i].Name] = &cfg.Users[i]
	}
	return t, nil
}

// Config returns the table's configuration with defaults filled in.
func (t *Table) Config() Config { return t.cfg }

// Match reports whether a new connection needs an authenticated source
// (the match ACL).
func (t *Table) Match(proto uint8, src, dst netip.Addr, dstPort uint16) bool {
	return t.cfg.Rules.Match(proto, src, dst, dstPort)
}

// Authorized reports whether src has a live entry at now, and if so
// refreshes its inactivity timer. The caller asks it for each new
// connection the match ACL selects; it allocates nothing. The ASA's
// inactivity timer runs only while the user has no connection open, so a
// caller that wants that may also call it for the user's open connections'
// packets (about 40 ns each) to keep the timer from running.
func (t *Table) Authorized(src netip.Addr, now time.Time) bool {
	t.mu.RLock()
	e := t.entries[src]
	t.mu.RUnlock()
	if e == nil {
		return false
	}
	n := now.UnixNano()
	if !t.live(e, n) {
		return false
	}
	if last := e.lastSeen.Load(); n > last {
		e.lastSeen.CompareAndSwap(last, n) // a lost race stores a time as recent
	}
	return true
}

func (t *Table) live(e *entry, n int64) bool {
	if e.absolute != 0 && n >= e.absolute {
		return false
	}
	if in := int64(t.cfg.Inactivity); in != 0 && n-e.lastSeen.Load() >= in {
		return false
	}
	return true
}

// Record adds or replaces the entry of addr for user at now. The handler
// calls it after good credentials.
func (t *Table) Record(user string, addr netip.Addr, now time.Time) {
	n := now.UnixNano()
	e := &entry{user: user, addr: addr, authAt: n}
	if t.cfg.Absolute != 0 {
		e.absolute = n + int64(t.cfg.Absolute)
	}
	e.lastSeen.Store(n)
	t.mu.Lock()
	t.entries[addr] = e
	t.mostSeen = max(t.mostSeen, len(t.entries))
	t.mu.Unlock()
}

// Clear removes addr's entry ("clear uauth" for one host) and reports
// whether there was one.
func (t *Table) Clear(addr netip.Addr) bool {
	t.mu.Lock()
	_, ok := t.entries[addr]
	delete(t.entries, addr)
	t.mu.Unlock()
	if ok {
		t.count(func(s *Stats) { s.Cleared++ })
	}
	return ok
}

// ClearUser removes every entry of user ("clear uauth USER") and returns
// how many.
func (t *Table) ClearUser(user string) int {
	return t.removeIf(func(e *entry) bool { return e.user == user }, func(s *Stats, n int) { s.Cleared += uint64(n) })
}

// ClearAll empties the table ("clear uauth") and returns how many entries
// it removed.
func (t *Table) ClearAll() int {
	return t.removeIf(func(*entry) bool { return true }, func(s *Stats, n int) { s.Cleared += uint64(n) })
}

// Expire removes the entries past a deadline at now and forgets sources
// whose attempts are older than the progress timeout and not backing off.
// It returns how many entries it removed.
func (t *Table) Expire(now time.Time) int {
	n := now.UnixNano()
	removed := t.removeIf(func(e *entry) bool { return !t.live(e, n) }, func(s *Stats, k int) { s.Expired += uint64(k) })
	t.amu.Lock()
	for a, at := range t.attempts {
		if n >= at.blockedUntil && n-at.last >= int64(t.cfg.ProgressTimeout) {
			delete(t.attempts, a)
		}
	}
	t.amu.Unlock()
	return removed
}

func (t *Table) removeIf(drop func(*entry) bool, account func(*Stats, int)) int {
	t.mu.Lock()
	k := 0
	for a, e := range t.entries {
		if drop(e) {
			delete(t.entries, a)
			k++
		}
	}
	t.mu.Unlock()
	if k > 0 {
		t.count(func(s *Stats) { account(s, k) })
	}
	return k
}

func (t *Table) count(f func(*Stats)) {
	t.amu.Lock()
	f(&t.stats)
	t.amu.Unlock()
}

// Len returns the number of entries (live or not yet expired).
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.entries)
}

// Entries returns the entries sorted by address.
func (t *Table) Entries() []Entry {
	inact := int64(t.cfg.Inactivity)
	t.mu.RLock()
	out := make([]Entry, 0, len(t.entries))
	for _, e := range t.entries {
		last := e.lastSeen.Load()
		x := Entry{User: e.user, Addr: e.addr, AuthenticatedAt: time.Unix(0, e.authAt), LastSeen: time.Unix(0, last)}
		if e.absolute != 0 {
			x.AbsoluteDeadline = time.Unix(0, e.absolute)
		}
		if inact != 0 {
			x.InactivityDeadline = time.Unix(0, last+inact)
		}
		out = append(out, x)
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int { return a.Addr.Compare(b.Addr) })
	return out
}

// Stats returns the listener's counters.
func (t *Table) Stats() Stats {
	t.amu.Lock()
	defer t.amu.Unlock()
	return t.stats
}

// inProgress counts challenged sources within the progress timeout at n;
// the caller holds amu.
func (t *Table) inProgress(n int64) int {
	k := 0
	for _, a := range t.attempts {
		if a.challenged != 0 && n-a.challenged < int64(t.cfg.ProgressTimeout) {
			k++
		}
	}
	return k
}
