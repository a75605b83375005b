package render

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/api"
)

// TestGoldenASAText: `falab show` prints ASA-format lines (ports after a
// slash, netmasks dotted, ages as h:mm:ss), one golden file per command.
func TestGoldenASAText(t *testing.T) {
	// outside as a unit that reports no failover fields (an older one).
	transparent := api.Interface{Name: "outside", MAC: "02:00:00:00:00:02", Attached: false}
	// A burned-in pair's interface that is administratively down and not
	// monitored.
	adminDown := api.Interface{Name: "dmz", SecurityLevel: 50, MAC: "02:fa:00:00:0a:03", Attached: true,
		ActiveMAC: "02:fa:00:00:0a:03", StandbyMAC: "02:fa:00:00:0a:03", BurnedInMAC: "02:fa:00:00:0a:03", LinkKnown: true}
	for _, tt := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{"asa-conn", func(w io.Writer) error {
			return ShowConn(w, api.Page[api.Conn]{Total: 5, Entries: conns})
		}},
		{"asa-xlate", func(w io.Writer) error { return ShowXlate(w, api.Page[api.Xlate]{Total: 2, Entries: xlates}) }},
		{"asa-arp", func(w io.Writer) error { return ShowARP(w, arp) }},
		{"asa-route", func(w io.Writer) error { return ShowRoute(w, routes) }},
		{"asa-interface", func(w io.Writer) error { return ShowInterface(w, append(ifaces[:1:1], transparent)) }},
		{"asa-interface-failover", func(w io.Writer) error { return ShowInterface(w, append(ifaces[:2:2], adminDown)) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, b.Bytes())
		})
	}
}

// TestInterfaceWithoutAddress: a transparent-mode interface has no
// address; it is "unassigned", never netip's "invalid Prefix".
func TestInterfaceWithoutAddress(t *testing.T) {
	var b bytes.Buffer
	if err := ShowInterface(&b, []api.Interface{{Name: "inside"}}); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); strings.Contains(s, "invalid") || !strings.Contains(s, "IP address unassigned") {
		t.Errorf("got:\n%s", s)
	}
}

// failoverPair is fw-a active, fw-b standby, as each would answer.
func failoverPair() (api.Status, api.Status, time.Time) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	a := api.Status{Unit: "fw-a", Peer: "fw-b", Role: "primary", PID: 101, State: "Active", Active: true, Forwarding: true, Term: 3,
		LastChange: now.Add(-time.Minute), LastReason: "no peer answered at start-up", MACMode: "virtual", Mode: "routed",
		PeerState: "Standby Ready", PeerKnown: true, PeerLastHeard: now.Add(-120 * time.Millisecond), FailoverLinkUp: true,
		Monitored: []api.MonitoredStatus{{Name: "inside", Up: true}, {Name: "outside", Up: false}},
		Hellos: api.HelloStats{Sent: 300, Received: 299, Missed: 1,
			DelaySamples: 299, DelayP50: 85 * time.Microsecond, DelayP99: 410 * time.Microsecond, DelayMax: 2300 * time.Microsecond},
		Counts: api.TableCounts{Conns: 20, Xlates: 1, ARP: 4},
		Replication: api.ReplicationStats{Role: "sender", Connected: true, Synced: true, BulkSyncs: 1, Sessions: 1,
			Tables: []api.TableStats{{Table: "conn", Sent: 40, Coalesced: 17}, {Table: "xlate", Sent: 2}, {Table: "gtp-pdp", Sent: 3, Errors: 1}}},
		Stateful: []api.StatefulTable{{Table: "arp", Entries: 4}, {Table: "xlate", Entries: 1}, {Table: "conn", Entries: 18},
			{Table: "bridge"}, {Table: "gtp-pdp", Entries: -1}},
		Local: []api.LocalTable{{Table: "route", Entries: 3, Reason: "each unit builds its own routes from the config"},
			{Table: "http", Entries: 2, Reason: "HTTP replication is off (failover replication http)"}},
	}
	b := api.Status{Unit: "fw-b", Peer: "fw-a", Role: "secondary", PID: 102, State: "Standby Ready", Term: 3,
		LastChange: now.Add(-50 * time.Second), LastReason: "bulk sync done", MACMode: "virtual", Mode: "routed",
		PeerState: "Active", PeerKnown: true, PeerLastHeard: now.Add(-80 * time.Millisecond), FailoverLinkUp: true,
		Replication: api.ReplicationStats{Role: "receiver", Connected: true, Synced: true, BulkSyncs: 1, Sessions: 1,
			Tables: []api.TableStats{{Table: "conn", Received: 40, Applied: 40}}},
		Stateful: []api.StatefulTable{{Table: "arp", Entries: 4}, {Table: "xlate", Entries: 1}, {Table: "conn", Entries: 18},
			{Table: "bridge"}, {Table: "gtp-pdp", Entries: 2}},
		Local: []api.LocalTable{{Table: "route", Entries: 3, Reason: "each unit builds its own routes from the config"},
			{Table: "http", Reason: "HTTP replication is off (failover replication http)"}},
	}
	return a, b, now
}

// TestGoldenShowFailover: the unit asked is "This host", its peer "Other
// host", as on an ASA, whichever of the two is asked; a unit that did not
// answer is named with why.
func TestGoldenShowFailover(t *testing.T) {
	a, b, now := failoverPair()
	for _, tt := range []struct {
		name        string
		this, other api.Status
	}{
		{"failover-on-fw-a", a, b},
		{"failover-on-fw-b", b, a},
		{"failover-peer-frozen", a, api.Status{Unit: "fw-b", State: "not answering: process 102 is stopped (frozen, SIGSTOP)"}},
		{"failover-module", withModule(a, 0), withModule(b, 3)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := ShowFailover(&buf, "default", tt.this, tt.other, now); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if !strings.Contains(out, "This host: "+tt.this.Unit) || !strings.Contains(out, "Other host: "+tt.other.Unit) {
				t.Errorf("labels wrong:\n%s", out)
			}
			golden(t, tt.name, buf.Bytes())
		})
	}
}

// withModule gives a status a service module that met uninspected flows.
func withModule(s api.Status, uninspected uint64) api.Status {
	s.Module = &api.ModuleInfo{Unit: s.Unit, Slot: "ips", Status: "Up", FailMode: "fail-open", Signatures: 1, Flows: 4,
		Detected: 1, DetectedDrops: 2, UninspectedFlows: uninspected, UninspectedPackets: 10 * uninspected}
	s.Local = append(s.Local, api.LocalTable{Table: "module", Entries: 4, Reason: "the module's memory is its own"})
	return s
}
