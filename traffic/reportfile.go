package traffic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// reportSink takes an agent's reports, one after the other.
type reportSink interface {
	write(rep Report) error
}

// streamSink appends each report as one JSON line to w (stdout without
// --report-file): the whole history, for a person or a pipe reading along.
type streamSink struct{ enc *json.Encoder }

func newStreamSink(w io.Writer) streamSink { return streamSink{enc: json.NewEncoder(w)} }

func (s streamSink) write(rep Report) error { return s.enc.Encode(rep) }

// ReportFile keeps an agent's reports in a file of bounded size: each
// report replaces the one before (written beside the file and renamed over
// it), so the file holds exactly one whole JSON line, the latest report.
//
// Why not append: every reader (`falab traffic show`, the figures per
// fault, the TUI, the HTML report) needs only the latest report, which is
// cumulative (totals since the start, each flow's longest gaps with their
// times, its loss runs), while ten flows reporting every 100 ms appended
// about 290 MB an hour. A report's size is bounded by its flows (each
// keeps at most maxGaps gaps, maxLossRuns loss runs and maxPeers peers),
// so the file is too: under 8 KB a flow (TestReportFileBoundedOverAnHour).
// The rename makes each write atomic: a reader never sees half a report.
//
// A ReportFile is not safe for concurrent use; the agent's report loop
// owns it.
type ReportFile struct {
	path string
	buf  bytes.Buffer
}

// NewReportFile returns a ReportFile writing path (created on the first
// write; its directory must exist).
func NewReportFile(path string) *ReportFile { return &ReportFile{path: path} }

// Write replaces the file's content with rep.
func (f *ReportFile) Write(rep Report) error {
	f.buf.Reset()
	if err := json.NewEncoder(&f.buf).Encode(rep); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(f.path), "."+filepath.Base(f.path)+".tmp")
	if err := os.WriteFile(tmp, f.buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("report file: %w", err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("report file: %w", err)
	}
	return nil
}

func (f *ReportFile) write(rep Report) error { return f.Write(rep) }

var (
	_ reportSink = (*ReportFile)(nil)
	_ reportSink = streamSink{}
)
