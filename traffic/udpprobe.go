package traffic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// maxProbeSessions bounds the sessions a udp-probe server keeps, so stray
// traffic cannot grow it without end.
const maxProbeSessions = 4096

// probeSession is the client side of a probe run (udp-probe or ping): the
// sequence tracker and when it started, under mu.
type probeSession struct {
	mu          sync.Mutex
	session     uint64
	track       *SeqTracker
	established time.Time // first echo
	finished    bool      // sending stopped and the grace is over
	local       string
	remote      string
	err         string
	stall       time.Duration
}

func newProbeSession(grace, stall time.Duration) *probeSession {
	return &probeSession{session: randomSession(), track: NewSeqTracker(grace), stall: stall}
}

// next allocates a sequence number for a probe sent now.
func (p *probeSession) next(now time.Time) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.track.Next(now)
}

// echo records the echo of seq.
func (p *probeSession) echo(seq uint64, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.track.Received(seq, now) != EchoBogus && p.established.IsZero() {
		p.established = now
	}
}

func (p *probeSession) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == "" {
		p.err = err.Error()
	}
}

// report renders the session. The state: connecting until the first echo;
// stalled if no echo came for --stall before now (or, once finished, before
// the last probe was sent); completed when the run ended without such a
// silence; alive otherwise.
func (p *probeSession) report(now time.Time) Report {
	p.mu.Lock()
	defer p.mu.Unlock()
	var st SeqStats
	if p.finished {
		st = p.track.Finish()
	} else {
		st = p.track.Stats(now)
	}
	f := FlowReport{
		Session: sessionString(p.session), Established: p.established,
		LongestGapMs: durMs(st.LongestGap), GapStart: st.GapStart,
		BytesSent: st.Sent * ProbeLen, BytesReceived: st.Received * ProbeLen,
		Local: p.local, Remote: p.remote, Error: p.err,
	}
	end := now
	if p.finished {
		end = p.track.LastSent()
	}
	gaps := p.track.Gaps()
	f.Gaps, f.LossRuns = gaps.Notable(end), p.track.LossRuns()
	f.GapsDroppedMaxMs, f.LossRunsDroppedLost = durMs(gaps.DroppedMax()), p.track.DroppedLost()
	f.GapsDroppedUntil, f.LossRunsDroppedUntil = gaps.DroppedUntil(), p.track.DroppedUntil()
	switch {
	case p.established.IsZero() && p.finished:
		f.State = StateFailed
	case p.established.IsZero():
		f.State = StateConnecting
	case end.Sub(gaps.Last()) >= p.stall:
		f.State = StateStalled
	case p.finished:
		f.State = StateCompleted
	default:
		f.State = StateAlive
	}
	return Report{
		Sent: st.Sent, Received: st.Received, Lost: st.Lost,
		Reordered: st.Reordered, Duplicates: st.Duplicates,
		Detail: []FlowReport{f},
	}
}

// probeClient sends udp-probe requests every --interval and tracks echoes.
type probeClient struct {
	cfg agentConfig
	log *slog.Logger
	ps  *probeSession
}

func newProbeClient(cfg agentConfig, log *slog.Logger) *probeClient {
	return &probeClient{cfg: cfg, log: log, ps: newProbeSession(cfg.grace, cfg.stall)}
}

func (c *probeClient) run(ctx context.Context) error {
	defer func() {
		c.ps.mu.Lock()
		c.ps.finished = true
		c.ps.mu.Unlock()
	}()
	raddr, err := net.ResolveUDPAddr("udp", c.cfg.targetAddr())
	if err != nil {
		c.ps.fail(err)
		return err
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		c.ps.fail(err)
		return err
	}
	c.ps.mu.Lock()
	c.ps.local, c.ps.remote = conn.LocalAddr().String(), conn.RemoteAddr().String()
	c.ps.mu.Unlock()

	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		c.read(conn)
	}()

	buf := make([]byte, ProbeLen)
	send := func() {
		now := time.Now()
		seq := c.ps.next(now)
		_ = Probe{Kind: ProbeRequest, Session: c.ps.session, Seq: seq, SentUnix: now.UnixNano()}.marshalTo(buf)
		if _, err := conn.Write(buf); err != nil && !isConnRefused(err) {
			c.log.Debug("probe write", "err", err)
		}
	}
	sendEvery(ctx, c.cfg.interval, send)
	// Late echoes still count: wait the grace before closing.
	grace := time.NewTimer(c.cfg.grace)
	<-grace.C
	_ = conn.Close()
	<-readerDone
	return nil
}

func (c *probeClient) read(conn *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		n, err := conn.Read(buf)
		now := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ECONNREFUSED while the server is away, and the like
		}
		var p Probe
		if p.UnmarshalBinary(buf[:n]) != nil || p.Kind != ProbeEcho || p.Session != c.ps.session {
			continue
		}
		c.ps.echo(p.Seq, now)
	}
}

func (c *probeClient) snapshot(now time.Time) Report { return c.ps.report(now) }

// probeServer echoes udp-probe requests and records, per client session,
// every source address:port it saw.
type probeServer struct {
	cfg agentConfig
	log *slog.Logger

	mu       sync.Mutex
	sessions map[uint64]*serverSession // guarded by mu
	order    []*serverSession          // sessions in order of first probe; guarded by mu
	rejected uint64                    // datagrams that were not requests; guarded by mu
}

type serverSession struct {
	id       uint32
	session  uint64
	first    time.Time
	peers    []netip.AddrPort // distinct sources, in order of first sight
	probes   uint64
	echoed   uint64
	gaps     GapTracker
	lastPeer netip.AddrPort
}

func newProbeServer(cfg agentConfig, log *slog.Logger) *probeServer {
	return &probeServer{cfg: cfg, log: log, sessions: make(map[uint64]*serverSession)}
}

func (s *probeServer) run(ctx context.Context) error {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", s.cfg.listenAddr())
	if err != nil {
		return err
	}
	conn := pc.(*net.UDPConn)
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	buf := make([]byte, 1500)
	for {
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("udp socket closed: %w", err)
			}
			continue
		}
		var p Probe
		if p.UnmarshalBinary(buf[:n]) != nil || p.Kind != ProbeRequest || !s.record(p.Session, src, now) {
			s.mu.Lock()
			s.rejected++
			s.mu.Unlock()
			continue
		}
		buf[5] = byte(ProbeEcho) // echo the very bytes, kind flipped
		if _, err := conn.WriteToUDPAddrPort(buf[:n], src); err == nil {
			s.mu.Lock()
			s.sessions[p.Session].echoed++
			s.mu.Unlock()
		}
	}
}

// record notes a request of session from src; false if the session table
// is full.
func (s *probeServer) record(session uint64, src netip.AddrPort, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[session]
	if ss == nil {
		if len(s.order) >= maxProbeSessions {
			return false
		}
		ss = &serverSession{id: uint32(len(s.order)), session: session, first: now}
		s.sessions[session] = ss
		s.order = append(s.order, ss)
	}
	ss.probes++
	ss.gaps.Observe(now)
	if src != ss.lastPeer {
		ss.lastPeer = src
		known := false
		for _, p := range ss.peers {
			known = known || p == src
		}
		if !known && len(ss.peers) < maxPeers {
			ss.peers = append(ss.peers, src)
		}
	}
	return true
}

func (s *probeServer) snapshot(now time.Time) Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := Report{Rejected: s.rejected, Detail: make([]FlowReport, 0, len(s.order))}
	for _, ss := range s.order {
		longest, start := ss.gaps.LongestUntil(now)
		f := FlowReport{
			ID: ss.id, Session: sessionString(ss.session), State: StateAlive, Established: ss.first,
			LongestGapMs: durMs(longest), GapStart: start,
			BytesReceived: ss.probes * ProbeLen, BytesSent: ss.echoed * ProbeLen,
			Remote: ss.lastPeer.String(), Gaps: ss.gaps.Notable(now), GapsDroppedMaxMs: durMs(ss.gaps.DroppedMax()),
			GapsDroppedUntil: ss.gaps.DroppedUntil(),
		}
		if ss.gaps.Idle(now, ss.first) >= s.cfg.stall {
			f.State = StateStalled
		}
		for _, p := range ss.peers {
			f.Peers = append(f.Peers, p.String())
		}
		rep.Received += ss.probes
		rep.Sent += ss.echoed
		rep.Detail = append(rep.Detail, f)
	}
	return rep
}

// sendEvery calls send at once and then every interval until ctx ends.
func sendEvery(ctx context.Context, interval time.Duration, send func()) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	send()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			send()
		}
	}
}
