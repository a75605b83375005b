package uauth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cheap keeps tests fast; real users get DefaultParams.
var cheap = Params{Time: 1, Memory: 64, Threads: 1}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) Advance(d time.Duration) { c.now = c.now.Add(d) }

func mustUser(t testing.TB, name, password string) User {
	t.Helper()
	h, err := HashPassword(password, cheap)
	if err != nil {
		t.Fatal(err)
	}
	return User{Name: name, Hash: h}
}

func newTable(t testing.TB, mod func(*Config)) (*Table, *clock) {
	t.Helper()
	clk := &clock{now: t0}
	cfg := DefaultConfig()
	cfg.Users = []User{mustUser(t, "alice", "s3cret")}
	cfg.Now = clk.Now
	if mod != nil {
		mod(&cfg)
	}
	tb, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tb, clk
}

var (
	client  = netip.MustParseAddr("198.18.1.11")
	client2 = netip.MustParseAddr("198.18.1.12")
)

func TestHashRoundTrip(t *testing.T) {
	h, err := HashPassword("pw", cheap)
	if err != nil {
		t.Fatal(err)
	}
	s := h.String()
	if !strings.HasPrefix(s, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash string %q", s)
	}
	g, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Verify("pw") || g.Verify("pW") || g.Verify("") {
		t.Fatal("Verify of the parsed hash is wrong")
	}
	for _, bad := range []string{"", "pw", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", // not argon2id
		"$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", // 4 GiB per attempt
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5"} {
		if _, err := ParseHash(bad); !errors.Is(err, ErrBadHash) {
			t.Errorf("ParseHash(%q) = %v, want ErrBadHash", bad, err)
		}
	}
}

func TestRulesMatch(t *testing.T) {
	rs := Rules{{Proto: ProtoTCP, Src: netip.MustParsePrefix("198.18.1.0/24"), DstPort: 80}}
	dst := netip.MustParseAddr("203.0.113.5")
	for _, c := range []struct {
		proto uint8
		src   netip.Addr
		port  uint16
		want  bool
	}{
		{ProtoTCP, client, 80, true},
		{ProtoUDP, client, 80, false},
		{ProtoTCP, client, 443, false},
		{ProtoTCP, netip.MustParseAddr("198.18.2.1"), 80, false},
	} {
		if got := rs.Match(c.proto, c.src, dst, c.port); got != c.want {
			t.Errorf("Match(%d, %s, %d) = %v", c.proto, c.src, c.port, got)
		}
	}
	if (Rules{}).Match(ProtoTCP, client, dst, 80) {
		t.Error("an empty ACL matched")
	}
}

func TestNoCachingRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Absolute = 0
	if _, err := New(cfg); !errors.Is(err, ErrNoCaching) {
		t.Fatalf("New with both timeouts 0 = %v", err)
	}
}

func TestAbsoluteTimeout(t *testing.T) {
	tb, _ := newTable(t, nil)
	tb.Record("alice", client, t0)
	if !tb.Authorized(client, t0.Add(4*time.Minute)) {
		t.Fatal("not authorized within the absolute timeout")
	}
	// Activity does not extend an absolute timeout.
	if tb.Authorized(client, t0.Add(5*time.Minute)) {
		t.Fatal("authorized at the absolute deadline")
	}
	if n := tb.Expire(t0.Add(5 * time.Minute)); n != 1 || tb.Len() != 0 {
		t.Fatalf("Expire removed %d, %d left", n, tb.Len())
	}
}

func TestInactivityTimeout(t *testing.T) {
	tb, _ := newTable(t, func(c *Config) { c.Absolute, c.Inactivity = 0, time.Minute })
	tb.Record("alice", client, t0)
	// Each check within a minute of the last keeps the entry alive.
	for i := 1; i <= 5; i++ {
		if !tb.Authorized(client, t0.Add(time.Duration(i)*50*time.Second)) {
			t.Fatalf("check %d: not authorized though active", i)
		}
	}
	last := t0.Add(250 * time.Second)
	if got := tb.Entries()[0].InactivityDeadline; !got.Equal(last.Add(time.Minute)) {
		t.Fatalf("inactivity deadline %v, want %v", got, last.Add(time.Minute))
	}
	if tb.Expire(last.Add(59*time.Second)) != 0 {
		t.Fatal("expired while active")
	}
	if tb.Authorized(client, last.Add(time.Minute)) {
		t.Fatal("authorized after a minute idle")
	}
	if tb.Expire(last.Add(time.Minute)) != 1 {
		t.Fatal("idle entry not expired")
	}
}

func TestClear(t *testing.T) {
	tb, _ := newTable(t, nil)
	tb.Record("alice", client, t0)
	tb.Record("bob", client2, t0)
	if !tb.Clear(client) || tb.Clear(client) || tb.Authorized(client, t0) || !tb.Authorized(client2, t0) {
		t.Fatal("Clear(addr) did not remove exactly that entry")
	}
	tb.Record("alice", client, t0)
	if n := tb.ClearUser("bob"); n != 1 || tb.Authorized(client2, t0) {
		t.Fatalf("ClearUser removed %d", n)
	}
	if n := tb.ClearAll(); n != 1 || tb.Len() != 0 {
		t.Fatalf("ClearAll removed %d", n)
	}
	if s := tb.Stats(); s.Cleared != 3 {
		t.Fatalf("Cleared = %d", s.Cleared)
	}
}

func TestAuthorizedAllocatesNothing(t *testing.T) {
	tb, _ := newTable(t, nil)
	tb.Record("alice", client, t0)
	now := t0.Add(time.Second)
	if a := testing.AllocsPerRun(1000, func() {
		if !tb.Authorized(client, now) || tb.Authorized(client2, now) {
			t.Fatal("wrong answer")
		}
	}); a != 0 {
		t.Fatalf("Authorized allocates %v per call", a)
	}
}

func request(target, remote, user, password string) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	r.RemoteAddr = remote
	if user != "" {
		r.SetBasicAuth(user, password)
	}
	return r
}

func serve(h http.Handler, r *http.Request) *http.Response {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func TestHandler(t *testing.T) {
	tb, _ := newTable(t, nil)
	h := tb.Handler()
	const target = "http://203.0.113.5/files/big.bin?x=1"

	res := serve(h, request(target, "198.18.1.11:40000", "", ""))
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") != `Basic realm="falab"` {
		t.Fatalf("no credentials: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	if tb.Authorized(client, t0) {
		t.Fatal("authorized after a bare challenge")
	}

	res = serve(h, request(target, "198.18.1.11:40001", "alice", "wrong"))
	if res.StatusCode != http.StatusUnauthorized || tb.Authorized(client, t0) {
		t.Fatalf("bad password: %d", res.StatusCode)
	}
	res = serve(h, request(target, "198.18.1.11:40002", "mallory", "s3cret"))
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown user: %d", res.StatusCode)
	}

	res = serve(h, request(target, "198.18.1.11:40003", "alice", "s3cret"))
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != target {
		t.Fatalf("good credentials: %d Location %q, want 302 %q", res.StatusCode, res.Header.Get("Location"), target)
	}
	if res.Header.Get("Connection") != "close" || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("the redirect must close the connection and not be cached")
	}
	if !tb.Authorized(client, t0) || tb.Authorized(client2, t0) {
		t.Fatal("entry not recorded for exactly the request's source")
	}
	want := []Entry{{User: "alice", Addr: client, AuthenticatedAt: t0, LastSeen: t0, AbsoluteDeadline: t0.Add(5 * time.Minute)}}
	if d := cmp.Diff(want, tb.Entries(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Fatalf("entries (-want +got):\n%s", d)
	}
	if s := tb.Stats(); s.Challenges != 1 || s.Failures != 2 || s.Successes != 1 {
		t.Fatalf("stats %+v", s)
	}

	// A request without a usable Host gets no redirect to a guess.
	r := request(target, "198.18.1.12:1", "alice", "s3cret")
	r.Host = "evil.example/x"
	if res = serve(h, r); res.StatusCode != http.StatusBadRequest || tb.Authorized(client2, t0) {
		t.Fatalf("bad Host: %d", res.StatusCode)
	}
}

func TestOriginalURL(t *testing.T) {
	for _, c := range []struct{ target, want string }{
		{"http://203.0.113.5/", "http://203.0.113.5/"},
		{"http://www.example.com:8080/a%20b/c?q=1&r=2", "http://www.example.com:8080/a%20b/c?q=1&r=2"},
		{"http://[2001:db8::1]/x", "http://[2001:db8::1]/x"},
	} {
		got, ok := OriginalURL(httptest.NewRequest("GET", c.target, nil))
		if !ok || got != c.want {
			t.Errorf("OriginalURL(%s) = %q %v, want %q", c.target, got, ok, c.want)
		}
	}
}

func TestBruteForceBackoff(t *testing.T) {
	tb, clk := newTable(t, func(c *Config) { c.MaxFailures, c.Backoff, c.MaxBackoff = 3, 2*time.Second, 5*time.Second })
	h := tb.Handler()
	bad := func(remote string) int {
		return serve(h, request("http://203.0.113.5/", remote, "alice", "guess")).StatusCode
	}
	for i := 0; i < 3; i++ {
		if c := bad("198.18.1.11:1"); c != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, c)
		}
	}
	// Three failures: refused for 2s, even with the right password.
	res := serve(h, request("http://203.0.113.5/", "198.18.1.11:2", "alice", "s3cret"))
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "2" {
		t.Fatalf("while backing off: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	// Another source is not affected.
	if c := bad("198.18.1.12:1"); c != http.StatusUnauthorized {
		t.Fatalf("other source: %d", c)
	}
	clk.Advance(2 * time.Second)
	if c := bad("198.18.1.11:3"); c != http.StatusUnauthorized {
		t.Fatalf("after the backoff: %d", c)
	}
	// The fourth failure doubles the refusal (4s), the fifth hits the cap (5s).
	clk.Advance(3 * time.Second)
	if c := bad("198.18.1.11:4"); c != http.StatusTooManyRequests {
		t.Fatalf("3s into a 4s backoff: %d", c)
	}
	clk.Advance(time.Second)
	bad("198.18.1.11:5")
	res = serve(h, request("http://203.0.113.5/", "198.18.1.11:6", "alice", "s3cret"))
	if res.Header.Get("Retry-After") != "5" {
		t.Fatalf("capped backoff: Retry-After %q", res.Header.Get("Retry-After"))
	}
	clk.Advance(5 * time.Second)
	if res = serve(h, request("http://203.0.113.5/", "198.18.1.11:7", "alice", "s3cret")); res.StatusCode != http.StatusFound {
		t.Fatalf("good password after the backoff: %d", res.StatusCode)
	}
	if s := tb.Stats(); s.Refused != 3 || s.Failures != 6 {
		t.Fatalf("stats %+v", s)
	}
}

func TestVerifySemaphore(t *testing.T) {
	tb, _ := newTable(t, func(c *Config) { c.MaxVerify = 1 })
	tb.verify <- struct{}{} // a verification in progress
	res := serve(tb.Handler(), request("http://203.0.113.5/", "198.18.1.11:1", "alice", "s3cret"))
	if res.StatusCode != http.StatusServiceUnavailable || tb.Stats().Busy != 1 {
		t.Fatalf("with the semaphore full: %d", res.StatusCode)
	}
}

func TestAttemptsBounded(t *testing.T) {
	tb, clk := newTable(t, func(c *Config) { c.MaxSources = 4 })
	h := tb.Handler()
	for i := 0; i < 20; i++ {
		clk.Advance(time.Millisecond)
		serve(h, request("http://203.0.113.5/", netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 1).String(), "", ""))
	}
	if n := len(tb.attempts); n != 4 {
		t.Fatalf("%d sources tracked, limit 4", n)
	}
}

func TestShow(t *testing.T) {
	tb, _ := newTable(t, nil)
	serve(tb.Handler(), request("http://203.0.113.5/", "198.18.1.12:1", "", ""))
	tb.Record("alice", client, t0)
	var b strings.Builder
	if err := tb.Show(&b, "", t0); err != nil {
		t.Fatal(err)
	}
	want := `                        Current    Most Seen
Authenticated Users       1          1
Authen In Progress        1          1
user 'alice' at 198.18.1.11, authenticated
   absolute   timeout: 0:05:00
   inactivity timeout: 0:00:00
`
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Fatalf("show uauth (-want +got):\n%s", d)
	}
	b.Reset()
	tb.Show(&b, "bob", t0.Add(3*time.Minute))
	if strings.Contains(b.String(), "alice") || !strings.Contains(b.String(), "Authen In Progress        0          1") {
		t.Fatalf("show uauth bob, after the progress timeout:\n%s", b.String())
	}
}

func BenchmarkAuthorized(b *testing.B) {
	tb, _ := newTable(b, nil)
	tb.Record("alice", client, t0)
	for b.Loop() {
		tb.Authorized(client, t0)
	}
}

// TestListenerOverTCP serves the handler on a real loopback listener, as
// the unit will: the redirect closes the connection, so the client's next
// request opens a new one (which the firewall would pass to the server).
func TestListenerOverTCP(t *testing.T) {
	tb, _ := newTable(t, nil)
	srv := httptest.NewServer(tb.Handler())
	defer srv.Close()
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", srv.URL+"/page?q=1", nil)
	req.SetBasicAuth("alice", "s3cret")
	res, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != srv.URL+"/page?q=1" || !res.Close {
		t.Fatalf("%d Location %q Close %v", res.StatusCode, res.Header.Get("Location"), res.Close)
	}
	if !tb.Authorized(netip.MustParseAddr("127.0.0.1"), t0) {
		t.Fatal("loopback client not recorded")
	}
}
