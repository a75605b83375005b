package labbench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/traffic"
)

// Unit states the bench waits for (failover's state names).
const (
	stateActive       = "Active"
	stateStandbyReady = "Standby Ready"
)

// status asks one unit of a running lab for its status.
func status(ctx context.Context, labName, unitName string) (api.Status, error) {
	c, err := lab.UnitClient(labName, unitName)
	if err != nil {
		return api.Status{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.Status(ctx)
}

// waitPair waits until one unit of the lab is Active and its peer Standby
// Ready, and returns the active one.
func waitPair(ctx context.Context, labName string, timeout time.Duration) (string, error) {
	names, err := lab.UnitNames(labName)
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for {
		var states [2]string
		for i, n := range names {
			s, err := status(ctx, labName, n)
			if err != nil {
				states[i] = "error: " + err.Error()
				continue
			}
			states[i] = s.State
		}
		for i := range names {
			if states[i] == stateActive && states[1-i] == stateStandbyReady {
				return names[i], nil
			}
		}
		last = fmt.Sprintf("%s %s, %s %s", names[0], states[0], names[1], states[1])
		if time.Now().After(deadline) {
			return "", fmt.Errorf("lab %s: no Active/Standby Ready pair after %v (%s)", labName, timeout, last)
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// reportOf returns the latest reports of one traffic generator.
func reportOf(labName, name string) (lab.TrafficReport, error) {
	reps, err := lab.TrafficReports(labName)
	if err != nil {
		return lab.TrafficReport{}, err
	}
	for _, r := range reps {
		if r.Traffic.Name == name {
			return r, nil
		}
	}
	return lab.TrafficReport{}, fmt.Errorf("no report of traffic %s", name)
}

// gapResult is one failover of a udp-probe run.
type gapResult struct {
	GapMs         float64
	Lost, Sent    uint64
	From, NewUnit string
}

// gapOnce brings up a lab, runs a udp-probe every 1 ms client1->server1,
// injects fault (kill or freeze) into the active unit and reads the
// probe's longest gap and lost probes.
func (b *bench) gapOnce(ctx context.Context, fault string) (gapResult, error) {
	bl, down, err := b.up(ctx, "fo", false)
	if err != nil {
		return gapResult{}, err
	}
	defer down()
	active, err := waitPair(ctx, bl.Name, 10*time.Second)
	if err != nil {
		return gapResult{}, err
	}
	const probe = "probe"
	if err := lab.StartTraffic(ctx, bl.Name, lab.Traffic{Name: probe, Kind: traffic.KindUDPProbe, Client: "client1", Server: "server1", Interval: time.Millisecond}); err != nil {
		return gapResult{}, err
	}
	if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
		return gapResult{}, err
	}
	if r, err := reportOf(bl.Name, probe); err != nil {
		return gapResult{}, err
	} else if r.Client == nil || r.Client.Received == 0 {
		return gapResult{}, errors.New("udp-probe gets no echoes through the unit before the fault")
	}
	if _, err := lab.Inject(ctx, bl.Name, lab.Fault{Kind: fault, Target: active}); err != nil {
		return gapResult{}, err
	}
	b.log.Debug("bench: fault injected", "lab", bl.Name, "fault", fault, "unit", active)
	// Detection (hold time 100 ms) and takeover, then enough probes
	// after it to see the flow back.
	if err := sleepCtx(ctx, pick(b, time.Second, 1500*time.Millisecond)); err != nil {
		return gapResult{}, err
	}
	if err := lab.StopTraffic(bl.Name, probe); err != nil {
		return gapResult{}, err
	}
	b.log.Debug("bench: probe stopped", "lab", bl.Name)
	r, err := reportOf(bl.Name, probe)
	if err != nil {
		return gapResult{}, err
	}
	if r.Client == nil {
		return gapResult{}, errors.New("udp-probe client wrote no report")
	}
	res := gapResult{GapMs: r.Client.LongestGapMs, Lost: r.Client.Lost, Sent: r.Client.Sent, From: active}
	if n, err := b.activeUnit(ctx, bl.Name); err == nil {
		res.NewUnit = n
	}
	if res.NewUnit == active {
		return res, fmt.Errorf("after %s of %s, %s still reports active: no takeover to measure", fault, active, active)
	}
	return res, nil
}

// gapCase is one fault of a gap row.
type gapCase struct {
	fault, id, name string
	target          *Target
}

// failoverGaps is figure 6: crash (SIGKILL) and freeze (SIGSTOP).
func (b *bench) failoverGaps(ctx context.Context) []Figure {
	return b.gapFigures(ctx, 6, []gapCase{
		{lab.FaultKill, "gap-crash", "failover gap, crash (SIGKILL active)", &Target{Op: "<", Value: 10, OnMax: true}},
		{lab.FaultFreeze, "gap-freeze", "failover gap, freeze (SIGSTOP active)", &Target{Op: "<", Value: 110, OnMax: true}},
	}, b.gapOnce)
}

// gapFigures repeats once for each case, three times (one in a quick
// run), and makes each case's row from the runs that measured a gap.
func (b *bench) gapFigures(ctx context.Context, item int, cases []gapCase, once func(context.Context, string) (gapResult, error)) []Figure {
	var figs []Figure
	for _, c := range cases {
		var gaps []float64
		var lost []uint64
		var errs []error
		n := b.reps(3)
		for range n {
			if ctx.Err() != nil {
				break
			}
			r, err := once(ctx, c.fault)
			if err != nil {
				b.log.Warn("bench: failover gap run failed", "row", c.id, "err", err)
				errs = append(errs, err)
				continue
			}
			gaps = append(gaps, r.GapMs)
			lost = append(lost, r.Lost)
		}
		if len(gaps) == 0 {
			err := errors.Join(errs...)
			if err == nil {
				err = ctx.Err()
			}
			figs = append(figs, notMeasured(item, c.id, c.name, "ms", c.target, err))
			continue
		}
		detail := fmt.Sprintf("udp-probe every 1 ms client1->server1, longest echo gap; %d of %d runs; gaps %s ms; probes lost %v",
			len(gaps), n, floats(gaps), lost)
		if len(errs) > 0 {
			detail += fmt.Sprintf("; %d runs failed: %s", len(errs), errText(errors.Join(errs...)))
		}
		figs = append(figs, repeated(item, c.id, c.name, "ms", gaps, c.target, detail))
	}
	return figs
}

func floats(xs []float64) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.1f", x)
	}
	return s
}

// streamDirs are the tcp-stream directions of the TCP resume rows.
var streamDirs = []string{"c2s", "s2c", "both"}

// streamResult is one direction's tcp-stream generator across a fault.
type streamResult struct {
	dir                  string
	gapMs                float64 // longest gap of any flow, client or server side
	survived, flows      int
	clientResets, stalls int
	serverResets         int
	err                  error // the direction's report is missing
}

func (r streamResult) survivedPct() float64 { return 100 * float64(r.survived) / float64(r.flows) }

// streamsAcross runs a tcp-stream generator per direction client1 ->
// server1 in lab labName with flows flows each, calls fault once every
// flow is up, and reads each direction's longest gap and survivors.
func (b *bench) streamsAcross(ctx context.Context, labName string, flows int, fault func(context.Context) error) ([]streamResult, error) {
	for i, d := range streamDirs {
		t := lab.Traffic{Name: "tcp-" + d, Kind: traffic.KindTCPStream, Client: "client1", Server: "server1", Flows: flows, Direction: d, Port: 5301 + i}
		if err := lab.StartTraffic(ctx, labName, t); err != nil {
			return nil, err
		}
	}
	// Every flow established before the fault.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ready := 0
		for _, d := range streamDirs {
			if r, err := reportOf(labName, "tcp-"+d); err == nil && r.Client != nil && r.Client.Alive == flows {
				ready++
			}
		}
		if ready == len(streamDirs) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d tcp-stream generators had all %d flows alive after 5 s", ready, len(streamDirs), flows)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		return nil, err
	}
	at := time.Now()
	if err := fault(ctx); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, pick(b, 1500*time.Millisecond, 2500*time.Millisecond)); err != nil {
		return nil, err
	}
	if err := lab.StopTraffic(labName); err != nil {
		return nil, err
	}
	var out []streamResult
	for _, d := range streamDirs {
		res := streamResult{dir: d}
		r, err := reportOf(labName, "tcp-"+d)
		if err == nil && (r.Client == nil || r.Server == nil) {
			err = errors.New("a tcp-stream agent wrote no report")
		}
		if res.err = err; err == nil {
			for _, f := range r.Client.Detail {
				if f.Survived(at) {
					res.survived++
				}
			}
			res.flows = len(r.Client.Detail)
			res.gapMs = max(r.Client.LongestGapMs, r.Server.LongestGapMs)
			res.clientResets, res.stalls, res.serverResets = r.Client.Reset, r.Client.Stalled, r.Server.Reset
		}
		out = append(out, res)
	}
	return out, nil
}

// failoverReps is how many independent labs and faults the TCP resume
// and replication rows take their samples from. It holds in a quick run
// too: one run takes a few seconds, and one sample is no verdict.
const failoverReps = 3

// streamSamples collects the TCP rows' repetitions per direction: the
// longest gap and the share of flows that survived.
type streamSamples struct {
	gaps, surv map[string]*samples
}

func newStreamSamples() streamSamples {
	s := streamSamples{gaps: map[string]*samples{}, surv: map[string]*samples{}}
	for _, d := range streamDirs {
		s.gaps[d], s.surv[d] = &samples{}, &samples{}
	}
	return s
}

// add records one run: each direction's result, or, when the run failed
// as a whole (err), that error for every direction.
func (s streamSamples) add(res []streamResult, err error) {
	if err != nil {
		res = nil
		for _, d := range streamDirs {
			res = append(res, streamResult{dir: d, err: err})
		}
	}
	for _, r := range res {
		s.gaps[r.dir].add(r.gapMs, r.err, "")
		s.surv[r.dir].add(r.survivedPct(), r.err, fmt.Sprintf("%d/%d (client resets %d, stalled %d; server resets %d)",
			r.survived, r.flows, r.clientResets, r.stalls, r.serverResets))
	}
}

// tcpResume is figure 7: tcp-stream generators c2s, s2c and both through
// the active unit, the active killed, each direction's longest gap and the
// sessions that survived; failoverReps times, each on a lab of its own.
func (b *bench) tcpResume(ctx context.Context) []Figure {
	var gapT *Target // the brief sets no target on the resume time itself
	// Every session of every run must survive: the worst run decides.
	survT := &Target{Op: ">=", Value: 100, OnMin: true}
	s := newStreamSamples()
	flows, n := pick(b, 5, 10), failoverReps
	for range n {
		if ctx.Err() != nil {
			break
		}
		res, err := b.tcpResumeOnce(ctx, flows)
		if err != nil {
			b.log.Warn("bench: TCP resume run failed", "err", err)
		}
		s.add(res, err)
	}
	var figs []Figure
	for _, d := range streamDirs {
		how := fmt.Sprintf("tcp-stream %s, %d flows at 1 MB/s each way they send, the active killed", d, flows)
		figs = append(figs,
			s.gaps[d].row(7, "tcp-resume-"+d, "TCP resume after crash, "+d, "ms", gapT, n, how+"; longest gap of any flow, client or server side"),
			s.surv[d].row(7, "tcp-survived-"+d, "TCP sessions survived, "+d, "%", survT, n, how+"; flows alive or completed after the kill"))
	}
	return figs
}

// tcpResumeOnce brings up a lab, runs the tcp-stream generators and kills
// the active unit under them.
func (b *bench) tcpResumeOnce(ctx context.Context, flows int) ([]streamResult, error) {
	bl, down, err := b.up(ctx, "tcp", false)
	if err != nil {
		return nil, err
	}
	defer down()
	active, err := waitPair(ctx, bl.Name, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return b.streamsAcross(ctx, bl.Name, flows, func(ctx context.Context) error {
		_, err := lab.Inject(ctx, bl.Name, lab.Fault{Kind: lab.FaultKill, Target: active})
		return err
	})
}

// replication is figures 9 (replication lag under 10k new flows/s) and 8
// (bulk sync of 100k connections to a restarted standby): both on each of
// failoverReps labs, so each row's samples are independent runs.
func (b *bench) replication(ctx context.Context) []Figure {
	const rate = 10_000
	secs := pick(b, 2, 5)
	var lag, sync samples
	n := failoverReps
	for range n {
		if ctx.Err() != nil {
			break
		}
		if err := b.replicationOnce(ctx, rate, secs, &lag, &sync); err != nil {
			b.log.Warn("bench: replication run failed", "err", err)
			lag.add(0, err, "")
			sync.add(0, err, "")
		}
	}
	return []Figure{
		sync.row(8, "bulk-sync", "bulk sync of 100k conns to a restarted standby", "ms", &Target{Op: "<", Value: 1000}, n,
			"the active filled to 100k UDP conns, the standby restarted (lab.Inject restart); the restarted unit's start to Standby Ready, from its own state history"),
		lag.row(9, "repl-lag-p99", "replication lag p99 at 10k new conns/s", "ms", &Target{Op: "<", Value: 5}, n,
			fmt.Sprintf("%d new UDP flows/s for %d s client1->server1; the row is the p99 of the active's replication stats (its last acks, a fresh lab each run)", rate, secs)),
	}
}

// replicationOnce brings up a lab, drives rate new flows a second for secs
// seconds and adds the active's replication lag p99 to lag, then fills it
// to 100k connections, restarts the standby and adds the bulk sync to
// sync. It returns an error, and adds nothing, when no measurement could
// start.
func (b *bench) replicationOnce(ctx context.Context, rate, secs int, lag, sync *samples) error {
	bl, down, err := b.up(ctx, "rep", false)
	if err != nil {
		return err
	}
	defer down()
	active, err := waitPair(ctx, bl.Name, 10*time.Second)
	if err != nil {
		return err
	}
	standby := bl.Peer(active).Name
	clientNS, _, server, err := hostsOf(bl.Lab)
	if err != nil {
		return err
	}
	// 2 source sockets x 50k destination ports: 100k new 5-tuples.
	flows, err := newUDPFlows(clientNS, server, 10000, 50000, 2)
	if err != nil {
		return err
	}
	defer flows.Close()
	if err := flows.pace(ctx, rate*secs, float64(rate)); err != nil {
		return fmt.Errorf("driving %d new flows/s: %w", rate, err)
	}
	_ = sleepCtx(ctx, 200*time.Millisecond) // the last acks land
	v, note, err := lagP99(ctx, bl.Name, active)
	lag.add(v, err, note)
	v, note, err = b.bulkSync(ctx, bl.Name, active, standby, flows)
	sync.add(v, err, note)
	return nil
}

// lagP99 reads the active's replication lag p99 and a note with the rest
// of its replication stats.
func lagP99(ctx context.Context, labName, active string) (float64, string, error) {
	st, err := status(ctx, labName, active)
	if err != nil {
		return 0, "", err
	}
	rs := st.Replication
	if rs.LagSamples == 0 {
		return 0, "", fmt.Errorf("the active reports no lag samples (no acks from the standby): %s is %s, replication role %q, connected %v, sessions %d, records sent %d, acked %d, frames received %d, last error %q",
			active, st.State, rs.Role, rs.Connected, rs.Sessions, rs.RecordSeq, rs.AckedSeq, rs.FramesReceived, rs.LastError)
	}
	return ms(rs.LagP99), fmt.Sprintf("p50 %.3f, p99 %.3f, max %.3f ms over %d acks, queue high %d, overflows %d, active %d conns",
		ms(rs.LagP50), ms(rs.LagP99), ms(rs.LagMax), rs.LagSamples, rs.QueueHigh, rs.Overflows, st.Counts.Conns), nil
}

// bulkSync fills the active to 100k connections, restarts the standby and
// times its way to Standby Ready: the milliseconds and a note on them.
func (b *bench) bulkSync(ctx context.Context, labName, active, standby string, flows *udpFlows) (float64, string, error) {
	const want = 100_000
	if err := flows.pace(ctx, want-flows.next, 50_000); err != nil {
		return 0, "", fmt.Errorf("filling %d flows: %w", want, err)
	}
	var conns int
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := status(ctx, labName, active)
		if err != nil {
			return 0, "", err
		}
		conns = st.Counts.Conns
		if conns >= want*98/100 || time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return 0, "", err
		}
	}
	if conns < want/2 {
		return 0, "", fmt.Errorf("the active holds only %d conns after %d flows were sent", conns, want)
	}
	t0 := time.Now()
	if _, err := lab.Inject(ctx, labName, lab.Fault{Kind: lab.FaultRestart, Target: standby}); err != nil {
		return 0, "", err
	}
	t1 := time.Now()
	var st api.Status
	deadline = time.Now().Add(30 * time.Second)
	for {
		s, err := status(ctx, labName, standby)
		if err == nil && s.State == stateStandbyReady {
			st = s
			break
		}
		if time.Now().After(deadline) {
			return 0, "", fmt.Errorf("restarted %s is not Standby Ready after 30 s (state %q)", standby, s.State)
		}
		if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
			return 0, "", err
		}
	}
	polled := time.Now()
	// The unit's own history says when it entered each state: from its
	// start to Standby Ready is the figure; Bulk Sync to Standby Ready the
	// transfer itself.
	var bulkAt, readyAt time.Time
	for _, h := range st.History {
		switch h.To {
		case "Bulk Sync":
			bulkAt = h.At
		case stateStandbyReady:
			readyAt = h.At
		}
	}
	startedAt := st.StartedAt
	if readyAt.IsZero() {
		readyAt = polled
	}
	if startedAt.IsZero() {
		startedAt = t1
	}
	total := readyAt.Sub(startedAt)
	// One run's note, commas only: the row joins the runs with "; ".
	detail := fmt.Sprintf("active %d conns, restarted %s's API up after %.0f ms", conns, standby, ms(t1.Sub(t0)))
	if !bulkAt.IsZero() {
		detail += fmt.Sprintf(", Bulk Sync state %.0f ms", ms(readyAt.Sub(bulkAt)))
	}
	if now, err := status(ctx, labName, active); err == nil {
		conns = now.Counts.Conns
	}
	detail += fmt.Sprintf(", at Standby Ready standby %d conns, active %d", st.Counts.Conns, conns)
	return ms(total), detail, nil
}

// activeUnit returns the unit that reports itself Active. Unlike
// lab.ActiveUnit it bounds each question, since a frozen unit's API
// accepts a connection and never answers.
func (b *bench) activeUnit(ctx context.Context, labName string) (string, error) {
	names, err := lab.UnitNames(labName)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		s, err := status(qctx, labName, n)
		cancel()
		if err == nil && s.Active {
			return n, nil
		}
	}
	return "", fmt.Errorf("no unit of lab %s reports itself active", labName)
}
