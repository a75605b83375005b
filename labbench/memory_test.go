package labbench

import (
	"context"
	"testing"
)

// TestFillConnsWithoutPorts: the memory figure drives the firewalls
// through their own API with no port attached (no test fake in the
// binary), and every handshake still makes an established connection
// with its own xlate, on the active and on the standby.
func TestFillConnsWithoutPorts(t *testing.T) {
	const n = 20_000
	res, err := fillConns(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	if res.Conns != n || res.Xlates != n || res.StandbyConns != n || res.Xlates2 != n {
		t.Errorf("active %d conns %d xlates, standby %d conns %d xlates from %d handshakes; want %d each (drops %v)",
			res.Conns, res.Xlates, res.StandbyConns, res.Xlates2, n, n, res.Drops)
	}
	if res.Records != 3*n {
		t.Errorf("%d records for %d connections, want 3 each (xlate, SYN_RCVD, ESTABLISHED)", res.Records, n)
	}
	if res.ActiveHeap == 0 || res.StandbyHeap == 0 {
		t.Errorf("heap: active %d, standby %d", res.ActiveHeap, res.StandbyHeap)
	}
}
