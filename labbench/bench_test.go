package labbench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRunQuickSmoke runs the whole quick bench (real labs: root only, not
// in -short) and checks that every figure is in the report, measured or
// n/a with its reason. It asserts nothing about the figures themselves:
// they are the bench's output, not the test's.
func TestRunQuickSmoke(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: brings up labs (network namespaces, veths, raw sockets)")
	}
	if testing.Short() {
		t.Skip("brings up real labs for a minute; skipped in -short mode")
	}
	// Labs recorded under the test's own run directory, never a user's.
	t.Setenv("FALAB_RUN_DIR", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := Run(ctx, Options{Quick: true, Logger: log}, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	t.Logf("report:\n%s", out.String())
	for _, id := range FigureIDs {
		f, ok := rep.Figure(id)
		switch {
		case !ok:
			t.Errorf("figure %s is missing from the report", id)
		case f.Verdict == "":
			t.Errorf("figure %s has no verdict", id)
		case f.Reference == "" && f.Value == nil && f.NA == "":
			t.Errorf("figure %s is neither measured nor n/a with a reason", id)
		case f.Reference == "" && f.Value == nil && f.Verdict != VerdictNA:
			t.Errorf("figure %s is not measured but its verdict is %q", id, f.Verdict)
		}
	}
	if len(rep.Figures) != len(FigureIDs) {
		t.Errorf("%d figures, want %d (FigureIDs is out of date?)", len(rep.Figures), len(FigureIDs))
	}
	if rep.Machine.CPUs == 0 || rep.Machine.LoadStart == "" {
		t.Errorf("the report lacks the machine's CPU count or load: %+v", rep.Machine)
	}
	// Every lab the run brought up is gone.
	ents, err := os.ReadDir(os.Getenv("FALAB_RUN_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("lab %s is still recorded after Run", e.Name())
	}
	nss, _ := os.ReadDir("/run/netns")
	prefix := "falab-lb" + itoa(os.Getpid()%100000) + "-"
	for _, ns := range nss {
		if len(ns.Name()) > len(prefix) && ns.Name()[:len(prefix)] == prefix {
			t.Errorf("namespace %s is left behind", ns.Name())
		}
	}
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

// TestFailoverRowsRepeated runs items 7 to 9 of a quick bench alone (real
// labs: root only, not in -short): every TCP resume and survival row, the
// bulk sync and the replication lag come from failoverReps labs, each its
// own fault, so each prints several samples and can carry a verdict.
func TestFailoverRowsRepeated(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: brings up labs (network namespaces, veths, raw sockets)")
	}
	if testing.Short() {
		t.Skip("brings up real labs; skipped in -short mode")
	}
	t.Setenv("FALAB_RUN_DIR", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := Run(ctx, Options{Quick: true, Logger: log, Only: []int{7, 9}}, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	t.Logf("report:\n%s", out.String())
	ids := []string{"bulk-sync", "repl-lag-p99"}
	for _, d := range streamDirs {
		ids = append(ids, "tcp-resume-"+d, "tcp-survived-"+d)
	}
	runs := fmt.Sprintf("of %d runs", failoverReps)
	for _, id := range ids {
		f, ok := rep.Figure(id)
		switch {
		case !ok:
			t.Errorf("figure %s is missing", id)
		case f.Value == nil:
			t.Errorf("figure %s not measured: %s", id, f.NA)
		case f.N < 2 || len(f.Samples) != f.N || !strings.Contains(f.Detail, runs):
			t.Errorf("figure %s: n=%d, samples %v, detail %q; want at least 2 samples %s", id, f.N, f.Samples, f.Detail, runs)
		}
	}
}
