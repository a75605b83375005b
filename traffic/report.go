package traffic

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// FlowState is where one flow stands at a report. The values are the JSON
// strings of the report.
type FlowState string

// Flow states. See the package documentation for what each means for the
// verdict.
const (
	StateConnecting FlowState = "connecting" // not established yet
	StateAlive      FlowState = "alive"      // established, progressing
	StateStalled    FlowState = "stalled"    // established, no progress for --stall
	StateCompleted  FlowState = "completed"  // ended cleanly (all bytes, or the agreed close)
	StateReset      FlowState = "reset"      // broke: ECONNRESET, write error, early EOF
	StateCorrupt    FlowState = "corrupt"    // a received byte did not match
	StateFailed     FlowState = "failed"     // never established (connect refused, timed out)
)

// Known reports whether s is one of the defined states.
func (s FlowState) Known() bool {
	switch s {
	case StateConnecting, StateAlive, StateStalled, StateCompleted, StateReset, StateCorrupt, StateFailed:
		return true
	}
	return false
}

// Agent kinds (the first argument of `falab agent`).
const (
	KindTCPStream = "tcp-stream"
	KindUDPProbe  = "udp-probe"
	KindHTTP      = "http"
	KindPing      = "ping"
	// The CTIQBE lab model's agents (a lab model of CTIQBE's behaviour,
	// not wire-compatible): see softphone.go and callmanager.go.
	KindSoftphone   = "softphone"
	KindCallManager = "callmanager"
)

// Agent roles.
const (
	RoleServer = "server"
	RoleClient = "client"
)

// FlowReport is the state of one flow (a TCP connection, an HTTP download,
// a udp-probe or ping session) as one side sees it.
type FlowReport struct {
	ID      uint32    `json:"id"`
	Session string    `json:"session,omitempty"` // client run id (hex), as the server learned it
	State   FlowState `json:"state"`
	// Established is when the flow was established (zero if never).
	Established time.Time `json:"established,omitzero"`
	// Ended is when the flow left alive/stalled (zero if it has not).
	Ended        time.Time `json:"ended,omitzero"`
	LongestGapMs float64   `json:"longest_gap_ms"`
	GapStart     time.Time `json:"gap_start,omitzero"` // when the longest gap began
	// Gaps lists the flow's notable gaps (>= NotableGap; the longest
	// maxGaps) with their times, so each can be set against a fault.
	Gaps []Gap `json:"gaps,omitempty"`
	// GapsDroppedMaxMs is the longest notable gap not in Gaps (see
	// maxGaps for which are kept): 0 when Gaps is complete.
	// GapsDroppedUntil is when the latest of those ended: Gaps holds
	// every notable gap that ended after it.
	GapsDroppedMaxMs float64   `json:"gaps_dropped_max_ms,omitempty"`
	GapsDroppedUntil time.Time `json:"gaps_dropped_until,omitzero"`
	// LossRuns lists runs of probes never echoed (udp-probe, ping; see
	// maxLossRuns for which are kept); LossRunsDroppedLost counts the
	// probes lost in the runs left out.
	LossRuns            []LossRun `json:"loss_runs,omitempty"`
	LossRunsDroppedLost uint64    `json:"loss_runs_dropped_lost,omitempty"`
	// LossRunsDroppedUntil is the last probe of the latest run left out.
	LossRunsDroppedUntil time.Time `json:"loss_runs_dropped_until,omitzero"`
	BytesSent            uint64    `json:"bytes_sent"`
	BytesReceived        uint64    `json:"bytes_received"` // verified bytes (up to the first corrupt one)
	Local                string    `json:"local,omitempty"`
	Remote               string    `json:"remote,omitempty"`
	// Peers lists every distinct source address:port the server saw for
	// this flow, in order of first sight. More than one means NAT re-mapped
	// the flow (only possible for UDP: a TCP connection has one).
	Peers []string `json:"peers,omitempty"`
	// CorruptAt is the stream offset of the first bad byte (state corrupt).
	CorruptAt *uint64 `json:"corrupt_at,omitempty"`
	Error     string  `json:"error,omitempty"`
	// Voice is the softphone's or CallManager's view of a CTIQBE
	// connection (those kinds only).
	Voice *VoiceReport `json:"voice,omitempty"`
}

// Survived reports whether the flow survived a fault at time fault: it was
// established before fault and at the end it is alive or completed (not
// reset, not stalled, not corrupt, never failed). A zero fault only asks
// whether the flow is healthy at the end.
func (f FlowReport) Survived(fault time.Time) bool {
	if f.Established.IsZero() || (!fault.IsZero() && !f.Established.Before(fault)) {
		return false
	}
	return f.State == StateAlive || f.State == StateCompleted
}

// Report is one line an agent writes: its whole state at At.
type Report struct {
	Kind string `json:"kind"`
	Role string `json:"role"`

	Flows     int `json:"flows"` // flows started (client) or accepted (server)
	Alive     int `json:"alive"`
	Completed int `json:"completed"`
	Reset     int `json:"reset"`
	Stalled   int `json:"stalled"`
	Corrupt   int `json:"corrupt"`
	Failed    int `json:"failed"`

	BytesSent     uint64 `json:"bytes_sent"`
	BytesReceived uint64 `json:"bytes_received"`
	// LongestGapMs is the longest gap of any flow, in milliseconds.
	LongestGapMs float64 `json:"longest_gap_ms"`

	// Probe figures (udp-probe client, ping).
	Sent       uint64 `json:"sent"`
	Received   uint64 `json:"received"`
	Lost       uint64 `json:"lost"`
	Reordered  uint64 `json:"reordered"`
	Duplicates uint64 `json:"duplicates"`

	// Rejected counts connections or datagrams a server dropped as not
	// ours (bad header, bad probe).
	Rejected uint64 `json:"rejected,omitempty"`

	Detail []FlowReport `json:"detail"`

	Started time.Time `json:"started"`
	At      time.Time `json:"at"`
	Final   bool      `json:"final"`
	Error   string    `json:"error,omitempty"`
}

// tally recomputes the counters from Detail, so the counts can never
// disagree with the flows they summarise.
func (r *Report) tally() {
	r.Flows, r.Alive, r.Completed, r.Reset, r.Stalled, r.Corrupt, r.Failed = len(r.Detail), 0, 0, 0, 0, 0, 0
	r.BytesSent, r.BytesReceived, r.LongestGapMs = 0, 0, 0
	for _, f := range r.Detail {
		switch f.State {
		case StateAlive:
			r.Alive++
		case StateCompleted:
			r.Completed++
		case StateReset:
			r.Reset++
		case StateStalled:
			r.Stalled++
		case StateCorrupt:
			r.Corrupt++
		case StateFailed:
			r.Failed++
		}
		r.BytesSent += f.BytesSent
		r.BytesReceived += f.BytesReceived
		r.LongestGapMs = max(r.LongestGapMs, f.LongestGapMs)
	}
}

// ParseReport decodes one report line and checks it is one an agent could
// have written: a known kind and role, known flow states, and counters that
// agree with the detail list. A report that does not hold together is an
// error, never a verdict.
func ParseReport(line []byte) (Report, error) {
	var r Report
	if err := json.Unmarshal(line, &r); err != nil {
		return Report{}, fmt.Errorf("report: %w", err)
	}
	switch r.Kind {
	case KindTCPStream, KindUDPProbe, KindHTTP, KindPing, KindSoftphone, KindCallManager:
	default:
		return Report{}, fmt.Errorf("report: unknown kind %q", r.Kind)
	}
	if r.Role != RoleServer && r.Role != RoleClient {
		return Report{}, fmt.Errorf("report: unknown role %q", r.Role)
	}
	for i, f := range r.Detail {
		if !f.State.Known() {
			return Report{}, fmt.Errorf("report: flow %d (detail[%d]): unknown state %q", f.ID, i, f.State)
		}
	}
	check := r
	check.Detail = slices.Clone(r.Detail)
	check.tally()
	if check.Flows != r.Flows || check.Alive != r.Alive || check.Completed != r.Completed ||
		check.Reset != r.Reset || check.Stalled != r.Stalled || check.Corrupt != r.Corrupt || check.Failed != r.Failed {
		return Report{}, fmt.Errorf("report: counters (flows %d alive %d completed %d reset %d stalled %d corrupt %d failed %d) disagree with the %d flows in detail",
			r.Flows, r.Alive, r.Completed, r.Reset, r.Stalled, r.Corrupt, r.Failed, len(r.Detail))
	}
	return r, nil
}

// Summary is the verdict-ready reduction of an agent's final report.
type Summary struct {
	Kind, Role string // of the agent that wrote the report
	Flows      int    // flows in the report
	// Survived counts flows that survived the fault (FlowReport.Survived).
	Survived int
	// NotEstablished counts flows established at or after the fault, or
	// never: they say nothing about the failover either way.
	NotEstablished int
	Reset          int
	Stalled        int
	Corrupt        int
	// Remapped lists flows whose server saw more than one source address.
	Remapped       []uint32
	LongestGap     time.Duration
	Lost           uint64
	Sent           uint64
	Final          bool
	Error          string
	AllSurvived    bool // every flow established before the fault survived, and there was at least one
	AnyEstablished bool // at least one flow was established at all
}

// ErrNoReport means Summarize was given nothing to summarise.
var ErrNoReport = errors.New("summarize: no report")

// Summarize reduces the latest report of reports (normally the final one)
// against a fault at time fault (zero: no fault, judge the end state only).
// It is an error if there is no report or the latest is not final: a
// verdict from an agent that did not finish is not a verdict.
func Summarize(reports []Report, fault time.Time) (Summary, error) {
	if len(reports) == 0 {
		return Summary{}, ErrNoReport
	}
	r := reports[len(reports)-1]
	s := Summary{
		Kind: r.Kind, Role: r.Role, Flows: len(r.Detail),
		Lost: r.Lost, Sent: r.Sent, Final: r.Final, Error: r.Error,
		LongestGap: time.Duration(r.LongestGapMs * float64(time.Millisecond)),
	}
	for _, f := range r.Detail {
		if !f.Established.IsZero() {
			s.AnyEstablished = true
		}
		switch {
		case f.Established.IsZero() || (!fault.IsZero() && !f.Established.Before(fault)):
			s.NotEstablished++
		case f.Survived(fault):
			s.Survived++
		}
		switch f.State {
		case StateReset:
			s.Reset++
		case StateStalled:
			s.Stalled++
		case StateCorrupt:
			s.Corrupt++
		}
		if len(f.Peers) > 1 {
			s.Remapped = append(s.Remapped, f.ID)
		}
	}
	s.AllSurvived = s.Survived > 0 && s.Survived == s.Flows-s.NotEstablished
	if !r.Final {
		return s, fmt.Errorf("summarize: the latest %s %s report (at %s) is not final: the agent did not finish",
			r.Kind, r.Role, r.At.Format(time.RFC3339Nano))
	}
	return s, nil
}

func durMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
