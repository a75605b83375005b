package labbench

import (
	"errors"
	"strings"
	"testing"
)

func TestSamplesRow(t *testing.T) {
	var s samples
	s.add(30, nil, "first")
	s.add(0, errors.New("lab up failed"), "ignored")
	s.add(10, nil, "")
	s.add(20, nil, "third")
	f := s.row(9, "x", "lag", "ms", &Target{Op: "<", Value: 25}, 4, "how")
	f.finish()
	if f.N != 3 || *f.Min != 10 || *f.Value != 20 || *f.Max != 30 {
		t.Errorf("n=%d min %v median %v max %v; want n=3 min 10 median 20 max 30", f.N, *f.Min, *f.Value, *f.Max)
	}
	if f.Verdict != VerdictMet {
		t.Errorf("verdict %q, want %q", f.Verdict, VerdictMet)
	}
	for _, want := range []string{"how; 3 of 4 runs: first; third", "1 runs failed: lab up failed"} {
		if !strings.Contains(f.Detail, want) {
			t.Errorf("detail %q lacks %q", f.Detail, want)
		}
	}
	if strings.Contains(f.Detail, "ignored") {
		t.Errorf("detail %q carries the note of a failed run", f.Detail)
	}
}

func TestSamplesRowNoneMeasured(t *testing.T) {
	var s samples
	s.add(0, errors.New("no pair"), "")
	s.add(0, errors.New("no takeover"), "")
	f := s.row(7, "x", "x", "ms", nil, 2, "how")
	f.finish()
	if f.Value != nil || f.Verdict != VerdictNA || !strings.Contains(f.NA, "no pair") || !strings.Contains(f.NA, "no takeover") {
		t.Errorf("got value %v verdict %q na %q; want n/a naming both failures", f.Value, f.Verdict, f.NA)
	}
	var none samples
	if f := none.row(7, "x", "x", "ms", nil, 3, "how"); f.NA != "not run" {
		t.Errorf("no runs: na %q, want %q", f.NA, "not run")
	}
}

// A run that failed as a whole counts as failed in every direction; a
// direction without a report fails alone.
func TestStreamSamplesAdd(t *testing.T) {
	s := newStreamSamples()
	s.add(nil, errors.New("lab up failed"))
	var res []streamResult
	for i, d := range streamDirs {
		res = append(res, streamResult{dir: d, gapMs: float64(10 * (i + 1)), survived: 9, flows: 10})
	}
	res[1] = streamResult{dir: streamDirs[1], err: errors.New("no report")}
	s.add(res, nil)
	for i, d := range streamDirs {
		wantVals, wantErrs := 1, 1
		if i == 1 {
			wantVals, wantErrs = 0, 2
		}
		for what, x := range map[string]*samples{"gaps": s.gaps[d], "survived": s.surv[d]} {
			if len(x.vals) != wantVals || len(x.errs) != wantErrs {
				t.Errorf("%s %s: %d values, %d errors; want %d, %d", d, what, len(x.vals), len(x.errs), wantVals, wantErrs)
			}
		}
	}
	if got := s.surv["c2s"].vals; len(got) != 1 || got[0] != 90 {
		t.Errorf("c2s survived %v, want [90]", got)
	}
	if got := s.surv["c2s"].detail; len(got) != 1 || !strings.HasPrefix(got[0], "9/10 ") {
		t.Errorf("c2s survived notes %q, want one starting 9/10", got)
	}
}
