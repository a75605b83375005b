package tui

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/falab/falab/labfile"
)

// TestLabMACs: every MAC the lab gives out is named by its owner: a host's
// interface, a unit's interface, a virtual MAC; a MAC the lab did not give
// out is "?", whatever its case.
func TestLabMACs(t *testing.T) {
	l := &labfile.Lab{
		Hosts: []labfile.Host{{Name: "client1", Interfaces: []labfile.HostInterface{{Name: "eth0", MAC: mustMAC("02:00:00:00:01:11")}}}},
		Units: []labfile.Unit{{Name: "fw-a", MACs: map[string]net.HardwareAddr{"inside": mustMAC("02:fa:00:00:0a:01")}}},
		Firewall: labfile.Firewall{Interfaces: []labfile.FirewallInterface{{Name: "inside",
			VirtualMAC: mustMAC("00:00:0c:9f:f0:01"), StandbyVirtualMAC: mustMAC("00:00:0c:9f:f1:01")}}},
	}
	l.Failover.MACMode = labfile.MACVirtual
	macs := labMACs(l)
	got := map[string]string{}
	for _, m := range []string{"02:00:00:00:01:11", "02:FA:00:00:0A:01", "00:00:0c:9f:f0:01", "00:00:0c:9f:f1:01", "0a:bb:cc:00:00:01"} {
		got[m] = macName(macs, m)
	}
	want := map[string]string{"02:00:00:00:01:11": "client1 eth0", "02:FA:00:00:0A:01": "fw-a inside",
		"00:00:0c:9f:f0:01": "virtual inside (active)", "00:00:0c:9f:f1:01": "virtual inside (standby)", "0a:bb:cc:00:00:01": "?"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("MAC names (-want +got):\n%s", diff)
	}
}

// TestBridgeFilterByHost: the Bridge tab's host names are cells like any
// other: the filter finds a station by its owner.
func TestBridgeFilterByHost(t *testing.T) {
	hs := newHarness(t, newFakeSource(0, 0), 80, 24)
	hs.tick(100 * time.Millisecond)
	hs.press("4", "/", "s", "e", "r", "v", "enter")
	tab := hs.m.tables[3]
	if len(tab.shown) != 1 || !strings.Contains(tab.data.rows[tab.shown[0]].key, "02:00:00:00:02:11") {
		t.Errorf("filter /serv on the Bridge tab shows %v", tab.shown)
	}
}
