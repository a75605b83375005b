package labbench

import (
	"context"
	"testing"
)

// TestFillConnsWithoutPorts: the memory figure drives the firewall through
// its own API with no port attached (no test fake in the binary), and
// every SYN still makes a connection, with one xlate per source.
func TestFillConnsWithoutPorts(t *testing.T) {
	const n, sources = 20_000, 100
	res, err := fillConns(context.Background(), n, sources)
	if err != nil {
		t.Fatal(err)
	}
	if res.Conns != n || res.Xlates != sources {
		t.Errorf("%d conns and %d xlates from %d SYNs of %d sources; want %d and %d (drops %v)",
			res.Conns, res.Xlates, n, sources, n, sources, res.Drops)
	}
}
