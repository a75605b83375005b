package firewall

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLeaseLapsedStopsForwarding: an active unit whose forwarding lease has
// lapsed (its process was frozen past it) forwards nothing and answers no
// ARP until the lease is renewed; the frames are counted by reason.
func TestLeaseLapsedStopsForwarding(t *testing.T) {
	l := resolvedLab(t, labConfig())
	now := l.clk.Now()
	l.fw.RenewLease(now.Add(100 * time.Millisecond).UnixNano())
	if l.udpOut(client, 5000) == "" {
		t.Fatalf("no forwarding within the lease: %v", l.drops())
	}
	l.clk.Advance(time.Second) // a freeze: the lease lapses
	if l.udpOut(client, 5001) != "" {
		t.Errorf("forwarded after the lease lapsed")
	}
	if d := cmp.Diff(map[string]uint64{"failover-lease-expired": 1}, l.drops()); d != "" {
		t.Errorf("drops (-want +got):\n%s", d)
	}
	l.fw.RenewLease(l.clk.Now().Add(100 * time.Millisecond).UnixNano())
	if l.udpOut(client, 5002) == "" {
		t.Errorf("no forwarding after the lease was renewed: %v", l.drops())
	}
	l.fw.RenewLease(0) // no lease: forwarding as before leases existed
	l.clk.Advance(time.Hour)
	if l.udpOut(client, 5003) == "" {
		t.Errorf("no forwarding without a lease: %v", l.drops())
	}
}
