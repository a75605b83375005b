package labbench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/traffic"
)

// The Linux pair's rows (figure 10) mirror falab's own: the same gaps
// (figure 6), TCP resume and survival (figure 7) and replication lag
// (figure 9), each from labs of its own, on the same topology and with the
// same generators, so the two read side by side.

const lpItem = 10

// lpHow says how the Linux pair is built; every row's detail starts with it.
const lpHow = "the default lab's topology; fw-a and fw-b Linux routers (nftables forward drop + established, SNAT to the outside address, tcp_be_liberal), keepalived VRRPv3 advert_int 0.01 sync group nopreempt, conntrackd FTFW over the failover link via primary-backup.sh"

// withLinuxPair brings up a topology-only copy of the default lab with the
// Linux pair on it, runs f, and stops the daemons and tears the lab down.
func (b *bench) withLinuxPair(ctx context.Context, inputDrop bool, f func(bl *benchLab, p *linuxPair) error) error {
	bl, down, err := b.up(ctx, "lp", true)
	if err != nil {
		return err
	}
	defer down()
	dir, err := os.MkdirTemp(b.tmp, "linuxpair")
	if err != nil {
		return err
	}
	p, err := startLinuxPair(ctx, bl.Lab, dir, inputDrop)
	if p != nil {
		defer p.stop() // before down: the daemons die before their namespaces
	}
	if err != nil {
		return err
	}
	err = f(bl, p)
	n := p.masterTransitions()
	b.log.Debug("bench: Linux pair run", "lab", bl.Name, "master_entries", n, "err", err)
	if err != nil {
		err = fmt.Errorf("%w (keepalived entered MASTER %d times in this run)", err, n)
	}
	return err
}

// linuxPair is figure 10: the Linux pair measured in the same run as
// falab's pair, row for row.
func (b *bench) linuxPair(ctx context.Context) []Figure {
	if err := linuxPairTools(); err != nil {
		var out []Figure
		for _, id := range lpFigureIDs {
			out = append(out, notMeasured(lpItem, id, lpNames[id], lpUnits[id], nil, err))
		}
		return out
	}
	figs := b.lpLoad(ctx)
	figs = append(figs, b.gapFigures(ctx, lpItem, []gapCase{
		{lab.FaultKill, "lp-gap-crash", lpNames["lp-gap-crash"], nil},
		{lab.FaultFreeze, "lp-gap-freeze", lpNames["lp-gap-freeze"], nil},
	}, b.lpGapOnce)...)
	for i := range figs {
		if strings.HasPrefix(figs[i].ID, "lp-gap-") && figs[i].Value != nil {
			figs[i].Detail = lpHow + "; " + figs[i].Detail
		}
	}
	figs = append(figs, b.lpStreams(ctx, plainStreams)...)
	return append(figs, b.lpStreams(ctx, dropStreams)...)
}

// lpFigureIDs are the Linux pair's rows, in the report's order.
var lpFigureIDs = []string{
	"lp-conn-rate", "lp-tcp", "lp-repl-lag-p99",
	"lp-gap-crash", "lp-gap-freeze",
	"lp-tcp-resume-c2s", "lp-tcp-survived-c2s", "lp-tcp-resume-s2c", "lp-tcp-survived-s2c", "lp-tcp-resume-both", "lp-tcp-survived-both",
	"lp-drop-tcp-resume-c2s", "lp-drop-tcp-survived-c2s", "lp-drop-tcp-resume-s2c", "lp-drop-tcp-survived-s2c", "lp-drop-tcp-resume-both", "lp-drop-tcp-survived-both",
}

var lpNames = map[string]string{
	"lp-conn-rate":    "Linux pair: new TCP connections/s",
	"lp-tcp":          "Linux pair: one TCP stream (offloads off)",
	"lp-repl-lag-p99": "Linux pair: conntrackd replication lag p99 at 10k new conns/s",
	"lp-gap-crash":    "Linux pair: failover gap, crash (master's daemons killed, links down)",
	"lp-gap-freeze":   "Linux pair: failover gap, freeze (SIGSTOP master's keepalived + conntrackd)",
}

var lpUnits = map[string]string{"lp-conn-rate": "conn/s", "lp-tcp": "Gbit/s"}

func init() {
	for _, d := range streamDirs {
		for prefix, name := range map[string]string{"lp-": "Linux pair", "lp-drop-": "Linux pair + INPUT drop"} {
			lpNames[prefix+"tcp-resume-"+d] = name + ": TCP resume after crash, " + d
			lpNames[prefix+"tcp-survived-"+d] = name + ": TCP sessions survived, " + d
			lpUnits[prefix+"tcp-survived-"+d] = "%"
		}
	}
	for _, id := range lpFigureIDs {
		if lpUnits[id] == "" {
			lpUnits[id] = "ms"
		}
	}
}

// figure makes the Linux pair's row id from s, its detail led by lpHow.
func (s *samples) figure(id string, runs int, how string) Figure {
	return s.row(lpItem, id, lpNames[id], lpUnits[id], nil, runs, lpHow+"; "+how)
}

// lpLoad measures, on labs of their own, the pair's replication lag, one
// TCP stream and new connections a second.
func (b *bench) lpLoad(ctx context.Context) []Figure {
	var lag, tcp, conns samples
	var masters []int // keepalived's MASTER entries per run
	n := b.reps(3)
	for range n {
		if ctx.Err() != nil {
			break
		}
		err := b.withLinuxPair(ctx, false, func(bl *benchLab, p *linuxPair) error {
			clientNS, serverNS, server, err := hostsOf(bl.Lab)
			if err != nil {
				return err
			}
			// Connections first, lag last: each leaves conntrackd
			// replicating its states for a while after it ends.
			flaps := func(err error) error {
				if err != nil && p.masterTransitions() > 1 {
					err = fmt.Errorf("%w (keepalived became master %d times in this run: the backup missed adverts)", err, p.masterTransitions())
				}
				return err
			}
			c, err := connectRate(ctx, clientNS, serverNS,
				netip.AddrPortFrom(netip.IPv4Unspecified(), connectPort), netip.AddrPortFrom(server, connectPort),
				2, 128, pick(b, 1500*time.Millisecond, 3*time.Second), nil)
			note := ""
			if c.CPU != nil {
				note = "CPU per connection: " + cpuNote(c.CPU)
			}
			conns.add(c.Rate, flaps(err), note)
			gbps, err := iperfTCP(ctx, clientNS, serverNS, server.String(), iperfPort, pick(b, 2*time.Second, 5*time.Second))
			tcp.add(gbps, flaps(err), "")
			if err := sleepCtx(ctx, time.Second); err != nil {
				return err
			}
			r, err := lpLagOnce(ctx, p, clientNS, server, 10_000, 10_000*pick(b, 2, 5))
			lag.add(r.p99, flaps(err), r.String())
			masters = append(masters, p.masterTransitions())
			return nil
		})
		if err != nil {
			b.log.Warn("bench: Linux pair run failed", "err", err)
			for _, s := range []*samples{&lag, &tcp, &conns} {
				s.add(0, err, "")
			}
		}
	}
	// With no fault keepalived enters MASTER once; more is the backup
	// missing three adverts (30 ms) under the load and taking the VIPs
	// until the master's next advert, which moves the traffic with them.
	flapped := fmt.Sprintf(" (keepalived entered MASTER %v times in the runs: 1 is a clean start)", masters)
	return []Figure{
		conns.figure("lp-conn-rate", n, "client1 -> server1, connect and RST, 2 loops x 128 in flight"+flapped),
		tcp.figure("lp-tcp", n, "iperf3 client1 -> server1"+flapped),
		lag.figure("lp-repl-lag-p99", n, "10k new UDP flows/s client1 -> server1 through the master; the backup's conntrackd external cache polled (conntrackd -s): a sample is the end of the poll minus the start of the send batch of the newest flow it holds: an upper bound, to one poll (a few ms)"+flapped),
	}
}

// lpGapOnce is gapOnce for the Linux pair: a udp-probe every 1 ms
// client1->server1 through the pair, the fault injected into the master.
func (b *bench) lpGapOnce(ctx context.Context, fault string) (gapResult, error) {
	var res gapResult
	err := b.withLinuxPair(ctx, false, func(bl *benchLab, p *linuxPair) error {
		const probe = "lp-probe"
		if err := lab.StartTraffic(ctx, bl.Name, lab.Traffic{Name: probe, Kind: traffic.KindUDPProbe, Client: "client1", Server: "server1", Interval: time.Millisecond}); err != nil {
			return err
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
		if r, err := reportOf(bl.Name, probe); err != nil {
			return err
		} else if r.Client == nil || r.Client.Received == 0 {
			return errors.New("udp-probe gets no echoes through the pair before the fault")
		}
		m := p.master()
		if m == nil {
			return errors.New("no master before the fault")
		}
		if err := p.fault(m, fault); err != nil {
			return fmt.Errorf("%s %s: %w", fault, m.name, err)
		}
		if err := sleepCtx(ctx, pick(b, time.Second, 1500*time.Millisecond)); err != nil {
			return err
		}
		if err := lab.StopTraffic(bl.Name, probe); err != nil {
			return err
		}
		r, err := reportOf(bl.Name, probe)
		if err != nil {
			return err
		}
		if r.Client == nil {
			return errors.New("udp-probe client wrote no report")
		}
		n := p.takeover(m)
		if n == nil {
			return p.noTakeover(m, fault)
		}
		res = gapResult{GapMs: r.Client.LongestGapMs, Lost: r.Client.Lost, Sent: r.Client.Sent, From: m.name, NewUnit: n.name}
		return nil
	})
	return res, err
}

// streamVariant is one set of the Linux pair's TCP rows.
type streamVariant struct {
	prefix    string // of the rows' ids
	inputDrop bool
	how       string
}

var (
	plainStreams = streamVariant{"lp-", false, ""}
	dropStreams  = streamVariant{"lp-drop-", true, "; nft input on every router: iifname outside tcp ct state new,invalid drop"}
)

// lpStreams is figure 7 for the Linux pair: tcp-stream generators c2s,
// s2c and both through the master, the master crashed; repeated.
func (b *bench) lpStreams(ctx context.Context, v streamVariant) []Figure {
	s := newStreamSamples()
	flows, n := pick(b, 5, 10), b.reps(3)
	for range n {
		if ctx.Err() != nil {
			break
		}
		var res []streamResult
		err := b.withLinuxPair(ctx, v.inputDrop, func(bl *benchLab, p *linuxPair) error {
			m := p.master()
			if m == nil {
				return errors.New("no master before the crash")
			}
			var err error
			res, err = b.streamsAcross(ctx, bl.Name, flows, func(context.Context) error { return p.crash(m) })
			if err == nil && p.takeover(m) == nil {
				err = p.noTakeover(m, "crash")
			}
			return err
		})
		if err != nil {
			b.log.Warn("bench: Linux pair TCP run failed", "err", err)
		}
		s.add(res, err)
	}
	var figs []Figure
	for _, d := range streamDirs {
		how := fmt.Sprintf("tcp-stream %s, %d flows at 1 MB/s each way they send, master crashed%s", d, flows, v.how)
		figs = append(figs,
			s.gaps[d].figure(v.prefix+"tcp-resume-"+d, n, how+"; longest gap of any flow, client or server side"),
			s.surv[d].figure(v.prefix+"tcp-survived-"+d, n, how+"; flows alive or completed after the crash"))
	}
	return figs
}

// lagRun is one run of lpLagOnce.
type lagRun struct {
	p50, p99, max   float64 // ms over the samples
	samples         int
	reached, wanted int // flows in the backup's external cache at the end, flows sent
}

func (r lagRun) String() string {
	return fmt.Sprintf("p50 %.1f, p99 %.1f, max %.1f ms over %d samples, backup holds %d of %d flows",
		r.p50, r.p99, r.max, r.samples, r.reached, r.wanted)
}

// poll is one reading of the backup's external cache.
type poll struct {
	at    time.Time
	count int
}

// lpLagOnce opens total new UDP flows at rate a second from clientNS
// through the master toward server, and meanwhile polls the backup's
// conntrackd: each poll whose count grew is one lag sample, the poll's
// time minus the time the newest flow it holds was sent.
func lpLagOnce(ctx context.Context, p *linuxPair, clientNS string, server netip.Addr, rate, total int) (lagRun, error) {
	m := p.master()
	if m == nil {
		return lagRun{}, errors.New("no master")
	}
	backup := p.units[0]
	if backup == m {
		backup = p.units[1]
	}
	base, err := backup.externalCount(ctx)
	if err != nil {
		return lagRun{}, err
	}
	flows, err := newUDPFlows(clientNS, server, 10000, 50000, 2)
	if err != nil {
		return lagRun{}, err
	}
	defer flows.Close()
	pctx, stopPolls := context.WithCancel(ctx)
	polls := make(chan []poll, 1)
	go func() { polls <- backup.pollExternal(pctx, base, total) }()
	sent, err := paceRecorded(ctx, flows, total, float64(rate))
	if err == nil {
		err = sleepCtx(ctx, 2*time.Second) // the stragglers
	}
	stopPolls()
	ps := <-polls
	if err != nil {
		return lagRun{}, err
	}
	return lagOf(ps, sent, total)
}

// lagOf turns the polls and the send record into lag samples.
func lagOf(ps []poll, sent []poll, total int) (lagRun, error) {
	r := lagRun{wanted: total}
	var lags []float64
	last := 0
	for _, q := range ps {
		r.reached = max(r.reached, q.count)
		if q.count <= last {
			continue
		}
		last = q.count
		// The newest flow held is flow count-1: sent by the first record
		// whose running total passed it.
		i, _ := slices.BinarySearchFunc(sent, q.count, func(s poll, c int) int { return s.count - c })
		if i == len(sent) {
			continue // more than was sent: others' flows
		}
		lags = append(lags, ms(q.at.Sub(sent[i].at)))
	}
	if len(lags) == 0 {
		return r, fmt.Errorf("the backup's conntrackd external cache never grew (%d polls, %d flows sent)", len(ps), total)
	}
	slices.Sort(lags)
	r.samples = len(lags)
	r.p50, r.p99, r.max = lags[len(lags)/2], lags[min(len(lags)-1, len(lags)*99/100)], lags[len(lags)-1]
	return r, nil
}

// paceRecorded is udpFlows.pace that records each batch: when it began
// and how many flows had gone at its end.
func paceRecorded(ctx context.Context, u *udpFlows, total int, rate float64) ([]poll, error) {
	var rec []poll
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for done := 0; done < total; {
		select {
		case <-ctx.Done():
			return rec, ctx.Err()
		case <-tick.C:
		}
		due := min(total, int(time.Since(start).Seconds()*rate))
		if due > done {
			// The batch's start: no flow of it left before, so a lag
			// from here is an upper bound (a slow batch under load
			// would make its end a lower one, even below zero).
			at := time.Now()
			if err := u.open(due - done); err != nil {
				return rec, err
			}
			done = due
			rec = append(rec, poll{at: at, count: done})
		}
	}
	return rec, nil
}

// pollExternal reads u's external cache count, less base, until ctx ends
// or it holds want flows.
func (u *pairUnit) pollExternal(ctx context.Context, base, want int) []poll {
	var ps []poll
	for ctx.Err() == nil {
		c, err := u.externalCount(ctx)
		if err == nil {
			// The poll's end: the count was read before it.
			ps = append(ps, poll{at: time.Now(), count: c - base})
			if c-base >= want {
				break
			}
		}
		_ = sleepCtx(ctx, time.Millisecond)
	}
	return ps
}

// externalCount asks u's conntrackd how many of its peer's connections
// its external cache holds.
func (u *pairUnit) externalCount(ctx context.Context) (int, error) {
	out, err := exec.CommandContext(ctx, "conntrackd", "-C", u.dir+"/conntrackd.conf", "-s").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("conntrackd -s on %s: %w: %s", u.name, err, lastLines(string(out), 3))
	}
	return parseExternalActive(string(out))
}

// parseExternalActive reads "current active connections" of the "cache
// external" section of conntrackd -s.
func parseExternalActive(out string) (int, error) {
	_, ext, ok := strings.Cut(out, "cache external:")
	if !ok {
		return 0, fmt.Errorf("conntrackd -s has no external cache section: %q", lastLines(out, 3))
	}
	for line := range strings.SplitSeq(ext, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "current active connections:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("conntrackd -s's external cache section has no active connections line")
}
