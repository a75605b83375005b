package traffic

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Timeouts of the tcp-stream handshake.
const (
	dialTimeout   = 3 * time.Second
	headerTimeout = 5 * time.Second
)

// errEarlyEOF is a peer's FIN before the end was announced: the stream was
// cut, which counts as a reset.
var errEarlyEOF = errors.New("EOF before the end of the stream")

// randomSession returns a random run id.
func randomSession() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return binary.BigEndian.Uint64(b[:])
}

func sessionString(s uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], s)
	return hex.EncodeToString(b[:])
}

// dialRetry dials addr, retrying a refused connection until dialTimeout
// has passed: agents are started side by side, and a client may be a moment
// ahead of its server. Anything else fails at once.
func dialRetry(ctx context.Context, network, addr string) (net.Conn, error) {
	deadline := time.Now().Add(dialTimeout)
	d := net.Dialer{Deadline: deadline}
	for {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil || !isConnRefused(err) || time.Now().Add(dialRetryEvery).After(deadline) {
			return c, err
		}
		t := time.NewTimer(dialRetryEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// dialRetryEvery is the pause between refused connection attempts.
const dialRetryEvery = 50 * time.Millisecond

// streamConn is one established tcp-stream connection, from either side.
// Its reader goroutine owns core.verify (under core.mu); its sender owns
// the pacing state.
type streamConn struct {
	core     *flowCore
	conn     *net.TCPConn
	sendSeed uint64
	sends    bool
	rate     int64
	// initiator: this side ends the flow (the client). The other side
	// takes the peer's FIN as the end and answers with its own.
	initiator bool
	// stall is the no-progress threshold; it also bounds the wait for the
	// peer's FIN at the end.
	stall time.Duration
	// abort, if not nil, fires when this side must reset the flow on
	// purpose (--reset-flow).
	abort <-chan time.Time
	log   *slog.Logger
}

// run drives the connection until it ends or ctx is done, then closes it.
func (s *streamConn) run(ctx context.Context) {
	flowCtx, stopSender := context.WithCancel(ctx)
	defer stopSender()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		s.read()
	}()
	var senders sync.WaitGroup
	senderFailed := make(chan struct{})
	if s.sends {
		senders.Go(func() {
			if err := s.send(flowCtx); err != nil {
				s.core.end(StateReset, time.Now(), fmt.Errorf("write: %w", err))
				close(senderFailed)
			}
		})
	}

	select {
	case <-ctx.Done():
		stopSender()
		senders.Wait()
		if s.initiator {
			// Announce the end: FIN after the last byte; the peer answers
			// with its own FIN once it has read everything.
			s.core.mu.Lock()
			s.core.closing = true
			s.core.stalledAtEndLocked(time.Now(), s.stall)
			s.core.mu.Unlock()
			if err := s.conn.CloseWrite(); err == nil {
				t := time.NewTimer(s.stall)
				select {
				case <-readerDone:
				case <-t.C:
				}
				t.Stop()
			}
		}
	case <-readerDone:
		// The peer ended (FIN: completed, or a reset), or the stream was
		// bad. Stop sending; answer an agreed end with our FIN.
		stopSender()
		senders.Wait()
		s.core.mu.Lock()
		completed := s.core.state == StateCompleted
		s.core.mu.Unlock()
		if completed {
			_ = s.conn.CloseWrite()
		}
	case <-senderFailed:
	case <-s.abort:
		stopSender()
		senders.Wait()
		_ = s.conn.SetLinger(0) // Close now sends a RST
		s.core.end(StateReset, time.Now(), errors.New("reset on purpose (--reset-flow)"))
	}
	_ = s.conn.Close()
	<-readerDone
}

// read verifies everything the peer sends until EOF or an error.
func (s *streamConn) read() {
	buf := make([]byte, 32<<10)
	for {
		n, err := s.conn.Read(buf)
		now := time.Now()
		if n > 0 {
			s.core.mu.Lock()
			var bad error
			if v := s.core.verify; v != nil {
				bad = v.Write(buf[:n], now)
				s.core.received = v.Bytes()
				if c := v.Corrupt(); c != nil {
					off := c.Offset
					s.core.received, s.core.corruptAt = off, &off
				}
			} else {
				off := uint64(0)
				s.core.corruptAt = &off
				bad = fmt.Errorf("received %d bytes on a flow that carries none this way", n)
			}
			if bad != nil {
				s.core.endLocked(StateCorrupt, now, bad)
			}
			s.core.mu.Unlock()
			if bad != nil {
				return
			}
		}
		if err == nil {
			continue
		}
		s.core.mu.Lock()
		switch {
		case errors.Is(err, net.ErrClosed):
			// We closed it ourselves: whoever closed set the state.
		case errors.Is(err, io.EOF) && (s.core.closing || !s.initiator):
			// The agreed end: our own announced end answered, or (on the
			// responder) the initiator's end. Unless the stream had
			// stalled when the end came: the close does not undo that.
			s.core.stalledAtEndLocked(now, s.stall)
			s.core.endLocked(StateCompleted, now, nil)
		case errors.Is(err, io.EOF):
			s.core.endLocked(StateReset, now, errEarlyEOF)
		default:
			s.core.endLocked(StateReset, now, fmt.Errorf("read: %w", err))
		}
		s.core.mu.Unlock()
		return
	}
}

// send writes the flow's pattern at s.rate until ctx is done. It returns
// nil when stopped by ctx, the write error otherwise.
func (s *streamConn) send(ctx context.Context) error {
	// A cancelled ctx must unblock a Write stuck on a full send buffer.
	stop := context.AfterFunc(ctx, func() { _ = s.conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	chunk := int(min(max(s.rate/100, 512), 64<<10))
	buf := make([]byte, chunk)
	pat := NewPattern(s.sendSeed)
	p := pacer{rate: s.rate, start: time.Now()}
	timer := time.NewTimer(0)
	defer timer.Stop()
	var off uint64
	for {
		if wait := p.wait(off, uint64(chunk), time.Now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		pat.Fill(buf, off)
		n, err := s.conn.Write(buf)
		off += uint64(n)
		s.core.mu.Lock()
		s.core.sent = off
		s.core.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// pacer spaces writes so a flow carries rate bytes/s on average. After a
// blocked stretch it does not burst to catch up by more than one chunk:
// the generators are paced, not blasting.
type pacer struct {
	rate  int64
	start time.Time
}

// wait returns how long to wait before sending the chunk of size chunk that
// starts at offset sent, at time now.
func (p *pacer) wait(sent, chunk uint64, now time.Time) time.Duration {
	due := p.start.Add(time.Duration(float64(sent) / float64(p.rate) * float64(time.Second)))
	if behind := now.Sub(due); behind > 0 {
		slack := time.Duration(float64(chunk) / float64(p.rate) * float64(time.Second))
		if behind > slack {
			p.start = p.start.Add(behind - slack)
		}
		return 0
	}
	return due.Sub(now)
}

// streamClient opens --flows connections and runs them until the end.
type streamClient struct {
	cfg     agentConfig
	log     *slog.Logger
	session uint64
	flows   []*flowCore // fixed at creation: read by snapshot without a lock
}

func newStreamClient(cfg agentConfig, log *slog.Logger) *streamClient {
	c := &streamClient{cfg: cfg, log: log, session: randomSession()}
	now := time.Now()
	for i := range cfg.flows {
		f := &flowCore{id: uint32(i), session: sessionString(c.session), state: StateConnecting, begun: now}
		if cfg.direction.serverSends() {
			f.verify = NewStreamVerifier(FlowSeed(c.session, f.id, ServerToClient))
		}
		c.flows = append(c.flows, f)
	}
	return c
}

func (c *streamClient) run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range c.flows {
		wg.Go(func() { c.runFlow(ctx, f) })
	}
	wg.Wait()
	return nil
}

func (c *streamClient) runFlow(ctx context.Context, f *flowCore) {
	nc, err := dialRetry(ctx, "tcp", c.cfg.targetAddr())
	if err != nil {
		f.end(StateFailed, time.Now(), err)
		return
	}
	conn := nc.(*net.TCPConn)
	hdr, _ := FlowHeader{Direction: c.cfg.direction, FlowID: f.id, Session: c.session}.MarshalBinary()
	_ = conn.SetWriteDeadline(time.Now().Add(dialTimeout))
	if _, err := conn.Write(hdr); err != nil {
		f.end(StateFailed, time.Now(), fmt.Errorf("sending the flow header: %w", err))
		_ = conn.Close()
		return
	}
	_ = conn.SetWriteDeadline(time.Time{})
	f.mu.Lock()
	f.state, f.established = StateAlive, time.Now()
	f.local, f.remote = conn.LocalAddr().String(), conn.RemoteAddr().String()
	f.mu.Unlock()
	sc := &streamConn{
		core: f, conn: conn, sends: c.cfg.direction.clientSends(),
		sendSeed: FlowSeed(c.session, f.id, ClientToServer), rate: c.cfg.rate,
		initiator: true, stall: c.cfg.stall, log: c.log,
	}
	sc.run(ctx)
}

func (c *streamClient) snapshot(now time.Time) Report {
	rep := Report{Detail: make([]FlowReport, 0, len(c.flows))}
	for _, f := range c.flows {
		rep.Detail = append(rep.Detail, f.report(now, c.cfg.stall))
	}
	return rep
}

// streamServer accepts tcp-stream flows and runs each until its client
// ends it or the server stops.
type streamServer struct {
	cfg agentConfig
	log *slog.Logger

	mu       sync.Mutex
	flows    []*flowCore // accepted flows, in order; guarded by mu
	rejected uint64      // connections without a valid header; guarded by mu
}

func newStreamServer(cfg agentConfig, log *slog.Logger) *streamServer {
	return &streamServer{cfg: cfg, log: log}
}

func (s *streamServer) run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.listenAddr())
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			_ = ln.Close()
			return fmt.Errorf("accept: %w", err)
		}
		wg.Go(func() { s.serve(ctx, nc.(*net.TCPConn)) })
	}
}

func (s *streamServer) serve(ctx context.Context, conn *net.TCPConn) {
	accepted := time.Now()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	var hb [FlowHeaderLen]byte
	_ = conn.SetReadDeadline(accepted.Add(headerTimeout))
	var h FlowHeader
	_, err := io.ReadFull(conn, hb[:])
	if err == nil {
		err = h.UnmarshalBinary(hb[:])
	}
	if err != nil {
		s.mu.Lock()
		s.rejected++
		s.mu.Unlock()
		s.log.Debug("rejected connection", "remote", conn.RemoteAddr(), "err", err)
		_ = conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	f := &flowCore{
		id: h.FlowID, session: sessionString(h.Session), state: StateAlive,
		begun: accepted, established: accepted,
		local: conn.LocalAddr().String(), remote: conn.RemoteAddr().String(),
	}
	if h.Direction.clientSends() {
		f.verify = NewStreamVerifier(FlowSeed(h.Session, h.FlowID, ClientToServer))
	}
	s.mu.Lock()
	s.flows = append(s.flows, f)
	s.mu.Unlock()
	sc := &streamConn{
		core: f, conn: conn, sends: h.Direction.serverSends(),
		sendSeed: FlowSeed(h.Session, h.FlowID, ServerToClient), rate: s.cfg.rate,
		stall: s.cfg.stall, log: s.log,
	}
	if s.cfg.resetFlow >= 0 && uint32(s.cfg.resetFlow) == h.FlowID {
		t := time.NewTimer(s.cfg.resetAfter)
		defer t.Stop()
		sc.abort = t.C
	}
	sc.run(ctx)
}

func (s *streamServer) snapshot(now time.Time) Report {
	s.mu.Lock()
	flows := s.flows[:len(s.flows):len(s.flows)]
	rep := Report{Rejected: s.rejected, Detail: make([]FlowReport, 0, len(flows))}
	s.mu.Unlock()
	for _, f := range flows {
		fr := f.report(now, s.cfg.stall)
		fr.Peers = []string{fr.Remote}
		rep.Detail = append(rep.Detail, fr)
	}
	return rep
}
