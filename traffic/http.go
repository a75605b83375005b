package traffic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"time"
)

// HTTPFlowHeader carries the client's flow id on a download request, so the
// server reports the download under the same id.
const HTTPFlowHeader = "X-Falab-Flow"

// httpSeed seeds the body every http server serves ("falabhtt"): fixed, so a
// client verifies any server's body without asking for a seed.
const httpSeed = 0x66616c6162687474

// httpServer serves a generated body of --size bytes on every GET and
// records each download.
type httpServer struct {
	cfg agentConfig
	log *slog.Logger

	mu    sync.Mutex
	flows []*flowCore // one per request, in order; guarded by mu
}

func newHTTPServer(cfg agentConfig, log *slog.Logger) *httpServer {
	return &httpServer{cfg: cfg, log: log}
}

func (s *httpServer) run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.listenAddr())
	if err != nil {
		return err
	}
	// Handlers are counted so run returns only after the last one has
	// recorded how its download ended (a WaitGroup cannot: handlers start
	// while run may already be waiting).
	var (
		hmu     sync.Mutex
		active  int
		closing bool
		idle    = sync.NewCond(&hmu)
	)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hmu.Lock()
			if closing {
				hmu.Unlock()
				return
			}
			active++
			hmu.Unlock()
			defer func() {
				hmu.Lock()
				active--
				idle.Broadcast()
				hmu.Unlock()
			}()
			s.serve(w, r)
		}),
		ReadHeaderTimeout: headerTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	err = srv.Serve(ln)
	_ = srv.Close() // Serve also returns on its own errors: close every connection
	hmu.Lock()
	closing = true
	for active > 0 {
		idle.Wait()
	}
	hmu.Unlock()
	if ctx.Err() != nil && errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *httpServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "only GET", http.StatusMethodNotAllowed)
		return
	}
	now := time.Now()
	f := &flowCore{state: StateAlive, begun: now, established: now, remote: r.RemoteAddr}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		f.local = la.String()
	}
	s.mu.Lock()
	f.id = uint32(len(s.flows))
	if id, err := strconv.ParseUint(r.Header.Get(HTTPFlowHeader), 10, 32); err == nil {
		f.id = uint32(id)
	}
	s.flows = append(s.flows, f)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/octet-stream")
	cw := &countingWriter{ResponseWriter: w, f: f}
	http.ServeContent(cw, r, "", time.Time{}, &patternReader{pat: NewPattern(httpSeed), size: s.cfg.size})
	want, _ := strconv.ParseUint(w.Header().Get("Content-Length"), 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	// The server's view is weak (written to the kernel is not delivered):
	// the client, which verifies every byte, is the authority.
	if cw.err != nil || (r.Method == http.MethodGet && f.sent != want) {
		f.endLocked(StateReset, time.Now(), fmt.Errorf("download cut after %d of %d bytes: %v", f.sent, want, cw.err))
		return
	}
	f.endLocked(StateCompleted, time.Now(), nil)
}

// countingWriter counts the body bytes the connection accepted and keeps
// the first write error.
type countingWriter struct {
	http.ResponseWriter
	f   *flowCore
	err error
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.f.mu.Lock()
	c.f.sent += uint64(n)
	c.f.mu.Unlock()
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

func (s *httpServer) snapshot(now time.Time) Report {
	s.mu.Lock()
	flows := s.flows[:len(s.flows):len(s.flows)]
	s.mu.Unlock()
	rep := Report{Detail: make([]FlowReport, 0, len(flows))}
	for _, f := range flows {
		fr := f.report(now, s.cfg.stall)
		fr.Peers = []string{fr.Remote}
		rep.Detail = append(rep.Detail, fr)
	}
	return rep
}

// httpClient downloads the body --flows times in parallel at --rate each,
// verifying every byte.
type httpClient struct {
	cfg   agentConfig
	log   *slog.Logger
	flows []*flowCore // fixed at creation
}

func newHTTPClient(cfg agentConfig, log *slog.Logger) *httpClient {
	c := &httpClient{cfg: cfg, log: log}
	now := time.Now()
	for i := range cfg.flows {
		c.flows = append(c.flows, &flowCore{
			id: uint32(i), state: StateConnecting, begun: now,
			verify: NewStreamVerifier(httpSeed),
		})
	}
	return c
}

func (c *httpClient) run(ctx context.Context) error {
	tr := &http.Transport{
		DialContext:           dialRetry,
		DisableKeepAlives:     true, // one connection per download: each is a flow
		DisableCompression:    true,
		ResponseHeaderTimeout: headerTimeout,
		Proxy:                 nil, // never a proxy from the environment: the lab is the path
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for _, f := range c.flows {
		wg.Go(func() { c.download(ctx, client, f) })
	}
	wg.Wait()
	return nil
}

func (c *httpClient) download(ctx context.Context, client *http.Client, f *flowCore) {
	url := "http://" + c.cfg.targetAddr() + "/"
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		f.mu.Lock()
		f.local, f.remote = info.Conn.LocalAddr().String(), info.Conn.RemoteAddr().String()
		f.mu.Unlock()
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, url, nil)
	if err != nil {
		f.end(StateFailed, time.Now(), err)
		return
	}
	req.Header.Set(HTTPFlowHeader, strconv.FormatUint(uint64(f.id), 10))
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			f.end(StateFailed, time.Now(), err)
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength <= 0 {
		f.end(StateFailed, time.Now(), fmt.Errorf("GET %s: %s, content length %d", url, resp.Status, resp.ContentLength))
		return
	}
	size := uint64(resp.ContentLength)
	f.mu.Lock()
	f.state, f.established = StateAlive, time.Now()
	f.mu.Unlock()

	chunk := int(min(max(c.cfg.rate/100, 512), 32<<10))
	buf := make([]byte, chunk)
	p := pacer{rate: c.cfg.rate, start: time.Now()}
	timer := time.NewTimer(0)
	defer timer.Stop()
	var got uint64
	for {
		if wait := p.wait(got, uint64(chunk), time.Now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return // stopped by us: the flow stays as it stands
			case <-timer.C:
			}
		}
		n, err := resp.Body.Read(buf)
		now := time.Now()
		if n > 0 {
			f.mu.Lock()
			bad := f.verify.Write(buf[:n], now)
			got = f.verify.Bytes()
			f.received = got
			if cerr := f.verify.Corrupt(); cerr != nil {
				off := cerr.Offset
				f.received, f.corruptAt = off, &off
				f.endLocked(StateCorrupt, now, bad)
			}
			f.mu.Unlock()
			if bad != nil {
				return
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) && got == size:
			f.end(StateCompleted, now, nil)
			return
		case ctx.Err() != nil:
			return
		default:
			f.end(StateReset, now, fmt.Errorf("after %d of %d bytes: %w", got, size, err))
			return
		}
	}
}

func (c *httpClient) snapshot(now time.Time) Report {
	rep := Report{Detail: make([]FlowReport, 0, len(c.flows))}
	for _, f := range c.flows {
		rep.Detail = append(rep.Detail, f.report(now, c.cfg.stall))
	}
	return rep
}
