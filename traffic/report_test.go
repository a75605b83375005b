package traffic

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleReport() Report {
	off := uint64(1234)
	r := Report{
		Kind: KindTCPStream, Role: RoleServer,
		Lost: 3, Sent: 10, Received: 7, Reordered: 1, Duplicates: 2, Rejected: 1,
		Detail: []FlowReport{
			{ID: 0, Session: "00000000000000ff", State: StateAlive, Established: ms(0), LongestGapMs: 12.5, GapStart: ms(40),
				BytesSent: 10, BytesReceived: 20, Local: "198.18.1.10:5201", Remote: "198.18.0.10:40000", Peers: []string{"198.18.0.10:40000"}},
			{ID: 1, State: StateReset, Established: ms(0), Ended: ms(900), Error: "read: connection reset by peer"},
			{ID: 2, State: StateCorrupt, Established: ms(1), Ended: ms(5), CorruptAt: &off},
			{ID: 3, State: StateStalled, Established: ms(1)},
			{ID: 4, State: StateFailed},
			{ID: 5, State: StateCompleted, Established: ms(2), Ended: ms(2000)},
		},
		Started: ms(0), At: ms(2500), Final: true,
	}
	r.tally()
	return r
}

func TestReportJSONRoundTrip(t *testing.T) {
	want := sampleReport()
	line, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseReport(line)
	if err != nil {
		t.Fatalf("ParseReport: %v\n%s", err, line)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for _, key := range []string{`"kind"`, `"role"`, `"flows":6`, `"alive":1`, `"completed":1`, `"reset":1`, `"stalled":1`,
		`"corrupt":1`, `"bytes_sent":10`, `"bytes_received":20`, `"longest_gap_ms":12.5`, `"lost":3`, `"sent":10`,
		`"received":7`, `"detail"`, `"started"`, `"at"`, `"final":true`, `"peers"`, `"corrupt_at":1234`} {
		if !strings.Contains(string(line), key) {
			t.Errorf("report JSON lacks %s: %s", key, line)
		}
	}
}

func TestParseReportErrors(t *testing.T) {
	good, _ := json.Marshal(sampleReport())
	tests := []struct {
		name, line, wantErr string
	}{
		{"not json", "hello", "report: invalid character"},
		{"unknown kind", `{"kind":"smtp","role":"client"}`, `unknown kind "smtp"`},
		{"unknown role", `{"kind":"ping","role":"observer"}`, `unknown role "observer"`},
		{"unknown state", `{"kind":"ping","role":"client","flows":1,"detail":[{"id":7,"state":"zombie"}]}`, `flow 7 (detail[0]): unknown state "zombie"`},
		{"counters lie", strings.Replace(string(good), `"alive":1`, `"alive":6`, 1), "disagree with the 6 flows"},
		{"missing flows", `{"kind":"ping","role":"client","flows":2,"detail":[]}`, "disagree"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseReport([]byte(tc.line))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseReport error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	r := sampleReport()
	r.Detail[0].Peers = []string{"198.18.0.10:40000", "198.18.0.10:40001"}
	tests := []struct {
		name    string
		reports []Report
		fault   time.Time
		want    Summary
		wantErr string
	}{
		{
			name: "fault after every flow began", reports: []Report{r}, fault: ms(500),
			want: Summary{Kind: KindTCPStream, Role: RoleServer, Flows: 6, Survived: 2, NotEstablished: 1,
				Reset: 1, Stalled: 1, Corrupt: 1, Remapped: []uint32{0}, LongestGap: 12500 * time.Microsecond,
				Lost: 3, Sent: 10, Final: true, AnyEstablished: true},
		},
		{
			name: "fault before flows 2..5 began", reports: []Report{r}, fault: ms(1),
			want: Summary{Kind: KindTCPStream, Role: RoleServer, Flows: 6, Survived: 1, NotEstablished: 4,
				Reset: 1, Stalled: 1, Corrupt: 1, Remapped: []uint32{0}, LongestGap: 12500 * time.Microsecond,
				Lost: 3, Sent: 10, Final: true, AnyEstablished: true},
		},
		{name: "nothing", wantErr: "no report"},
		{name: "not final", reports: []Report{{Kind: KindPing, Role: RoleClient, At: ms(3)}}, wantErr: "not final",
			want: Summary{Kind: KindPing, Role: RoleClient}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Summarize(tc.reports, tc.fault)
			if (err != nil) != (tc.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Summarize error = %v, want %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Summarize (-want +got):\n%s", diff)
			}
		})
	}
	all := Report{Kind: KindTCPStream, Role: RoleClient, Final: true, Detail: []FlowReport{
		{State: StateAlive, Established: ms(0)}, {State: StateCompleted, Established: ms(0)}}}
	if s, _ := Summarize([]Report{all}, ms(10)); !s.AllSurvived {
		t.Errorf("AllSurvived = false for %+v", s)
	}
}

func TestFlowSurvived(t *testing.T) {
	tests := []struct {
		f    FlowReport
		want bool
	}{
		{FlowReport{State: StateAlive, Established: ms(0)}, true},
		{FlowReport{State: StateCompleted, Established: ms(0)}, true},
		{FlowReport{State: StateStalled, Established: ms(0)}, false},
		{FlowReport{State: StateReset, Established: ms(0)}, false},
		{FlowReport{State: StateCorrupt, Established: ms(0)}, false},
		{FlowReport{State: StateAlive, Established: ms(100)}, false}, // began after the fault
		{FlowReport{State: StateAlive}, false},                       // never established
	}
	for _, tc := range tests {
		if got := tc.f.Survived(ms(50)); got != tc.want {
			t.Errorf("Survived(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

// FuzzParseReport: no input panics, and what parses re-encodes to a report
// that parses the same.
func FuzzParseReport(f *testing.F) {
	good, _ := json.Marshal(sampleReport())
	f.Add(good)
	f.Add([]byte(`{"kind":"ping","role":"client","detail":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseReport(line)
		if err != nil {
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("parsed report does not encode: %v", err)
		}
		r2, err := ParseReport(again)
		if err != nil {
			t.Fatalf("re-encoded report does not parse: %v\n%s", err, again)
		}
		if diff := cmp.Diff(r, r2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
