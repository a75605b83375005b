package uauth

import (
	"crypto/rand"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// Handler returns the listener: serve it on the net.Listener that the
// firewall steers unauthenticated matching connections to.
//
// Every answer carries "Cache-Control: no-store" (a browser must not cache
// a redirect from a URL to itself) and "Connection: close": the client must
// reach the real server on a new connection, which the firewall now passes,
// instead of reusing this one to the listener.
func (t *Table) Handler() http.Handler { return handler{t: t, dummy: dummyHash(t.cfg.Users)} }

type handler struct {
	t     *Table
	dummy Hash // verified for unknown user names, so they cost the same time
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := h.t
	now := t.cfg.Now()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Connection", "close")
	src, ok := sourceAddr(r)
	target, ok2 := OriginalURL(r)
	if !ok || !ok2 {
		t.count(func(s *Stats) { s.BadRequests++ })
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if wait := t.refusal(src, now); wait > 0 {
		t.count(func(s *Stats) { s.Refused++ })
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		http.Error(w, "too many failed attempts", http.StatusTooManyRequests)
		return
	}
	user, password, hasAuth := r.BasicAuth()
	if !hasAuth {
		t.challenge(src, now)
		h.unauthorized(w, "authentication required")
		return
	}
	select {
	case t.verify <- struct{}{}:
	default:
		t.count(func(s *Stats) { s.Busy++ })
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	good := h.check(user, password)
	<-t.verify
	if !good {
		t.fail(src, now)
		h.unauthorized(w, "bad user name or password")
		return
	}
	t.Record(user, src, now)
	t.succeed(src)
	http.Redirect(w, r, target, http.StatusFound)
}

func (h handler) unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+h.t.cfg.Realm+`"`)
	http.Error(w, msg, http.StatusUnauthorized)
}

func (h handler) check(user, password string) bool {
	u := h.t.users[user]
	if u == nil {
		h.dummy.Verify(password)
		return false
	}
	return u.Hash.Verify(password)
}

// dummyHash has the first user's cost and a random key no password gives.
func dummyHash(users []User) Hash {
	p := Params{Time: 1, Memory: 8, Threads: 1}
	if len(users) > 0 {
		p = users[0].Hash.Params
	}
	b := make([]byte, saltLen+keyLen)
	rand.Read(b)
	return Hash{Params: p, Salt: b[:saltLen], Key: b[saltLen:]}
}

// sourceAddr is the client's address: with the firewall steering the
// connection to the listener without source translation, it is the
// address the uauth entry must carry.
func sourceAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// OriginalURL rebuilds the URL the client asked for, as the ASA's virtual
// http does: the client addressed the real server, so its Host header and
// request path name it even though the firewall steered the connection to
// the listener. A missing or malformed Host fails: redirecting to a guess
// could send the user anywhere.
func OriginalURL(r *http.Request) (string, bool) {
	host := r.Host
	if host == "" || !validHost(host) {
		return "", false
	}
	path := r.URL.EscapedPath()
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	u := "http://" + host + path
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return u, true
}

// validHost accepts host names, IPv4 and bracketed IPv6 with an optional
// port: the characters of RFC 3986's reg-name that a redirect can carry
// without changing its meaning.
func validHost(h string) bool {
	if len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_':
		default:
			return false
		}
	}
	return true
}

// refusal returns how long src must still wait after too many failures.
func (t *Table) refusal(src netip.Addr, now time.Time) time.Duration {
	t.amu.Lock()
	defer t.amu.Unlock()
	a := t.attempts[src]
	if a == nil {
		return 0
	}
	if d := a.blockedUntil - now.UnixNano(); d > 0 {
		return time.Duration(d)
	}
	return 0
}

func (t *Table) challenge(src netip.Addr, now time.Time) {
	t.amu.Lock()
	defer t.amu.Unlock()
	a := t.attempt(src, now)
	a.challenged = now.UnixNano()
	t.stats.Challenges++
	t.mostInProgress = max(t.mostInProgress, t.inProgress(now.UnixNano()))
}

// fail counts a bad password; from the MaxFailures-th failure in a row on,
// the source is refused for Backoff, doubled for each further failure.
func (t *Table) fail(src netip.Addr, now time.Time) {
	t.amu.Lock()
	defer t.amu.Unlock()
	a := t.attempt(src, now)
	a.failures++
	t.stats.Failures++
	if over := a.failures - t.cfg.MaxFailures; over >= 0 {
		d := t.cfg.Backoff << min(over, 30)
		if d <= 0 || d > t.cfg.MaxBackoff {
			d = t.cfg.MaxBackoff
		}
		a.blockedUntil = now.UnixNano() + int64(d)
	}
}

func (t *Table) succeed(src netip.Addr) {
	t.amu.Lock()
	defer t.amu.Unlock()
	delete(t.attempts, src)
	t.stats.Successes++
}

// attempt returns src's attempt state, making room by forgetting the
// least recently active source when MaxSources are tracked. The caller
// holds amu.
func (t *Table) attempt(src netip.Addr, now time.Time) *attempt {
	n := now.UnixNano()
	a := t.attempts[src]
	if a == nil {
		if len(t.attempts) >= t.cfg.MaxSources {
			var oldest netip.Addr
			var oldestAt int64
			for k, v := range t.attempts {
				if !oldest.IsValid() || v.last < oldestAt {
					oldest, oldestAt = k, v.last
				}
			}
			delete(t.attempts, oldest)
		}
		a = &attempt{}
		t.attempts[src] = a
	}
	a.last = n
	return a
}
