package lab

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/falab/falab/traffic"
)

// TestLastReportReadsReportFile: the report file an agent writes over
// (--report-file) is what TrafficReports reads: the latest report.
func TestLastReportReadsReportFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traffic-x-client.jsonl")
	f := traffic.NewReportFile(path)
	for i := range 3 {
		if err := f.Write(traffic.Report{Kind: traffic.KindPing, Role: traffic.RoleClient, Sent: uint64(i), Detail: []traffic.FlowReport{}}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := lastReport(path)
	if err != nil || rep == nil || rep.Sent != 2 {
		t.Fatalf("lastReport = %+v, %v; want the third report", rep, err)
	}
}

// TestAgentArgsRate: a tcp-stream's rate paces both directions, so the
// server agent (which sends the s2c half) gets it as well as the client;
// other kinds leave the server alone.
func TestAgentArgsRate(t *testing.T) {
	srv, cli := agentArgs(Traffic{Name: "s", Kind: "tcp-stream", Target: "198.18.1.11", Flows: 10, Direction: "both", Rate: 200000}, "lab")
	for _, args := range [][]string{srv, cli} {
		if i := slices.Index(args, "--rate"); i < 0 || i+1 >= len(args) || args[i+1] != "200000" {
			t.Errorf("tcp-stream agent without the rate: %q", args)
		}
	}
	srv, _ = agentArgs(Traffic{Name: "h", Kind: "http", Target: "198.18.1.11", Rate: 200000}, "lab")
	if slices.Contains(srv, "--rate") {
		t.Errorf("http server given a rate it has no flag for: %q", srv)
	}
}
