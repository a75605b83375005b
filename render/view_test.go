package render

import (
	"bytes"
	"strings"
	"testing"

	"github.com/falab/falab/api"
)

// TestShowConnMarksPolicy: a connection kept off the state link by policy
// says so in `show conn`, so its absence on the standby reads as policy.
func TestShowConnMarksPolicy(t *testing.T) {
	c := conns[0]
	c.HTTP, c.NotReplicated = true, true
	var b bytes.Buffer
	if err := ShowConn(&b, api.Page[api.Conn]{Total: 2, Entries: []api.Conn{c, conns[1]}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if !strings.HasSuffix(lines[1], ", http, not replicated (policy)") || strings.Contains(lines[2], "not replicated") {
		t.Errorf("got:\n%s", b.String())
	}
}

// TestReplicationViewJoin: counters come from the unit asked (xmit while
// it sends, rcv while it receives), entries from each unit; a table only
// the peer lists still gets a row; a peer that did not answer has "-".
func TestReplicationViewJoin(t *testing.T) {
	a, b, _ := failoverPair()
	b.Stateful = append(b.Stateful, api.StatefulTable{Table: "sip", Entries: 7})
	rows, local := ReplicationView(b, a)
	last := rows[len(rows)-1]
	if last.Table != "sip" || last.ThisEntries != 7 || last.PeerEntries != -1 {
		t.Errorf("peer-only table row: %+v", last)
	}
	for _, r := range rows {
		if r.Table == "conn" && (r.Rcv != 40 || r.Xmit != 0 || r.ThisEntries != 18 || r.PeerEntries != 18) {
			t.Errorf("conn on the receiver: %+v", r)
		}
	}
	if len(local) != 2 || local[1].Table != "http" || local[1].ThisEntries != 0 || local[1].PeerEntries != 2 {
		t.Errorf("local rows: %+v", local)
	}
	rows, _ = ReplicationView(a, api.Status{Unit: "fw-b"})
	for _, r := range rows {
		if r.PeerEntries != -1 {
			t.Errorf("frozen peer has entries for %s: %d", r.Table, r.PeerEntries)
		}
	}
}

// TestShowUAuthPerUnit: each unit's table under its name, said to be not
// replicated, with the listener and the flows steered to it.
func TestShowUAuthPerUnit(t *testing.T) {
	var b bytes.Buffer
	err := ShowUAuth(&b, []api.UAuthInfo{
		{Unit: "fw-a", Listener: "http on inside port 1080", Steered: 1, Text: "user 'alice' at 198.18.1.11, authenticated\n"},
		{Unit: "fw-b", Listener: "http on inside port 1080", Text: ""},
	})
	want := "fw-a: (not replicated) listener http on inside port 1080, 1 flows steered to it now\nuser 'alice' at 198.18.1.11, authenticated\n\n" +
		"fw-b: (not replicated) listener http on inside port 1080, 0 flows steered to it now\n"
	if err != nil || b.String() != want {
		t.Errorf("got %q, %v", b.String(), err)
	}
}
