package unit

import (
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/falab/falab/api"
)

// countingEngine is a fakeEngine that counts itself.
type countingEngine struct{ *fakeEngine }

func (e countingEngine) Len() int { e.mu.Lock(); defer e.mu.Unlock(); return len(e.m) }

// TestReplicationView: the status lists every replicated table with its
// entries (an engine that cannot count shows -1), HTTP connections under
// the local group while HTTP replication is off (and not in the conn row),
// the routes, and registered local tables with their reasons.
func TestReplicationView(t *testing.T) {
	for _, httpRepl := range []bool{false, true} {
		u, err := New(testConfig(httpRepl), testKey(7), nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		counted := countingEngine{newFakeEngine("gtp-pdp")}
		if err := u.AddEngineTable(counted); err != nil {
			t.Fatal(err)
		}
		if err := u.AddEngineTable(newFakeEngine("sip")); err != nil {
			t.Fatal(err)
		}
		counted.m[1], counted.m[2] = true, true
		u.AddLocalTable("uauth", "authentications die with the unit", func() int { return 3 })
		for i := range 5 {
			dport := uint16(53)
			if i < 2 {
				dport = 80
			}
			if err := u.fw.ApplyChange(conn(i, dport)); err != nil {
				t.Fatal(err)
			}
		}
		st := u.Status()
		conns, http := 3, 2
		if httpRepl {
			conns, http = 5, 0
		}
		// Each conn made its PAT xlate; xlates are replicated whatever the conn.
		want := []api.StatefulTable{{Table: "arp", Entries: 0}, {Table: "xlate", Entries: 5}, {Table: "conn", Entries: conns}, {Table: "bridge", Entries: 0}, {Table: "gtp-pdp", Entries: 2}, {Table: "sip", Entries: -1}}
		if d := cmp.Diff(want, st.Stateful); d != "" {
			t.Errorf("http replication %v: stateful (-want +got):\n%s", httpRepl, d)
		}
		wantLocal := []api.LocalTable{{Table: "route", Entries: 2, Reason: reasonRoutes}}
		if !httpRepl {
			wantLocal = append(wantLocal, api.LocalTable{Table: "http", Entries: http, Reason: reasonHTTP})
		}
		wantLocal = append(wantLocal, api.LocalTable{Table: "uauth", Entries: 3, Reason: "authentications die with the unit"})
		if d := cmp.Diff(wantLocal, st.Local); d != "" {
			t.Errorf("http replication %v: local (-want +got):\n%s", httpRepl, d)
		}
	}
}
