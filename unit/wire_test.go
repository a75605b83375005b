package unit

import (
	"encoding/json"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/falab/falab/failover"
	"github.com/falab/falab/firewall"
	"github.com/falab/falab/replicate"
)

// TestWireFormsKeepJSON: the API's wire types encode exactly as the data
// plane's structs did, so scripts and the e2e suite that decode the old
// field names keep working.
func TestWireFormsKeepJSON(t *testing.T) {
	same := func(name string, dataPlane, wire any) {
		t.Helper()
		a, _ := json.Marshal(dataPlane)
		b, _ := json.Marshal(wire)
		if string(a) != string(b) {
			t.Errorf("%s:\n data plane %s\n wire       %s", name, a, b)
		}
	}
	ap := netip.MustParseAddrPort("198.18.1.10:40000")
	c := firewall.ConnInfo{Protocol: "tcp", InInterface: "inside", OutInterface: "outside", OrigSrc: "a", OrigDst: "b",
		ReplySrc: "c", ReplyDst: "d", State: "ESTAB", HTTP: true, Packets: 1, Bytes: 2, Age: time.Second, Idle: 3}
	same("conn", c, wireConn(&c))
	x := firewall.XlateInfo{Kind: "PAT", Protocol: "udp", RealInterface: "inside", MappedInterface: "outside", Real: ap, Mapped: ap, Conns: 2, Age: 5}
	same("xlate", x, wireXlate(&x))
	a := firewall.ARPInfo{Interface: "inside", IP: ap.Addr(), MAC: "02:00:00:00:00:01", Age: 7}
	same("arp", a, wireARP(&a))
	b := firewall.BridgeInfo{MAC: "02:00:00:00:00:01", Interface: "inside", Age: 8}
	same("bridge", b, wireBridge(&b))
	r := firewall.RouteInfo{Interface: "outside", Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHop: ap.Addr()}
	same("route", r, wireRoute(&r))
	i := firewall.InterfaceInfo{Name: "inside", SecurityLevel: 100, Address: netip.MustParsePrefix("198.18.1.1/24"),
		StandbyAddr: ap.Addr(), MAC: "m", Attached: true, RxPackets: 1, RxBytes: 2, TxPackets: 3, TxBytes: 4, Drops: 5}
	same("interface", i, wireInterface(&i))

	// The replication view is the same but for the tables, which the wire
	// names.
	s := replicate.Stats{Role: "sender", Connected: true, Sessions: 3, LastError: "x", QueueHigh: 9, LagP99: 10}
	same("replication", s, replicationStats(s, func(t uint8) string { return firewall.Table(t).String() }))
	s.Tables = []replicate.TableStats{{Table: uint8(firewall.TableConn), Sent: 4}, {Table: uint8(firewall.TableBridge), Applied: 1}}
	w := replicationStats(s, func(t uint8) string { return firewall.Table(t).String() })
	if len(w.Tables) != 2 || w.Tables[0].Table != "conn" || w.Tables[0].Sent != 4 || w.Tables[1].Table != "bridge" || w.Tables[1].Applied != 1 {
		t.Errorf("tables: got %+v", w.Tables)
	}
}

// TestInterfacesSayRolesAndMonitoring: the unit's interface listing adds
// to the data plane's what the unit knows: each role's MAC from its
// config (the virtual MACs under mac_mode virtual), and failover's
// monitoring of the interface with its state there.
func TestInterfacesSayRolesAndMonitoring(t *testing.T) {
	cfg := testConfig(false)
	cfg.MACMode, cfg.Monitored = "virtual", []string{"outside"}
	u, err := New(cfg, testKey(7), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	u.statusMu.Lock()
	u.status.Interfaces = []failover.MonitoredInterface{{Name: "outside", Up: true}}
	u.statusMu.Unlock()
	type view struct {
		Name, Active, Standby string
		Virtual, Mon, MonUp   bool
	}
	var got []view
	for _, i := range u.Interfaces() {
		got = append(got, view{i.Name, i.ActiveMAC, i.StandbyMAC, i.VirtualMAC, i.Monitored, i.MonitorUp})
	}
	want := []view{
		{"inside", "02:fa:00:00:00:01", "02:fa:00:00:00:02", true, false, false},
		{"outside", "02:fa:00:00:00:03", "02:fa:00:00:00:04", true, true, true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("interfaces (-want +got):\n%s", diff)
	}
}
