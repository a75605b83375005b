package traffic

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAgentFlagErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, "missing kind"},
		{[]string{"smtp", "--role", "client"}, `unknown kind "smtp"`},
		{[]string{"tcp-stream"}, "--role is required"},
		{[]string{"tcp-stream", "--role", "middle"}, `--role "middle" is not server or client`},
		{[]string{"tcp-stream", "--role", "client"}, "--target is required"},
		{[]string{"tcp-stream", "--role", "server", "--target", "x"}, "--target is for clients"},
		{[]string{"tcp-stream", "--role", "client", "--target", "x", "--direction", "up"}, `direction "up" is not one of c2s, s2c, both`},
		{[]string{"tcp-stream", "--role", "client", "--target", "x", "--flows", "0"}, "--flows 0 is not in 1..10000"},
		{[]string{"tcp-stream", "--role", "client", "--target", "x", "--rate", "-1"}, "--rate must be positive"},
		{[]string{"tcp-stream", "--role", "server", "--port", "70000"}, "--port 70000 is not in 1..65535"},
		{[]string{"tcp-stream", "--role", "server", "--interval", "1ms"}, "flag provided but not defined: -interval"},
		{[]string{"tcp-stream", "--role", "server", "--stall", "soon"}, `invalid value "soon" for flag -stall`},
		{[]string{"tcp-stream", "--role", "server", "extra"}, `unexpected argument "extra"`},
		{[]string{"udp-probe", "--role", "client", "--target", "x", "--interval", "0s"}, "--interval must be positive"},
		{[]string{"udp-probe", "--role", "server", "--report-every", "0s"}, "--report-every must be positive"},
		{[]string{"http", "--role", "server", "--size", "0"}, "--size must be positive"},
		{[]string{"ping", "--role", "server"}, "ping has only a client role"},
		{[]string{"ping", "--role", "client", "--target", "198.18.0.1", "--port", "5"}, "flag provided but not defined: -port"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := RunAgent(context.Background(), tc.args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("RunAgent(%q) error = %v, want one containing %q", tc.args, err, tc.wantErr)
			}
		})
	}
}

func TestAgentHelp(t *testing.T) {
	err := RunAgent(context.Background(), []string{"udp-probe", "-h"}, &bytes.Buffer{})
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(err.Error(), "-interval duration") {
		t.Errorf("RunAgent -h = %v; want flag.ErrHelp with the flag list", err)
	}
}

func TestAgentFlagDefaults(t *testing.T) {
	cfg, err := parseAgentFlags([]string{"http", "--role", "client", "--target", "198.18.1.10"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.targetAddr(); got != "198.18.1.10:80" {
		t.Errorf("http target = %q, want port 80 by default", got)
	}
	cfg, err = parseAgentFlags([]string{"tcp-stream", "--role", "client", "--target", "198.18.1.10:9"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.flows != 20 || cfg.direction != Both || cfg.rate != 1_000_000 || cfg.stall != time.Second ||
		cfg.reportEvery != 100*time.Millisecond || cfg.targetAddr() != "198.18.1.10:9" {
		t.Errorf("tcp-stream defaults = %+v", cfg)
	}
}

// lines is a goroutine-safe writer that keeps what an agent wrote.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// reports parses every line; each must be a valid report.
func (l *lines) reports(t *testing.T) []Report {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Report
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		r, err := ParseReport(sc.Bytes())
		if err != nil {
			t.Fatalf("agent wrote a bad report: %v\n%s", err, sc.Bytes())
		}
		out = append(out, r)
	}
	return out
}

// final returns the last report, which must be the only final one.
func (l *lines) final(t *testing.T) Report {
	t.Helper()
	rs := l.reports(t)
	if len(rs) == 0 {
		t.Fatal("agent wrote no report")
	}
	for i, r := range rs {
		if r.Final != (i == len(rs)-1) {
			t.Fatalf("report %d of %d has final=%v", i, len(rs), r.Final)
		}
	}
	return rs[len(rs)-1]
}

// agent runs RunAgent in a goroutine; stop cancels it and waits.
type agent struct {
	out    *lines
	cancel context.CancelFunc
	done   chan error
}

func startAgent(t *testing.T, args ...string) *agent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &agent{out: &lines{}, cancel: cancel, done: make(chan error, 1)}
	go func() { a.done <- RunAgent(ctx, args, a.out) }()
	t.Cleanup(func() { a.stop(t) })
	return a
}

// wait waits for the agent to end by itself (bounded).
func (a *agent) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not end within 10s")
		return nil
	}
}

func (a *agent) stop(t *testing.T) error {
	t.Helper()
	a.cancel()
	return a.wait(t)
}

// freePort returns a port that was free a moment ago on 127.0.0.1.
func freePort(t *testing.T, network string) string {
	t.Helper()
	var addr string
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = c.LocalAddr().String()
		c.Close()
	} else {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = l.Addr().String()
		l.Close()
	}
	_, port, _ := net.SplitHostPort(addr)
	return port
}

// checkNoLeaks fails the test if goroutines started during it are still
// running once it is over (given up to 3s to wind down).
func checkNoLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func TestTCPStreamLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("loopback integration")
	}
	for _, dir := range []string{"both", "c2s", "s2c"} {
		t.Run(dir, func(t *testing.T) {
			checkNoLeaks(t)
			port := freePort(t, "tcp")
			srv := startAgent(t, "tcp-stream", "--role", "server", "--bind", "127.0.0.1", "--port", port,
				"--rate", "200000", "--report-every", "50ms")
			cli := startAgent(t, "tcp-stream", "--role", "client", "--target", "127.0.0.1:"+port, "--flows", "5",
				"--direction", dir, "--rate", "200000", "--duration", "700ms", "--report-every", "50ms")
			if err := cli.wait(t); err != nil {
				t.Fatalf("client: %v", err)
			}
			if err := srv.stop(t); err != nil {
				t.Fatalf("server: %v", err)
			}
			c, s := cli.out.final(t), srv.out.final(t)
			if c.Flows != 5 || c.Completed != 5 {
				t.Errorf("client: flows %d completed %d, want 5 and 5: %+v", c.Flows, c.Completed, c.Detail)
			}
			if s.Flows != 5 || s.Completed != 5 {
				t.Errorf("server: flows %d completed %d, want 5 and 5: %+v", s.Flows, s.Completed, s.Detail)
			}
			// About 700ms at 200 kB/s each way; at least half of it must
			// have arrived and verified.
			wantMin := uint64(5 * 200_000 * 7 / 10 / 2)
			if dir != "c2s" && c.BytesReceived < wantMin {
				t.Errorf("client verified %d bytes, want at least %d", c.BytesReceived, wantMin)
			}
			if dir != "s2c" && s.BytesReceived < wantMin {
				t.Errorf("server verified %d bytes, want at least %d", s.BytesReceived, wantMin)
			}
			// The server saw each flow from the client's own address:port.
			local := map[uint32]string{}
			for _, f := range c.Detail {
				local[f.ID] = f.Local
				if !f.Survived(c.Started.Add(time.Millisecond)) && f.Established.Before(c.Started.Add(time.Millisecond)) {
					t.Errorf("client flow %d did not survive: %+v", f.ID, f)
				}
			}
			for _, f := range s.Detail {
				if len(f.Peers) != 1 || f.Peers[0] != local[f.ID] {
					t.Errorf("server flow %d peers %v, client local %q", f.ID, f.Peers, local[f.ID])
				}
			}
			sum, err := Summarize(cli.out.reports(t), time.Time{})
			if err != nil || !sum.AllSurvived {
				t.Errorf("Summarize = %+v, %v; want all survived", sum, err)
			}
		})
	}
}

func TestTCPStreamServerResetsOneFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("loopback integration")
	}
	checkNoLeaks(t)
	port := freePort(t, "tcp")
	srv := startAgent(t, "tcp-stream", "--role", "server", "--bind", "127.0.0.1", "--port", port,
		"--rate", "100000", "--reset-flow", "2", "--reset-after", "300ms")
	cli := startAgent(t, "tcp-stream", "--role", "client", "--target", "127.0.0.1:"+port, "--flows", "4",
		"--rate", "100000", "--duration", "800ms")
	if err := cli.wait(t); err != nil {
		t.Fatal(err)
	}
	srv.stop(t)
	c := cli.out.final(t)
	if c.Reset != 1 || c.Completed != 3 {
		t.Fatalf("client: reset %d completed %d, want 1 and 3: %+v", c.Reset, c.Completed, c.Detail)
	}
	for _, f := range c.Detail {
		if (f.State == StateReset) != (f.ID == 2) {
			t.Errorf("flow %d state %s (error %q); only flow 2 should be reset", f.ID, f.State, f.Error)
		}
	}
	// No report of the client saw flow 2 alive after it was reset.
	if s := srv.out.final(t); s.Reset != 1 {
		t.Errorf("server: reset %d, want 1: %+v", s.Reset, s.Detail)
	}
}

func TestUDPProbeServerAway(t *testing.T) {
	if testing.Short() {
		t.Skip("loopback integration")
	}
	checkNoLeaks(t)
	port := freePort(t, "udp")
	srvArgs := []string{"udp-probe", "--role", "server", "--bind", "127.0.0.1", "--port", port}
	srv1 := startAgent(t, srvArgs...)
	cli := startAgent(t, "udp-probe", "--role", "client", "--target", "127.0.0.1:"+port,
		"--interval", "1ms", "--grace", "100ms", "--duration", "1200ms", "--report-every", "50ms")
	time.Sleep(400 * time.Millisecond) // real processes, real time: let probes flow
	srv1.stop(t)
	time.Sleep(150 * time.Millisecond) // the outage
	srv2 := startAgent(t, srvArgs...)
	if err := cli.wait(t); err != nil {
		t.Fatal(err)
	}
	srv2.stop(t)
	c := cli.out.final(t)
	if c.Lost == 0 || c.LongestGapMs < 100 {
		t.Errorf("client: lost %d, longest gap %.1fms; want lost > 0 and a gap >= 100ms", c.Lost, c.LongestGapMs)
	}
	if c.Sent != c.Received+c.Lost {
		t.Errorf("sent %d != received %d + lost %d", c.Sent, c.Received, c.Lost)
	}
	if c.Duplicates != 0 {
		t.Errorf("duplicates %d on loopback", c.Duplicates)
	}
	s1, s2 := srv1.out.final(t), srv2.out.final(t)
	if len(s1.Detail) != 1 || len(s2.Detail) != 1 {
		t.Fatalf("servers saw %d and %d sessions, want 1 each", len(s1.Detail), len(s2.Detail))
	}
	local := c.Detail[0].Local
	for _, s := range []Report{s1, s2} {
		if got := s.Detail[0].Peers; len(got) != 1 || got[0] != local {
			t.Errorf("server peers %v, want [%s] (the client's address)", got, local)
		}
	}
	if s1.Received+s2.Received != c.Received {
		t.Logf("servers got %d+%d probes, client %d echoes (a probe can be lost on the way back)", s1.Received, s2.Received, c.Received)
	}
}

func TestHTTPDownload(t *testing.T) {
	if testing.Short() {
		t.Skip("loopback integration")
	}
	checkNoLeaks(t)
	port := freePort(t, "tcp")
	const size = 3_000_000
	srv := startAgent(t, "http", "--role", "server", "--bind", "127.0.0.1", "--port", port, "--size", strconv.Itoa(size))
	cli := startAgent(t, "http", "--role", "client", "--target", "127.0.0.1", "--port", port, "--flows", "2",
		"--rate", "10000000", "--duration", "3s")
	if err := cli.wait(t); err != nil {
		t.Fatal(err)
	}
	srv.stop(t)
	c, s := cli.out.final(t), srv.out.final(t)
	if c.Completed != 2 || c.BytesReceived != 2*size {
		t.Errorf("client: completed %d bytes %d, want 2 and %d: %+v", c.Completed, c.BytesReceived, 2*size, c.Detail)
	}
	if s.Completed != 2 || s.BytesSent != 2*size {
		t.Errorf("server: completed %d bytes %d, want 2 and %d: %+v", s.Completed, s.BytesSent, 2*size, s.Detail)
	}
	// A 3 MB body at 10 MB/s takes 300ms: the client must end long before --duration.
	if d := c.At.Sub(c.Started); d > 2500*time.Millisecond {
		t.Errorf("client ran %s: downloads did not complete on their own", d)
	}
}

func TestHTTPServerGoneIsReset(t *testing.T) {
	if testing.Short() {
		t.Skip("loopback integration")
	}
	checkNoLeaks(t)
	port := freePort(t, "tcp")
	srv := startAgent(t, "http", "--role", "server", "--bind", "127.0.0.1", "--port", port)
	cli := startAgent(t, "http", "--role", "client", "--target", "127.0.0.1:"+port, "--rate", "8000000", "--duration", "2s")
	time.Sleep(300 * time.Millisecond)
	srv.stop(t) // closes the connection mid-body
	if err := cli.wait(t); err != nil {
		t.Fatal(err)
	}
	c := cli.out.final(t)
	if c.Reset != 1 || c.Completed != 0 || c.BytesReceived == 0 {
		t.Errorf("client: reset %d completed %d bytes %d; want a reset after some bytes: %+v", c.Reset, c.Completed, c.BytesReceived, c.Detail)
	}
}

func TestPingLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("loopback integration")
	}
	if c, _, err := listenICMP(); err != nil {
		t.Skipf("no ICMP socket here (needs root, CAP_NET_RAW or ping_group_range): %v", err)
	} else {
		c.Close()
	}
	checkNoLeaks(t)
	cli := startAgent(t, "ping", "--role", "client", "--target", "127.0.0.1", "--interval", "5ms", "--duration", "300ms")
	if err := cli.wait(t); err != nil {
		t.Fatal(err)
	}
	c := cli.out.final(t)
	if c.Sent < 20 || c.Lost != 0 || c.Received != c.Sent || c.Completed != 1 {
		t.Errorf("ping: sent %d received %d lost %d completed %d: %+v", c.Sent, c.Received, c.Lost, c.Completed, c.Detail)
	}
}
