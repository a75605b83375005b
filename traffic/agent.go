package traffic

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// agentConfig is every flag of every kind; each kind registers the ones it
// uses, so a flag of another kind is an error.
type agentConfig struct {
	kind, role  string
	port        int
	bind        string // server: address to listen on (empty: all)
	target      string // client: host or host:port
	duration    time.Duration
	reportEvery time.Duration
	reportFile  string // "": append reports to the output stream
	stall       time.Duration

	flows      int
	direction  Direction
	rate       int64 // bytes/s per flow
	resetFlow  int   // server: abort this flow id with a RST (-1: none)
	resetAfter time.Duration

	interval time.Duration
	grace    time.Duration

	size int64

	voice voiceConfig // softphone and callmanager
}

// runner is one agent: a server or client of one kind.
type runner interface {
	// run works until ctx is done (or the client's work is over) and
	// returns why it stopped early, if it did.
	run(ctx context.Context) error
	// snapshot returns the flows as they stand at now; RunAgent fills the
	// counters and the report's frame.
	snapshot(now time.Time) Report
}

// RunAgent runs one traffic agent, as `falab agent <kind> [flags]` does:
// args[0] is the kind (tcp-stream, udp-probe, http, ping), the rest its
// flags (run with -h for the list). It writes one JSON Report line to out
// every --report-every and a final one ("final": true) when ctx is
// cancelled, --duration ends or the client's work is done; with
// --report-file it writes them over that file instead ([ReportFile]: the
// file holds only the latest, so it stays bounded). An error in the
// flags is returned before anything runs; an error while running is in the
// final report and returned.
func RunAgent(ctx context.Context, args []string, out io.Writer) error {
	return RunAgentLogger(ctx, args, out, nil)
}

// RunAgentLogger is RunAgent with a logger for what does not belong in the
// reports (a nil logger discards).
func RunAgentLogger(ctx context.Context, args []string, out io.Writer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := parseAgentFlags(args)
	if err != nil {
		return err
	}
	r, err := newRunner(cfg, log)
	if err != nil {
		return err
	}
	var sink reportSink = newStreamSink(out)
	if cfg.reportFile != "" {
		sink = NewReportFile(cfg.reportFile)
	}
	return drive(ctx, cfg, r, sink, time.Now)
}

// reporter frames a runner's snapshots into reports and hands them to a
// sink. It is the pure part of the report loop: tests drive it with
// simulated times.
type reporter struct {
	cfg      agentConfig
	r        runner
	sink     reportSink
	started  time.Time
	writeErr error // the first failed write; later reports are not written
}

// frame is r's report at at.
func (p *reporter) frame(at time.Time, final bool, runErr error) Report {
	rep := p.r.snapshot(at)
	rep.Kind, rep.Role, rep.Started, rep.At, rep.Final = p.cfg.kind, p.cfg.role, p.started, at, final
	if runErr != nil {
		rep.Error = runErr.Error()
	}
	rep.tally()
	if rep.Detail == nil {
		rep.Detail = []FlowReport{}
	}
	return rep
}

// report writes the report at at (unless a write failed before).
func (p *reporter) report(at time.Time, final bool, runErr error) {
	if p.writeErr == nil {
		p.writeErr = p.sink.write(p.frame(at, final, runErr))
	}
}

// drive runs r and writes its reports.
func drive(ctx context.Context, cfg agentConfig, r runner, sink reportSink, now func() time.Time) error {
	p := &reporter{cfg: cfg, r: r, sink: sink, started: now()}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.duration > 0 {
		runCtx, cancel = context.WithTimeout(runCtx, cfg.duration)
		defer cancel()
	}
	done := make(chan error, 1)
	go func() { done <- r.run(runCtx) }()

	tick := time.NewTicker(cfg.reportEvery)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			p.report(now(), false, nil)
		case runErr := <-done:
			p.report(now(), true, runErr)
			if runErr != nil {
				return runErr
			}
			if p.writeErr != nil {
				return fmt.Errorf("writing report: %w", p.writeErr)
			}
			return nil
		}
	}
}

// defaultPorts are the ports a kind listens on and connects to unless
// --port says otherwise.
var defaultPorts = map[string]int{KindTCPStream: 5201, KindUDPProbe: 5202, KindHTTP: 80, KindSoftphone: 2748, KindCallManager: 2748}

// parseAgentFlags parses `falab agent KIND [flags]` into a checked
// configuration.
func parseAgentFlags(args []string) (agentConfig, error) {
	if len(args) == 0 {
		return agentConfig{}, errors.New("agent: missing kind (one of tcp-stream, udp-probe, http, ping)")
	}
	cfg := agentConfig{kind: args[0], resetFlow: -1}
	var usage strings.Builder
	dir := "both"
	fs, err := cfg.flagSet(&usage, &dir)
	if err != nil {
		return agentConfig{}, err
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			// The caller prints this and exits 0 (errors.Is(err, flag.ErrHelp)).
			usage.Reset()
			fs.PrintDefaults()
			return agentConfig{}, fmt.Errorf("%w: usage of falab agent %s:\n%s", err, cfg.kind, usage.String())
		}
		return agentConfig{}, fmt.Errorf("agent %s: %w", cfg.kind, err)
	}
	if fs.NArg() > 0 {
		return agentConfig{}, fmt.Errorf("agent %s: unexpected argument %q", cfg.kind, fs.Arg(0))
	}
	if err := cfg.check(dir); err != nil {
		return agentConfig{}, fmt.Errorf("agent %s: %w", cfg.kind, err)
	}
	return cfg, nil
}

// flagSet returns the flags of c's kind, bound to c's fields (and
// --direction to dir), writing its usage to usage.
func (c *agentConfig) flagSet(usage *strings.Builder, dir *string) (*flag.FlagSet, error) {
	fs := flag.NewFlagSet("agent "+c.kind, flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.role, "role", "", "server or client (required)")
	fs.DurationVar(&c.duration, "duration", 0, "stop after this long (0: until cancelled)")
	fs.DurationVar(&c.reportEvery, "report-every", 100*time.Millisecond, "write a report this often")
	fs.StringVar(&c.reportFile, "report-file", "", "write each report over this file (it holds only the latest: bounded) instead of appending to stdout")
	fs.DurationVar(&c.stall, "stall", time.Second, "a flow with no progress for this long is stalled")
	switch c.kind {
	case KindTCPStream, KindUDPProbe, KindHTTP, KindSoftphone, KindCallManager:
		fs.IntVar(&c.port, "port", defaultPorts[c.kind], "port the server listens on and the client connects to")
		fs.StringVar(&c.bind, "bind", "", "server: address to listen on (default: all)")
		fs.StringVar(&c.target, "target", "", "client: server host or host:port (required for clients)")
	case KindPing:
		fs.StringVar(&c.target, "target", "", "address to ping (required)")
	default:
		return nil, fmt.Errorf("agent: unknown kind %q (one of tcp-stream, udp-probe, http, ping, softphone, callmanager)", c.kind)
	}
	c.voice.flags(fs, c.kind)
	switch c.kind {
	case KindTCPStream:
		fs.IntVar(&c.flows, "flows", 20, "client: number of connections")
		fs.StringVar(dir, "direction", "both", "client: c2s, s2c or both")
		fs.Int64Var(&c.rate, "rate", 1_000_000, "bytes per second per flow and direction")
		fs.IntVar(&c.resetFlow, "reset-flow", -1, "server: abort this flow id with a TCP RST (to prove the checks catch it)")
		fs.DurationVar(&c.resetAfter, "reset-after", 0, "server: how long after accepting --reset-flow to abort it")
	case KindUDPProbe:
		fs.DurationVar(&c.interval, "interval", time.Millisecond, "client: time between probes")
		fs.DurationVar(&c.grace, "grace", 200*time.Millisecond, "client: how long to wait for an echo before counting it lost")
	case KindPing:
		fs.DurationVar(&c.interval, "interval", 10*time.Millisecond, "time between echo requests")
		fs.DurationVar(&c.grace, "grace", 500*time.Millisecond, "how long to wait for a reply before counting it lost")
	case KindHTTP:
		fs.IntVar(&c.flows, "flows", 1, "client: parallel downloads")
		fs.Int64Var(&c.size, "size", 1<<30, "server: body size in bytes")
		fs.Int64Var(&c.rate, "rate", 1_000_000, "client: bytes per second per download")
	}
	return fs, nil
}

// check says what is wrong with a parsed configuration: the flags every
// kind has, then checkKind.
func (c *agentConfig) check(dir string) error {
	switch c.role {
	case RoleServer, RoleClient:
	case "":
		return errors.New("--role is required (server or client)")
	default:
		return fmt.Errorf("--role %q is not server or client", c.role)
	}
	if c.kind == KindPing && c.role != RoleClient {
		return errors.New("ping has only a client role (the target's kernel answers echo requests)")
	}
	if c.role == RoleClient && c.target == "" {
		return errors.New("--target is required for a client")
	}
	if c.role == RoleServer && c.target != "" {
		return errors.New("--target is for clients; a server listens on --bind and --port")
	}
	if c.kind != KindPing && (c.port <= 0 || c.port > 65535) {
		return fmt.Errorf("--port %d is not in 1..65535", c.port)
	}
	if c.reportEvery <= 0 {
		return fmt.Errorf("--report-every must be positive, got %s", c.reportEvery)
	}
	if c.stall <= 0 {
		return fmt.Errorf("--stall must be positive, got %s", c.stall)
	}
	if c.duration < 0 {
		return fmt.Errorf("--duration must not be negative, got %s", c.duration)
	}
	if err := c.voice.check(c.kind, c.role); err != nil {
		return err
	}
	return c.checkKind(dir)
}

// checkKind checks the flags of c's kind; dir is --direction as given.
func (c *agentConfig) checkKind(dir string) error {
	switch c.kind {
	case KindTCPStream:
		d, err := ParseDirection(dir)
		if err != nil {
			return fmt.Errorf("--direction: %v", err)
		}
		c.direction = d
		if c.flows < 1 || c.flows > 10000 {
			return fmt.Errorf("--flows %d is not in 1..10000", c.flows)
		}
		if c.rate <= 0 {
			return fmt.Errorf("--rate must be positive bytes/s, got %d", c.rate)
		}
		if c.resetAfter < 0 {
			return fmt.Errorf("--reset-after must not be negative, got %s", c.resetAfter)
		}
	case KindUDPProbe, KindPing:
		if c.interval <= 0 {
			return fmt.Errorf("--interval must be positive, got %s", c.interval)
		}
		if c.grace <= 0 {
			return fmt.Errorf("--grace must be positive, got %s", c.grace)
		}
	case KindHTTP:
		if c.flows < 1 || c.flows > 10000 {
			return fmt.Errorf("--flows %d is not in 1..10000", c.flows)
		}
		if c.rate <= 0 {
			return fmt.Errorf("--rate must be positive bytes/s, got %d", c.rate)
		}
		if c.size <= 0 {
			return fmt.Errorf("--size must be positive, got %d", c.size)
		}
	}
	return nil
}

// listenAddr is the server's host:port.
func (c agentConfig) listenAddr() string { return net.JoinHostPort(c.bind, strconv.Itoa(c.port)) }

// targetAddr is the client's host:port: --target, with --port if it has none.
func (c agentConfig) targetAddr() string {
	if _, _, err := net.SplitHostPort(c.target); err == nil {
		return c.target
	}
	return net.JoinHostPort(c.target, strconv.Itoa(c.port))
}

func newRunner(cfg agentConfig, log *slog.Logger) (runner, error) {
	log = log.With("agent", cfg.kind, "role", cfg.role)
	switch {
	case cfg.kind == KindTCPStream && cfg.role == RoleServer:
		return newStreamServer(cfg, log), nil
	case cfg.kind == KindTCPStream:
		return newStreamClient(cfg, log), nil
	case cfg.kind == KindUDPProbe && cfg.role == RoleServer:
		return newProbeServer(cfg, log), nil
	case cfg.kind == KindUDPProbe:
		return newProbeClient(cfg, log), nil
	case cfg.kind == KindHTTP && cfg.role == RoleServer:
		return newHTTPServer(cfg, log), nil
	case cfg.kind == KindHTTP:
		return newHTTPClient(cfg, log), nil
	case cfg.kind == KindPing:
		return newPinger(cfg, log), nil
	case cfg.kind == KindSoftphone && cfg.role == RoleClient:
		return newSoftphone(cfg, log), nil
	case cfg.kind == KindCallManager && cfg.role == RoleServer:
		return newCallManager(cfg, log), nil
	}
	return nil, fmt.Errorf("agent: no %s %s", cfg.kind, cfg.role)
}

// flowCore is the state every flow shares, guarded by its mu (held briefly:
// by the flow's goroutines when they make progress, by snapshot).
type flowCore struct {
	mu      sync.Mutex
	id      uint32
	session string
	// state is connecting, alive or a final state. Stalled is derived at
	// each report from the idle time, and final only if the flow was
	// stalled when the run ended.
	state       FlowState
	established time.Time
	ended       time.Time
	begun       time.Time // when the flow was started (idle reference before the first byte)
	sent        uint64
	verify      *StreamVerifier // nil: this side receives no stream
	received    uint64          // verified bytes (up to the first bad one)
	closing     bool            // this side announced the end: an EOF now is the agreed close
	corruptAt   *uint64
	local       string
	remote      string
	err         string
}

// end moves the flow to a terminal state once; the first cause wins (a
// reset seen after corruption does not hide the corruption).
func (f *flowCore) endLocked(state FlowState, at time.Time, err error) {
	switch f.state {
	case StateCompleted, StateReset, StateCorrupt, StateFailed, StateStalled:
		return
	}
	f.state, f.ended = state, at
	if err != nil {
		f.err = err.Error()
	}
}

func (f *flowCore) end(state FlowState, at time.Time, err error) {
	f.mu.Lock()
	f.endLocked(state, at, err)
	f.mu.Unlock()
}

// stalledAtEndLocked ends a receiving flow as stalled if, at now (when the
// run ends), it had made no progress for stall: a flow that was stalled when
// the measurement ended did not survive, whatever the closing handshake
// does afterwards.
func (f *flowCore) stalledAtEndLocked(now time.Time, stall time.Duration) {
	if f.verify == nil || f.state != StateAlive {
		return
	}
	if idle := f.verify.Gaps().Idle(now, f.established); idle >= stall {
		f.endLocked(StateStalled, now, fmt.Errorf("no progress for %s when the run ended", idle.Round(time.Millisecond)))
	}
}

// report renders the flow at now; stall is the no-progress threshold.
func (f *flowCore) report(now time.Time, stall time.Duration) FlowReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := FlowReport{
		ID: f.id, Session: f.session, State: f.state, Established: f.established, Ended: f.ended,
		BytesSent: f.sent, BytesReceived: f.received, Local: f.local, Remote: f.remote,
		CorruptAt: f.corruptAt, Error: f.err,
	}
	if f.verify != nil {
		until := now
		if !f.ended.IsZero() {
			until = f.ended
		}
		gaps := f.verify.Gaps()
		longest, start := gaps.LongestUntil(until)
		r.LongestGapMs, r.GapStart = durMs(longest), start
		r.Gaps, r.GapsDroppedMaxMs, r.GapsDroppedUntil = gaps.Notable(until), durMs(gaps.DroppedMax()), gaps.DroppedUntil()
		if f.state == StateAlive && gaps.Idle(now, f.established) >= stall {
			r.State = StateStalled
		}
	}
	return r
}
