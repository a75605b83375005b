package traffic

import (
	"bytes"
	"fmt"
	"time"
)

// GapTracker measures the longest time between consecutive observations
// (received chunks, echoes). It is pure: callers pass the timestamps, so it
// is tested with synthetic times.
//
// The zero value is ready to use. A GapTracker is not safe for concurrent
// use; its owner serialises calls.
type GapTracker struct {
	n            uint64
	first, last  time.Time
	longest      time.Duration
	longestStart time.Time     // when the longest closed gap began
	notable      []Gap         // closed gaps >= NotableGap, oldest first: the newest and the longest (gaps.go)
	droppedMax   time.Duration // the longest notable gap not kept in notable
	droppedUntil time.Time     // the latest end of a notable gap not kept
}

// Observe records an observation at time at. A timestamp earlier than the
// previous one (a clock step) counts as a zero gap rather than a negative one.
func (g *GapTracker) Observe(at time.Time) {
	g.n++
	if g.n == 1 {
		g.first, g.last = at, at
		return
	}
	if at.Before(g.last) {
		return
	}
	d := at.Sub(g.last)
	if d > g.longest {
		g.longest, g.longestStart = d, g.last
	}
	g.noteGap(g.last, d)
	g.last = at
}

// Count is the number of observations.
func (g *GapTracker) Count() uint64 { return g.n }

// Last is the time of the latest observation (zero if none).
func (g *GapTracker) Last() time.Time { return g.last }

// Longest is the longest gap between two observations.
func (g *GapTracker) Longest() time.Duration { return g.longest }

// LongestUntil is the longest gap counting the one still open at now (from
// the last observation to now): a flow that went silent for good must not
// report the short gaps it had before it died. With no observation yet it
// returns 0: there is no gap before the first byte.
func (g *GapTracker) LongestUntil(now time.Time) (longest time.Duration, start time.Time) {
	longest, start = g.longest, g.longestStart
	if g.n == 0 {
		return 0, time.Time{}
	}
	if open := now.Sub(g.last); open > longest {
		longest, start = open, g.last
	}
	return longest, start
}

// Idle is the time since the last observation, or since since if there was
// none (a flow that never received anything has been idle since it began).
func (g *GapTracker) Idle(now, since time.Time) time.Duration {
	if g.n == 0 {
		return now.Sub(since)
	}
	return now.Sub(g.last)
}

// CorruptionError reports the first received byte that did not match the
// expected stream.
type CorruptionError struct {
	Offset    uint64 // stream offset of the first bad byte
	Want, Got byte
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("stream corrupt at offset %d: want byte %#02x, got %#02x", e.Offset, e.Want, e.Got)
}

// verifyChunk is how many expected bytes the verifier generates at a time.
const verifyChunk = 16 << 10

// StreamVerifier checks a received byte stream against its Pattern, byte by
// byte, and tracks the gaps between received chunks. A missing chunk shows as
// corruption at the offset where it should have been, because everything
// after it is shifted.
//
// A StreamVerifier is not safe for concurrent use; its owner (the flow's
// reader) serialises calls and publishes results under its own lock.
type StreamVerifier struct {
	pat     Pattern
	off     uint64
	corrupt *CorruptionError
	gaps    GapTracker
	want    []byte // scratch for expected bytes, allocated once
}

// NewStreamVerifier returns a verifier for the stream of seed.
func NewStreamVerifier(seed uint64) *StreamVerifier {
	return &StreamVerifier{pat: NewPattern(seed), want: make([]byte, verifyChunk)}
}

// Write checks p, the next received bytes, arriving at time at. It returns a
// *CorruptionError for the first mismatch; after that the stream is known
// bad, further bytes are only counted and the same error is returned.
func (v *StreamVerifier) Write(p []byte, at time.Time) error {
	if len(p) == 0 {
		return v.err()
	}
	v.gaps.Observe(at)
	if v.corrupt != nil {
		v.off += uint64(len(p))
		return v.corrupt
	}
	for len(p) > 0 {
		n := min(len(p), len(v.want))
		want := v.want[:n]
		v.pat.Fill(want, v.off)
		if !bytes.Equal(want, p[:n]) {
			for i := range n {
				if want[i] != p[i] {
					v.corrupt = &CorruptionError{Offset: v.off + uint64(i), Want: want[i], Got: p[i]}
					break
				}
			}
			v.off += uint64(len(p))
			return v.corrupt
		}
		v.off += uint64(n)
		p = p[n:]
	}
	return nil
}

func (v *StreamVerifier) err() error {
	if v.corrupt != nil {
		return v.corrupt
	}
	return nil
}

// Bytes is how many bytes were received (verified or not).
func (v *StreamVerifier) Bytes() uint64 { return v.off }

// Corrupt returns the first mismatch, or nil if the stream is intact.
func (v *StreamVerifier) Corrupt() *CorruptionError { return v.corrupt }

// Gaps returns the tracker of gaps between received chunks.
func (v *StreamVerifier) Gaps() *GapTracker { return &v.gaps }

// SeqStats is what a SeqTracker knows at one moment.
type SeqStats struct {
	Sent       uint64 // probes sent
	Received   uint64 // distinct probes echoed back
	Lost       uint64 // settled probes (older than the settle time) never echoed
	Duplicates uint64 // echoes of a probe already received
	Reordered  uint64 // echoes that arrived after a later probe's echo
	Bogus      uint64 // echoes of a sequence number never sent (ignored)
	LongestGap time.Duration
	GapStart   time.Time // when the longest gap began
}

// SeqTracker follows sequence-numbered probes (udp-probe, ping): the
// sender asks it for each next sequence number, the receiver reports each
// echo. A probe counts as lost once it is older than the settle time and
// its echo has not come; an echo arriving later still counts as received
// (and as reordered), so Lost only ever reflects real loss. The longest gap
// is the longest time between consecutive (non-duplicate) echoes.
//
// It keeps one bit per probe sent (1 ms probes: 450 KB an hour). It is pure
// (timestamps come from the caller) and not safe for concurrent use.
type SeqTracker struct {
	settle time.Duration

	next     uint64   // next sequence number to send
	seen     []uint64 // bitmap of echoed sequence numbers
	received uint64
	maxSeen  uint64 // highest echoed seq + 1 (0: none yet)
	dups     uint64
	reorder  uint64
	bogus    uint64
	gaps     GapTracker
	lastSent time.Time

	// Settlement: sequence numbers below settled are past the settle time;
	// lostSettled counts those among them not (yet) echoed.
	pending      []sentProbe // sent, not yet settled, oldest first
	settled      uint64
	lostSettled  uint64
	lossRuns     []LossRun // runs of settled lost probes, oldest first (gaps.go)
	droppedLost  uint64    // lost probes of runs dropped from lossRuns
	droppedUntil time.Time // the latest last probe of a run dropped from lossRuns
}

type sentProbe struct {
	seq uint64
	at  time.Time
}

// NewSeqTracker returns a tracker that settles a probe (counts it lost if
// unanswered) settle after it was sent.
func NewSeqTracker(settle time.Duration) *SeqTracker {
	return &SeqTracker{settle: settle}
}

// Next allocates the next sequence number, for a probe sent at time at.
func (t *SeqTracker) Next(at time.Time) uint64 {
	seq := t.next
	t.next++
	t.lastSent = at
	if seq/64 >= uint64(len(t.seen)) {
		t.seen = append(t.seen, 0)
	}
	t.pending = append(t.pending, sentProbe{seq: seq, at: at})
	return seq
}

// Sent is how many probes were sent.
func (t *SeqTracker) Sent() uint64 { return t.next }

// LastSent is when the latest probe was sent.
func (t *SeqTracker) LastSent() time.Time { return t.lastSent }

// EchoVerdict says what one echo was.
type EchoVerdict uint8

// Echo verdicts.
const (
	EchoNew       EchoVerdict = iota // first echo of this probe, in order
	EchoReordered                    // first echo, but a later probe's echo came first
	EchoDuplicate                    // this probe was already echoed
	EchoBogus                        // never sent: ignored
)

// Received records the echo of seq arriving at time at.
func (t *SeqTracker) Received(seq uint64, at time.Time) EchoVerdict {
	if seq >= t.next {
		t.bogus++
		return EchoBogus
	}
	w, b := seq/64, uint64(1)<<(seq%64)
	if t.seen[w]&b != 0 {
		t.dups++
		return EchoDuplicate
	}
	t.seen[w] |= b
	t.received++
	t.gaps.Observe(at)
	if seq < t.settled {
		// It had been counted lost; it was only late.
		t.lostSettled--
		t.lateEcho(seq)
	}
	if seq+1 < t.maxSeen {
		t.reorder++
		return EchoReordered
	}
	t.maxSeen = seq + 1
	return EchoNew
}

func (t *SeqTracker) isSeen(seq uint64) bool { return t.seen[seq/64]&(1<<(seq%64)) != 0 }

// settleUntil settles every probe sent at or before cutoff.
func (t *SeqTracker) settleUntil(cutoff time.Time) {
	i := 0
	for ; i < len(t.pending) && !t.pending[i].at.After(cutoff); i++ {
		if !t.isSeen(t.pending[i].seq) {
			t.lostSettled++
			t.noteLost(t.pending[i].seq, t.pending[i].at)
		}
		t.settled = t.pending[i].seq + 1
	}
	if i > 0 {
		t.pending = append(t.pending[:0], t.pending[i:]...)
	}
}

// Stats settles the probes older than the settle time at now and returns the
// figures. The longest gap includes the one still open at the last send: a
// silence that lasted until the sender stopped is a real outage.
func (t *SeqTracker) Stats(now time.Time) SeqStats {
	t.settleUntil(now.Add(-t.settle))
	end := now
	if !t.lastSent.IsZero() && t.lastSent.Before(end) {
		end = t.lastSent
	}
	longest, start := t.gaps.LongestUntil(end)
	return SeqStats{
		Sent: t.next, Received: t.received, Lost: t.lostSettled,
		Duplicates: t.dups, Reordered: t.reorder, Bogus: t.bogus,
		LongestGap: longest, GapStart: start,
	}
}

// Finish settles every probe (the sender stopped and the grace for late
// echoes is over) and returns the final figures: Lost = Sent - Received.
func (t *SeqTracker) Finish() SeqStats {
	return t.Stats(t.lastSent.Add(t.settle))
}

// Gaps returns the tracker of gaps between echoes.
func (t *SeqTracker) Gaps() *GapTracker { return &t.gaps }
