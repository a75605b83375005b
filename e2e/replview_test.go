package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/falab/falab/api"
)

// TestReplicationViewMatchesShow: the replication view's live counts (`show
// failover --json`: each unit's stateful and local tables) agree with
// `show conn` and `show xlate` on both units, with long-lived TCP streams
// (replicated) and an HTTP download (local: HTTP replication is off in
// the default lab) running: conn + local http = show conn's total, on each
// unit, and the standby's local http is 0.
func TestReplicationViewMatchesShow(t *testing.T) {
	needRoot(t)
	runDir := upLab(t, "default")
	mustFalab(t, runDir, "traffic", "start", "--name", "streams", "--kind", "tcp-stream", "--client", "client1", "--server", "server1", "--flows", "4")
	mustFalab(t, runDir, "traffic", "start", "--name", "dl", "--kind", "http", "--client", "client2", "--server", "server2")
	var last string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		last = compareView(t, runDir)
		if last == "" {
			return
		}
	}
	t.Fatalf("the replication view never matched show conn/xlate: %s", last)
}

// compareView returns "" when the view matches show on both units, else
// what differed (the tables move while traffic starts; the caller retries).
func compareView(t *testing.T, runDir string) string {
	var sts []api.Status
	if err := json.Unmarshal([]byte(mustFalab(t, runDir, "show", "failover", "--json")), &sts); err != nil {
		t.Fatal(err)
	}
	if len(sts) != 2 {
		return fmt.Sprintf("%d statuses", len(sts))
	}
	for _, s := range sts {
		var conns api.Page[api.Conn]
		var xlates api.Page[api.Xlate]
		if err := json.Unmarshal([]byte(mustFalab(t, runDir, "show", "conn", "--unit", s.Unit, "--json")), &conns); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(mustFalab(t, runDir, "show", "xlate", "--unit", s.Unit, "--json")), &xlates); err != nil {
			t.Fatal(err)
		}
		stateful, local := map[string]int{}, map[string]int{}
		for _, x := range s.Stateful {
			stateful[x.Table] = x.Entries
		}
		for _, x := range s.Local {
			local[x.Table] = x.Entries
		}
		policy := 0
		for _, c := range conns.Entries {
			if c.NotReplicated {
				policy++
			}
		}
		switch {
		case stateful["conn"]+local["http"] != conns.Total:
			return fmt.Sprintf("%s: view conn %d + http %d, show conn %d", s.Unit, stateful["conn"], local["http"], conns.Total)
		case local["http"] != policy:
			return fmt.Sprintf("%s: view http %d, show conn marks %d not replicated", s.Unit, local["http"], policy)
		case stateful["xlate"] != xlates.Total:
			return fmt.Sprintf("%s: view xlate %d, show xlate %d", s.Unit, stateful["xlate"], xlates.Total)
		case stateful["conn"] < 4:
			return fmt.Sprintf("%s: %d replicated conns, want the 4 streams", s.Unit, stateful["conn"])
		case s.Active && local["http"] < 1:
			return fmt.Sprintf("%s: active has no local HTTP conn", s.Unit)
		case !s.Active && local["http"] != 0:
			return fmt.Sprintf("%s: standby has %d HTTP conns", s.Unit, local["http"])
		}
	}
	return ""
}
