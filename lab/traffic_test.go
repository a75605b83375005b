package lab

import (
	"path/filepath"
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
