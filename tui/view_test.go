package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/api"
)

// TestGoldenReplicationView: v shows the active's stateful failover
// statistics with each table's entries on both units, then the local-only
// tables with why; any key closes it.
func TestGoldenReplicationView(t *testing.T) {
	src := newFakeSource(3, 0)
	for name, u := range src.units {
		u.status.Stateful = []api.StatefulTable{{Table: "arp", Entries: 2}, {Table: "xlate", Entries: 2}, {Table: "conn", Entries: 3}, {Table: "bridge"}}
		u.status.Local = []api.LocalTable{{Table: "route", Entries: 2, Reason: "each unit builds its own routes from the config"},
			{Table: "http", Reason: "HTTP replication is off (failover replication http)"}}
		if name == "fw-a" {
			u.status.Local[1].Entries = 1
			u.status.Replication.Role = "sender"
			u.status.Replication.Tables = []api.TableStats{{Table: "conn", Sent: 9}, {Table: "xlate", Sent: 4}, {Table: "arp", Sent: 2}}
		}
	}
	hs := newHarness(t, src, 80, 24)
	hs.tick(100 * time.Millisecond)
	hs.press("v")
	hs.golden("replication-80x24")
	hs.press("x")
	if strings.Contains(hs.screen(), "Stateful Failover") {
		t.Errorf("a key did not close the view")
	}
}

// TestPolicyConnNotMissing: a connection the active keeps off the state
// link by policy is marked L and counted apart, never as missing (✗).
func TestPolicyConnNotMissing(t *testing.T) {
	src := newFakeSource(3, 1)                // the standby lacks the last one...
	src.conns["fw-a"][2].NotReplicated = true // ...because policy keeps it local
	hs := newHarness(t, src, 120, 40)
	hs.tick(100 * time.Millisecond)
	hs.press("1")
	hs.tick(100 * time.Millisecond)
	s := hs.screen()
	if strings.Contains(s, "✗") || strings.Contains(s, "missing") || !strings.Contains(s, "L 1 not replicated (policy)") {
		t.Errorf("got:\n%s", s)
	}
}
