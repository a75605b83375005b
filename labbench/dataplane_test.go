package labbench

import (
	"errors"
	"strings"
	"testing"
)

// TestConnRateSaysTheLag: the connection-rate figure carries the
// replication lag read after its last run, or says why it has none.
func TestConnRateSaysTheLag(t *testing.T) {
	none := errors.New("not measured here")
	fa := dataPlaneResult{blastErr: none, tcpErr: none, tcpOnErr: none,
		connRuns: []float64{50_000}, conns: connectResult{Loops: 2, InFlight: 128},
		connLag: "p50 2.400, p99 10.400, max 67.800 ms over 3139 acks"}
	k := dataPlaneResult{blastErr: none, tcpErr: none, tcpOnErr: none, connsErr: none}
	var detail string
	for _, f := range dataPlaneFigures(fa, k) {
		if f.ID == "conn-rate" {
			detail = f.Detail
		}
	}
	if !strings.Contains(detail, "replication lag read just after the last run") || !strings.Contains(detail, "p99 10.400") {
		t.Errorf("conn-rate detail lacks the lag: %q", detail)
	}
	fa.connLag = ""
	for _, f := range dataPlaneFigures(fa, k) {
		if f.ID == "conn-rate" && strings.Contains(f.Detail, "replication lag") {
			t.Errorf("conn-rate detail speaks of a lag never read: %q", f.Detail)
		}
	}
}
