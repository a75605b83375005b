package traffic

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// t0 is the base of every synthetic timestamp.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func TestPatternFillIsOffsetAddressable(t *testing.T) {
	p := NewPattern(42)
	whole := make([]byte, 1000)
	p.Fill(whole, 0)
	for _, tc := range []struct{ off, n int }{{0, 1}, {3, 5}, {7, 9}, {8, 8}, {13, 200}, {999, 1}} {
		part := make([]byte, tc.n)
		p.Fill(part, uint64(tc.off))
		if diff := cmp.Diff(whole[tc.off:tc.off+tc.n], part); diff != "" {
			t.Errorf("Fill(off=%d, n=%d) differs from the whole stream (-want +got):\n%s", tc.off, tc.n, diff)
		}
	}
	other := make([]byte, 1000)
	NewPattern(43).Fill(other, 0)
	if string(other) == string(whole) {
		t.Error("seeds 42 and 43 gave the same stream")
	}
	if FlowSeed(1, 2, ClientToServer) == FlowSeed(1, 2, ServerToClient) || FlowSeed(1, 2, Both) == FlowSeed(1, 3, Both) {
		t.Error("FlowSeed does not separate directions or flows")
	}
}

func TestStreamVerifier(t *testing.T) {
	const seed = 7
	stream := make([]byte, 100_000)
	NewPattern(seed).Fill(stream, 0)
	flipped := append([]byte(nil), stream...)
	flipped[54_321] ^= 0x01
	missing := append(append([]byte(nil), stream[:40_000]...), stream[40_000+1460:]...)

	tests := []struct {
		name      string
		data      []byte
		chunk     int
		wantErrAt int64 // -1: intact
	}{
		{"correct stream, odd chunks", stream, 1013, -1},
		{"correct stream, one chunk", stream, len(stream), -1},
		{"flipped byte", flipped, 4096, 54_321},
		{"flipped byte, one chunk", flipped, len(flipped), 54_321},
		{"missing chunk", missing, 1460, 40_000},
		{"missing chunk (multiple of 8)", append(append([]byte(nil), stream[:800]...), stream[808:]...), 100, 800},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := NewStreamVerifier(seed)
			var firstErr error
			for i := 0; i < len(tc.data); i += tc.chunk {
				end := min(i+tc.chunk, len(tc.data))
				if err := v.Write(tc.data[i:end], ms(i/tc.chunk)); err != nil && firstErr == nil {
					firstErr = err
				}
			}
			if got := v.Bytes(); got != uint64(len(tc.data)) {
				t.Errorf("Bytes() = %d, want %d", got, len(tc.data))
			}
			if tc.wantErrAt < 0 {
				if firstErr != nil || v.Corrupt() != nil {
					t.Fatalf("intact stream reported corrupt: %v", firstErr)
				}
				return
			}
			var ce *CorruptionError
			if !errors.As(firstErr, &ce) {
				t.Fatalf("Write error = %v, want a *CorruptionError", firstErr)
			}
			if ce.Offset != uint64(tc.wantErrAt) || v.Corrupt() != ce {
				t.Errorf("corrupt at %d (Corrupt() %v), want %d", ce.Offset, v.Corrupt(), tc.wantErrAt)
			}
		})
	}
}

func TestStreamVerifierGaps(t *testing.T) {
	v := NewStreamVerifier(1)
	b := make([]byte, 300)
	NewPattern(1).Fill(b, 0)
	for i, at := range []time.Time{ms(0), ms(10), ms(20), ms(520), ms(530)} {
		if err := v.Write(b[i*60:(i+1)*60], at); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.Gaps().Longest(); got != 500*time.Millisecond {
		t.Errorf("longest gap = %s, want 500ms", got)
	}
}

func TestGapTracker(t *testing.T) {
	tests := []struct {
		name        string
		obs         []time.Time
		now         time.Time
		wantLongest time.Duration
		wantUntil   time.Duration
		wantStart   time.Time
	}{
		{"none", nil, ms(1000), 0, 0, time.Time{}},
		{"one", []time.Time{ms(5)}, ms(5), 0, 0, ms(5)},
		{"steady", []time.Time{ms(0), ms(10), ms(20), ms(30)}, ms(35), 10 * time.Millisecond, 10 * time.Millisecond, ms(0)},
		{"hole in the middle", []time.Time{ms(0), ms(10), ms(310), ms(320)}, ms(325), 300 * time.Millisecond, 300 * time.Millisecond, ms(10)},
		{"open gap at the end wins", []time.Time{ms(0), ms(10), ms(20)}, ms(1020), 10 * time.Millisecond, 1000 * time.Millisecond, ms(20)},
		{"clock step back is no gap", []time.Time{ms(100), ms(50), ms(110)}, ms(110), 10 * time.Millisecond, 10 * time.Millisecond, ms(100)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var g GapTracker
			for _, at := range tc.obs {
				g.Observe(at)
			}
			until, start := g.LongestUntil(tc.now)
			if g.Longest() != tc.wantLongest || until != tc.wantUntil {
				t.Errorf("Longest() = %s, LongestUntil = %s; want %s, %s", g.Longest(), until, tc.wantLongest, tc.wantUntil)
			}
			if len(tc.obs) > 1 && !start.Equal(tc.wantStart) {
				t.Errorf("gap start = %s, want %s", start, tc.wantStart)
			}
		})
	}
	var g GapTracker
	if idle := g.Idle(ms(700), ms(200)); idle != 500*time.Millisecond {
		t.Errorf("Idle with no observation = %s, want 500ms since the start", idle)
	}
}

func TestSeqTracker(t *testing.T) {
	type echo struct {
		seq uint64
		at  int // ms
	}
	tests := []struct {
		name     string
		sends    int // one probe per ms from 0
		echoes   []echo
		statsAt  int // ms; Stats before Finish
		want     SeqStats
		wantMid  SeqStats
		verdicts []EchoVerdict
	}{
		{
			name: "all in order", sends: 4,
			echoes:   []echo{{0, 1}, {1, 2}, {2, 3}, {3, 4}},
			statsAt:  4,
			wantMid:  SeqStats{Sent: 4, Received: 4, LongestGap: time.Millisecond, GapStart: ms(1)},
			want:     SeqStats{Sent: 4, Received: 4, LongestGap: time.Millisecond, GapStart: ms(1)},
			verdicts: []EchoVerdict{EchoNew, EchoNew, EchoNew, EchoNew},
		},
		{
			name: "loss in the middle", sends: 6,
			echoes:   []echo{{0, 1}, {1, 2}, {5, 200}},
			statsAt:  150, // settle is 100ms: probes 0..5 (sent by 5ms) are settled
			wantMid:  SeqStats{Sent: 6, Received: 2, Lost: 4, LongestGap: 3 * time.Millisecond, GapStart: ms(2)},
			want:     SeqStats{Sent: 6, Received: 3, Lost: 3, Reordered: 0, LongestGap: 198 * time.Millisecond, GapStart: ms(2)},
			verdicts: []EchoVerdict{EchoNew, EchoNew, EchoNew},
		},
		{
			name: "reorder and duplicate", sends: 4,
			echoes:   []echo{{0, 1}, {2, 3}, {1, 4}, {2, 5}, {3, 6}, {9, 7}},
			statsAt:  7,
			wantMid:  SeqStats{Sent: 4, Received: 4, Duplicates: 1, Reordered: 1, Bogus: 1, LongestGap: 2 * time.Millisecond, GapStart: ms(1)},
			want:     SeqStats{Sent: 4, Received: 4, Duplicates: 1, Reordered: 1, Bogus: 1, LongestGap: 2 * time.Millisecond, GapStart: ms(1)},
			verdicts: []EchoVerdict{EchoNew, EchoNew, EchoReordered, EchoDuplicate, EchoNew, EchoBogus},
		},
		{
			name: "late echo after settling is not lost", sends: 2,
			echoes:   []echo{{1, 2}, {0, 300}},
			statsAt:  250,
			wantMid:  SeqStats{Sent: 2, Received: 1, Lost: 1, LongestGap: 0, GapStart: time.Time{}},
			want:     SeqStats{Sent: 2, Received: 2, Reordered: 1, LongestGap: 298 * time.Millisecond, GapStart: ms(2)},
			verdicts: []EchoVerdict{EchoNew, EchoReordered},
		},
		{
			name: "silence until the end", sends: 500,
			echoes:  []echo{{0, 1}, {1, 2}},
			statsAt: 2,
			wantMid: SeqStats{Sent: 3, Received: 2, LongestGap: time.Millisecond, GapStart: ms(1)},
			// Echoes stopped at 2ms, the last probe left at 499ms.
			want:     SeqStats{Sent: 500, Received: 2, Lost: 498, LongestGap: 497 * time.Millisecond, GapStart: ms(2)},
			verdicts: []EchoVerdict{EchoNew, EchoNew},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewSeqTracker(100 * time.Millisecond)
			var verdicts []EchoVerdict
			var mid SeqStats
			midDone := false
			ei := 0
			for tick := 0; tick < 1000; tick++ {
				if tick < tc.sends {
					if seq := tr.Next(ms(tick)); seq != uint64(tick) {
						t.Fatalf("Next = %d, want %d", seq, tick)
					}
				}
				for ei < len(tc.echoes) && tc.echoes[ei].at == tick {
					verdicts = append(verdicts, tr.Received(tc.echoes[ei].seq, ms(tick)))
					ei++
				}
				if tick == tc.statsAt {
					mid, midDone = tr.Stats(ms(tick)), true
				}
			}
			if !midDone {
				t.Fatal("statsAt never reached")
			}
			if diff := cmp.Diff(tc.wantMid, mid); diff != "" {
				t.Errorf("Stats at %dms (-want +got):\n%s", tc.statsAt, diff)
			}
			if diff := cmp.Diff(tc.want, tr.Finish()); diff != "" {
				t.Errorf("Finish (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.verdicts, verdicts); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPacer(t *testing.T) {
	p := pacer{rate: 1000, start: t0} // 1000 B/s: 100 B every 100ms
	tests := []struct {
		sent uint64
		now  time.Time
		want time.Duration
	}{
		{0, ms(0), 0},
		{100, ms(0), 100 * time.Millisecond},
		{100, ms(100), 0},
		{200, ms(150), 50 * time.Millisecond},
		// Blocked for 2s: no burst beyond one chunk of slack.
		{300, ms(2300), 0},
		{400, ms(2300), 0},
		{500, ms(2300), 100 * time.Millisecond},
	}
	for i, tc := range tests {
		if got := p.wait(tc.sent, 100, tc.now); got != tc.want {
			t.Errorf("step %d: wait(sent=%d, now=%s) = %s, want %s", i, tc.sent, tc.now.Sub(t0), got, tc.want)
		}
	}
}
