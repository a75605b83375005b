package render

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/falab/falab/api"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n%s", name, path, got)
	}
}

var (
	conns = []api.Conn{
		{Protocol: "tcp", InInterface: "inside", OutInterface: "outside", OrigSrc: "198.18.1.11:40000", OrigDst: "198.18.2.21:80",
			ReplySrc: "198.18.2.21:80", ReplyDst: "198.18.2.1:1024", State: "ESTABLISHED", Packets: 12, Bytes: 3400, Idle: 1500 * time.Millisecond},
		{Protocol: "udp", InInterface: "inside", OutInterface: "outside", OrigSrc: "198.18.1.12:5353", OrigDst: "198.18.2.22:53",
			ReplySrc: "198.18.2.22:53", ReplyDst: "198.18.2.112:5353", State: "open", Packets: 2, Bytes: 120, Idle: 95 * time.Second},
	}
	xlates = []api.Xlate{
		{Kind: "static", RealInterface: "inside", MappedInterface: "outside", Real: netip.MustParseAddrPort("198.18.1.12:0"),
			Mapped: netip.MustParseAddrPort("198.18.2.112:0"), Conns: 1, Age: 2 * time.Hour},
		{Kind: "pat", Protocol: "tcp", RealInterface: "inside", MappedInterface: "outside", Real: netip.MustParseAddrPort("198.18.1.11:40000"),
			Mapped: netip.MustParseAddrPort("198.18.2.1:1024"), Conns: 1, Age: 3 * time.Second},
	}
	arp = []api.ARPEntry{
		{Interface: "inside", IP: netip.MustParseAddr("198.18.1.11"), MAC: "02:00:00:00:01:0b", Age: 40 * time.Second},
		{Interface: "outside", IP: netip.MustParseAddr("198.18.2.21"), MAC: "02:00:00:00:02:15", Age: 4 * time.Minute},
	}
	bridge = []api.BridgeEntry{{MAC: "02:00:00:00:01:0b", Interface: "inside", Age: 12 * time.Second}}
	routes = []api.Route{
		{Interface: "inside", Prefix: netip.MustParsePrefix("198.18.1.0/24"), Connected: true},
		{Interface: "outside", Prefix: netip.MustParsePrefix("0.0.0.0/0"), NextHop: netip.MustParseAddr("198.18.2.254")},
	}
	ifaces = []api.Interface{
		{Name: "inside", SecurityLevel: 100, Address: netip.MustParsePrefix("198.18.1.1/24"), StandbyAddr: netip.MustParseAddr("198.18.1.2"), MAC: "02:00:00:00:00:01",
			Attached: true, RxPackets: 1000, TxPackets: 990, Drops: 3,
			ActiveMAC: "02:00:00:00:00:01", StandbyMAC: "02:00:00:00:00:11", VirtualMAC: true, BurnedInMAC: "02:fa:00:00:0a:01",
			LinkKnown: true, AdminUp: true, Carrier: true, Monitored: true, MonitorUp: true},
		{Name: "outside", MAC: "02:00:00:00:00:02", Attached: true, RxPackets: 990, TxPackets: 1000,
			ActiveMAC: "02:00:00:00:00:02", StandbyMAC: "02:00:00:00:00:12", VirtualMAC: true, BurnedInMAC: "02:fa:00:00:0a:02",
			LinkKnown: true, AdminUp: true, Monitored: true},
	}
	drops = api.Drops{"no-route": 1, "acl-drop": 12}
)

// TestGoldenTables: each table as `falab show` prints it.
func TestGoldenTables(t *testing.T) {
	for _, tt := range []struct {
		name string
		t    Table
	}{
		{"conn", Conns.Table(conns)},
		{"xlate", Xlates.Table(xlates)},
		{"arp", ARP.Table(arp)},
		{"mac-address-table", Bridge.Table(bridge)},
		{"route", Routes.Table(routes)},
		{"interface", Interfaces.Table(ifaces)},
		{"asp-drop", Drops.Table(DropList(drops))},
		{"empty", Conns.Table(nil)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.t.Text(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, b.Bytes())
		})
	}
}

// TestPairCells: a two-unit row puts the standby's cell after the column
// it copies; an entry only on the standby shows its per-unit cells as
// None; a route's standby column says whether the standby has it.
func TestPairCells(t *testing.T) {
	a, s := conns[0], conns[0]
	s.State = "SYN_SENT"
	got := Conns.PairCells(&a, &s)
	want := []string{"tcp", "inside", "198.18.1.11:40000", "outside", "198.18.2.21:80", "ESTABLISHED", "SYN_SENT", "12", "3400", "1s"}
	if !slices.Equal(got, want) {
		t.Errorf("both: %q, want %q", got, want)
	}
	if got := Conns.PairCells(&a, nil); got[6] != None {
		t.Errorf("active only: standby cell %q, want %q", got[6], None)
	}
	if got := Conns.PairCells(nil, &s); got[5] != None || got[6] != "SYN_SENT" {
		t.Errorf("standby only: %q", got)
	}
	if n := len(Conns.PairColumns()); n != len(want) {
		t.Errorf("%d pair columns, want %d", n, len(want))
	}
	for _, tt := range []struct {
		a, s *api.Route
		want string
	}{{&routes[1], &routes[1], "same"}, {&routes[1], nil, "missing"}, {nil, &routes[1], "only there"}} {
		if got := Routes.PairCells(tt.a, tt.s); got[4] != tt.want {
			t.Errorf("route: %q, want %q", got[4], tt.want)
		}
	}
	cols := Interfaces.PairColumns()
	if cols[3].Title != "Standby MAC" || cols[6].Title != "Sb link" || cols[13].Title != "Sb rx" || cols[14].Title != "Sb tx" {
		t.Errorf("interface pair columns %v", cols)
	}
}

// TestColumnsMatchCells: every table's cells fill exactly its columns, and
// every standby column copies a column that exists.
func TestColumnsMatchCells(t *testing.T) {
	check := func(name string, cols []Column, cells []string, sb []StandbyColumn) {
		t.Helper()
		if len(cells) != len(cols) {
			t.Errorf("%s: %d cells for %d columns", name, len(cells), len(cols))
		}
		for _, s := range sb {
			if s.From >= len(cols) || s.After < 0 || s.After >= len(cols) {
				t.Errorf("%s: standby column %q out of range", name, s.Title)
			}
		}
	}
	check("conn", Conns.Columns, Conns.Cells(&conns[0]), Conns.Standby)
	check("xlate", Xlates.Columns, Xlates.Cells(&xlates[0]), Xlates.Standby)
	check("arp", ARP.Columns, ARP.Cells(&arp[0]), ARP.Standby)
	check("bridge", Bridge.Columns, Bridge.Cells(&bridge[0]), Bridge.Standby)
	check("route", Routes.Columns, Routes.Cells(&routes[0]), Routes.Standby)
	check("interface", Interfaces.Columns, Interfaces.Cells(&ifaces[0]), Interfaces.Standby)
	d := DropList(drops)
	check("drops", Drops.Columns, Drops.Cells(&d[0]), Drops.Standby)
}
