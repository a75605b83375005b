package tui

import (
	"testing"
	"time"

	"github.com/falab/falab/render"
)

// BenchmarkViewHugeTable measures building one frame (Render) on the
// Connections tab with 100k connections in the lab. Only the page on
// screen is held, so the cost must not grow with the table; the target is
// well under a 16ms frame.
func BenchmarkViewHugeTable(b *testing.B) {
	for _, size := range []struct {
		name string
		w, h int
	}{{"80x24", 80, 24}, {"200x60", 200, 60}} {
		b.Run(size.name, func(b *testing.B) {
			hs := newHarness(b, newFakeSource(100_000, 10), size.w, size.h)
			hs.tick(100 * time.Millisecond)
			hs.tick(time.Second)
			if !hs.m.tables[0].data.paged {
				b.Fatal("the 100k table is not paged")
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				_ = hs.m.Render()
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/frame")
		})
	}
}

// BenchmarkMergePage measures merging one fetched page of the active with
// the standby's window around it (what a refresh of a 100k table costs,
// off the UI loop, in a tea.Cmd).
func BenchmarkMergePage(b *testing.B) {
	src := newFakeSource(100_000, 0)
	rows := 16
	w := standbyWindow(50_000+rows, rows)
	active := src.conns["fw-a"][50_000 : 50_000+rows]
	standby := src.conns["fw-b"][50_000-w : 50_000+rows+w]
	b.ReportAllocs()
	for b.Loop() {
		_ = merge(active, standby, true, true, render.Conns.Key, render.Conns.PairCells)
	}
	b.ReportMetric(float64(len(standby)), "standby-rows")
}
