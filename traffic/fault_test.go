package traffic

import (
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// fakeStreamServer accepts one tcp-stream flow and answers it with send,
// which gets the connection and the flow's s2c pattern. It is how the tests
// make a server misbehave in ways the real one never does.
//
// hold is closed when the test ends: a send that must keep the connection
// open waits on it.
func fakeStreamServer(t *testing.T, send func(c net.Conn, pat Pattern, hold <-chan struct{})) (port string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done, hold := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(hold); ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var hb [FlowHeaderLen]byte
		var h FlowHeader
		if _, err := io.ReadFull(c, hb[:]); err != nil || h.UnmarshalBinary(hb[:]) != nil {
			t.Errorf("fake server: bad header: %v", err)
			return
		}
		send(c, NewPattern(FlowSeed(h.Session, h.FlowID, ServerToClient)), hold)
	}()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port
}

func TestTCPStreamDetectsCorruption(t *testing.T) {
	if testing.Short() {
		t.Skip("loopback integration")
	}
	good := make([]byte, 20_000)
	tests := []struct {
		name   string
		mangle func(b []byte) []byte
		wantAt uint64
	}{
		{"flipped byte", func(b []byte) []byte { b[12_345] ^= 0x80; return b }, 12_345},
		{"missing chunk", func(b []byte) []byte { return append(b[:8_000:8_000], b[9_460:]...) }, 8_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			// The first byte that differs from the pattern: a chunk cut
			// out can bring a byte that matches by chance (1 in 256),
			// and then the stream is rightly found corrupt a byte later.
			wantAt := make(chan uint64, 1)
			port := fakeStreamServer(t, func(c net.Conn, pat Pattern, hold <-chan struct{}) {
				b := append([]byte(nil), good...)
				pat.Fill(b, 0)
				m := tc.mangle(append([]byte(nil), b...))
				at := tc.wantAt
				for at < uint64(len(m)) && m[at] == b[at] {
					at++
				}
				wantAt <- at
				c.Write(m)
				io.Copy(io.Discard, c) // until the client closes
			})
			cli := startAgent(t, "tcp-stream", "--role", "client", "--target", "127.0.0.1:"+port,
				"--flows", "1", "--direction", "s2c", "--duration", "400ms")
			if err := cli.wait(t); err != nil {
				t.Fatal(err)
			}
			c := cli.out.final(t)
			want := <-wantAt
			if c.Corrupt != 1 || c.Detail[0].CorruptAt == nil || *c.Detail[0].CorruptAt != want {
				t.Fatalf("client: corrupt %d, flow %+v; want corrupt at %d", c.Corrupt, c.Detail[0], want)
			}
			if c.BytesReceived != want {
				t.Errorf("bytes_received %d, want %d (verified bytes only)", c.BytesReceived, want)
			}
		})
	}
}

func TestTCPStreamDetectsStallAndEarlyEOF(t *testing.T) {
	if testing.Short() {
		t.Skip("loopback integration")
	}
	tests := []struct {
		name      string
		serve     func(c net.Conn, pat Pattern, hold <-chan struct{})
		wantState FlowState
		wantGapMs float64
	}{
		{
			name: "stall: silent but open",
			serve: func(c net.Conn, pat Pattern, hold <-chan struct{}) {
				b := make([]byte, 5000)
				pat.Fill(b, 0)
				c.Write(b)
				<-hold // never answers the FIN: holds until the test ends
			},
			wantState: StateStalled, wantGapMs: 300,
		},
		{
			name: "early EOF",
			serve: func(c net.Conn, pat Pattern, hold <-chan struct{}) {
				b := make([]byte, 5000)
				pat.Fill(b, 0)
				c.Write(b)
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, c)
			},
			wantState: StateReset,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			port := fakeStreamServer(t, tc.serve)
			cli := startAgent(t, "tcp-stream", "--role", "client", "--target", "127.0.0.1:"+port,
				"--flows", "1", "--direction", "s2c", "--stall", "200ms", "--duration", "500ms", "--report-every", "50ms")
			if err := cli.wait(t); err != nil {
				t.Fatal(err)
			}
			c := cli.out.final(t)
			f := c.Detail[0]
			if f.State != tc.wantState || f.LongestGapMs < tc.wantGapMs {
				t.Errorf("flow %+v; want state %s and a gap >= %.0fms", f, tc.wantState, tc.wantGapMs)
			}
			if f.Survived(time.Time{}) {
				t.Errorf("flow survived: %+v", f)
			}
		})
	}
}

func TestServerListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	out := &lines{}
	err = RunAgent(t.Context(), []string{"tcp-stream", "--role", "server", "--bind", "127.0.0.1", "--port", port}, out)
	if err == nil {
		t.Fatal("RunAgent on a port in use succeeded")
	}
	if r := out.final(t); r.Error == "" || !r.Final {
		t.Errorf("final report %+v: want the listen error in it", r)
	}
}
