package traffic

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// reportFileBound is the stated bound for ten flows (README, "Traffic
// reports"): the file holds one report of at most 8 KB a flow.
const reportFileBound = 10 * 8192

// TestReportFileBoundedOverAnHour drives a tcp-stream client's reporting
// for a simulated hour of 10 flows (a chunk every 10 ms, a jitter gap of
// 3-40 ms on one chunk in fifty, a 400 ms outage every ten minutes),
// reporting every 100 ms as the lab runs it (every second with -short:
// the file holds one report whatever the pace), and checks that the report
// file never exceeds reportFileBound while appending at the lab's pace
// would have written hundreds of megabytes; and that the last report still
// holds every fault's gap for the figures per fault.
func TestReportFileBoundedOverAnHour(t *testing.T) {
	const labEvery = 100 * time.Millisecond
	cfg := agentConfig{kind: KindTCPStream, role: RoleClient, flows: 10, direction: Both, stall: time.Second, reportEvery: labEvery}
	if testing.Short() {
		cfg.reportEvery = time.Second
	}
	c := newStreamClient(cfg, slog.New(slog.DiscardHandler))
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for _, f := range c.flows {
		f.state, f.established, f.local, f.remote = StateAlive, t0, "198.18.0.10:40000", "198.18.1.10:5201"
	}
	path := filepath.Join(t.TempDir(), "traffic-streams-client.jsonl")
	file := NewReportFile(path)
	p := &reporter{cfg: cfg, r: c, sink: file, started: t0}

	const (
		hour     = time.Hour
		chunk    = 10 * time.Millisecond
		outage   = 400 * time.Millisecond
		faultGap = 10 * time.Minute
	)
	rng := rand.New(rand.NewPCG(1, 2))
	next := make([]time.Time, len(c.flows)) // each flow's next arrival
	for i := range next {
		next[i] = t0.Add(chunk)
	}
	var faults []time.Time
	for at := t0.Add(faultGap); at.Before(t0.Add(hour)); at = at.Add(faultGap) {
		faults = append(faults, at)
	}
	var largest, appended int64 // appended: what appending at the lab's pace would have written
	report := func(at time.Time, final bool) {
		p.report(at, final, nil)
		if p.writeErr != nil {
			t.Fatal(p.writeErr)
		}
		appended += int64(file.buf.Len()) * int64(cfg.reportEvery/labEvery)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		largest = max(largest, fi.Size())
		if fi.Size() > reportFileBound {
			t.Fatalf("at +%s the report file is %d bytes, over the bound %d", at.Sub(t0), fi.Size(), reportFileBound)
		}
	}
	fi := 0
	for at := t0.Add(cfg.reportEvery); !at.After(t0.Add(hour)); at = at.Add(cfg.reportEvery) {
		for i, f := range c.flows {
			f.mu.Lock()
			for !next[i].After(at) {
				f.verify.Gaps().Observe(next[i])
				f.received += 1250
				f.sent += 1250
				d := chunk
				if rng.IntN(50) == 0 {
					d += time.Duration(3+rng.IntN(38)) * time.Millisecond
				}
				if fi < len(faults) && next[i].Before(faults[fi]) && !next[i].Add(d).Before(faults[fi]) {
					d = faults[fi].Sub(next[i]) + outage
				}
				next[i] = next[i].Add(d)
			}
			f.mu.Unlock()
		}
		if fi < len(faults) && at.After(faults[fi].Add(outage)) {
			fi++
		}
		report(at, false)
	}
	report(t0.Add(hour), true)

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := ParseReport(bytes.TrimRight(b, "\n"))
	if err != nil || !rep.Final || rep.Flows != 10 {
		t.Fatalf("the file is not one final report of 10 flows: %v (final %v, flows %d)", err, rep.Final, rep.Flows)
	}
	for i, f := range faults {
		w := FaultWindow{At: f, Settled: f.Add(outage + time.Second)}
		if i+1 < len(faults) {
			w.End = faults[i+1]
		}
		if got := FiguresAcross(rep.Detail, w); got.Gap < outage || got.Survived != 10 {
			t.Errorf("fault %d at +%s: figures %+v, want a gap of at least %s and 10 survived", i, f.Sub(t0), got, outage)
		}
	}
	if appended < 100<<20 {
		t.Errorf("appending would have written only %d bytes: the simulation is too small to prove the bound", appended)
	}
	t.Logf("an hour of 10 flows: the file stayed at most %d bytes (bound %d); appending would have written %d MB",
		largest, reportFileBound, appended>>20)
}

// TestReportFileReplaces: each write leaves one whole report, the latest,
// and no temporary file beside it.
func TestReportFileReplaces(t *testing.T) {
	dir := t.TempDir()
	f := NewReportFile(filepath.Join(dir, "r.jsonl"))
	for i := range 3 {
		if err := f.Write(Report{Kind: KindPing, Role: RoleClient, Sent: uint64(i), Detail: []FlowReport{}}); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "r.jsonl"))
	rep, err := ParseReport(bytes.TrimRight(b, "\n"))
	if err != nil || rep.Sent != 2 || bytes.Count(b, []byte("\n")) != 1 {
		t.Errorf("file = %q (%v); want only the last report", b, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("dir holds %d files, want only the report", len(ents))
	}
}

// idleRunner has one alive flow and works until ctx ends.
type idleRunner struct{}

func (idleRunner) run(ctx context.Context) error { <-ctx.Done(); return nil }
func (idleRunner) snapshot(time.Time) Report {
	return Report{Detail: []FlowReport{{ID: 0, State: StateAlive}}}
}

// TestDriveWritesOverReportFile: with --report-file the agent's loop
// leaves one report in the file, the final one, and writes nothing to its
// output stream.
func TestDriveWritesOverReportFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	cfg, err := parseAgentFlags([]string{"udp-probe", "--role", "server", "--report-every", "2ms", "--duration", "30ms", "--report-file", path})
	if err != nil || cfg.reportFile != path {
		t.Fatalf("parse: %v, report file %q", err, cfg.reportFile)
	}
	if err := drive(context.Background(), cfg, idleRunner{}, NewReportFile(path), time.Now); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	rep, err := ParseReport(bytes.TrimRight(b, "\n"))
	if err != nil || !rep.Final || rep.Alive != 1 || bytes.Count(b, []byte("\n")) != 1 {
		t.Errorf("file = %q (%v); want the final report alone", b, err)
	}
}

// TestProbeServerPeersCapped: a session seen from ever new source ports
// lists at most maxPeers of them (still more than one: re-mapped), so its
// report stays bounded.
func TestProbeServerPeersCapped(t *testing.T) {
	s := newProbeServer(agentConfig{stall: time.Second}, slog.New(slog.DiscardHandler))
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	for port := range uint16(3 * maxPeers) {
		s.record(7, netip.AddrPortFrom(netip.MustParseAddr("198.18.0.10"), 40000+port), at)
	}
	if got := s.snapshot(at).Detail[0].Peers; len(got) != maxPeers {
		t.Errorf("%d peers listed, want %d", len(got), maxPeers)
	}
}
