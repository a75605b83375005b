package labbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	"github.com/falab/falab/topo"
)

// The load generators here run inside the lab's host namespaces from this
// very process: each socket is opened on a thread switched into the host's
// namespace (topo.Do) and stays bound to it, so the packets are the
// hosts' own, through their veths, switches and the unit.

// rxPackets reads the received-packets counter of ifname inside ns from
// /proc/thread-self/net/dev (the thread's namespace; /proc/self/net would
// be the main thread's).
func rxPackets(ns, ifname string) (uint64, error) {
	var n uint64
	err := topo.Do(ns, func() error {
		b, err := os.ReadFile("/proc/thread-self/net/dev")
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			name, rest, ok := strings.Cut(sc.Text(), ":")
			if !ok || strings.TrimSpace(name) != ifname {
				continue
			}
			f := strings.Fields(rest)
			if len(f) < 2 {
				return fmt.Errorf("%s: short line in net/dev", ifname)
			}
			n, err = strconv.ParseUint(f[1], 10, 64)
			return err
		}
		return fmt.Errorf("no interface %s in namespace %s", ifname, ns)
	})
	return n, err
}

// blastResult is what blastUDP measured.
type blastResult struct {
	Offered   float64 // packets per second the senders wrote
	Delivered float64 // packets per second the receiver's interface got
	Flows     int
}

// blastUDP sends 64-byte UDP payloads as fast as it can from flows sockets
// in clientNS (one sender thread each) to dst, a sink socket in serverNS,
// and counts, over dur after a warm-up, the packets serverNS's ifname
// received: the forwarding rate of whatever lies between.
func blastUDP(ctx context.Context, clientNS, serverNS, ifname string, listen, dst netip.AddrPort, flows, payload int, dur time.Duration) (blastResult, error) {
	var sink *net.UDPConn
	if err := topo.Do(serverNS, func() error {
		var err error
		sink, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(listen))
		return err
	}); err != nil {
		return blastResult{}, fmt.Errorf("sink on %s: %w", serverNS, err)
	}
	_ = sink.SetReadBuffer(4 << 20)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		drain(sink)
	}()
	defer func() { sink.Close(); <-drained }()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var sent atomic.Uint64
	var wg sync.WaitGroup
	errs := make(chan error, flows)
	for i := range flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := topo.Do(clientNS, func() error {
				c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
				if err != nil {
					return err
				}
				defer c.Close()
				pc := ipv4.NewPacketConn(c)
				const batch = 64
				msgs := make([]ipv4.Message, batch)
				buf := make([]byte, payload)
				buf[0] = byte(i)
				for j := range msgs {
					msgs[j].Buffers = [][]byte{buf}
				}
				// The first packet opens the flow; give the unit (and
				// ARP) a moment before the burst, so the flows measured
				// are established ones.
				if _, err := c.Write(buf); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
					return err
				}
				select {
				case <-time.After(100 * time.Millisecond):
				case <-ctx.Done():
					return nil
				}
				for ctx.Err() == nil {
					n, err := pc.WriteBatch(msgs, 0)
					if err != nil && !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOBUFS) {
						return err
					}
					sent.Add(uint64(max(n, 0)))
				}
				return nil
			})
			if err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	stop := func() { cancel(); wg.Wait() }
	// Warm-up: flows established, queues filled.
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		stop()
		return blastResult{}, firstErr(errs, err)
	}
	rx0, err := rxPackets(serverNS, ifname)
	if err != nil {
		stop()
		return blastResult{}, err
	}
	tx0, t0 := sent.Load(), time.Now()
	if err := sleepCtx(ctx, dur); err != nil {
		stop()
		return blastResult{}, firstErr(errs, err)
	}
	rx1, err := rxPackets(serverNS, ifname)
	tx1, el := sent.Load(), time.Since(t0).Seconds()
	stop()
	if err != nil {
		return blastResult{}, err
	}
	select {
	case err := <-errs:
		return blastResult{}, fmt.Errorf("sender: %w", err)
	default:
	}
	return blastResult{Offered: float64(tx1-tx0) / el, Delivered: float64(rx1-rx0) / el, Flows: flows}, nil
}

// drain reads and discards datagrams until c is closed.
func drain(c *net.UDPConn) {
	pc := ipv4.NewPacketConn(c)
	msgs := make([]ipv4.Message, 64)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	for {
		if _, err := pc.ReadBatch(msgs, 0); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// firstErr prefers an error a worker reported over the context's.
func firstErr(errs chan error, fallback error) error {
	select {
	case err := <-errs:
		return err
	default:
		return fallback
	}
}

// connectResult is what connectRate measured.
type connectResult struct {
	Rate     float64 // completed connects per second
	Failed   uint64  // connects that failed (or timed out) in the window
	Loops    int     // client event loops (threads)
	InFlight int     // connects each loop keeps under way
	// FirstErr is the first failed connect's error, for the report.
	FirstErr string
	// CPU is the CPU time per completed connection over the window, in
	// µs: the machine's ("machine") and each measured process's; CPUErr
	// says why it is missing.
	CPU    map[string]float64
	CPUErr string
}

// connectRate opens TCP connections from clientNS to a listener in
// serverNS that accepts and closes, and counts completed connects per
// second over dur (after a warm-up). The client is one epoll loop per
// CPU, each keeping inFlight non-blocking connects under way, on raw
// sockets: the Go net package's per-connection cost would make the client,
// not the path, the bottleneck. Each connection is closed with SO_LINGER 0
// (a RST), so the client never runs out of ports to TIME_WAIT.
// Over the same window it measures the CPU time a connection cost the
// machine and each of pids (label -> PID, may be nil).
func connectRate(ctx context.Context, clientNS, serverNS string, listen, dst netip.AddrPort, loops, inFlight int, dur time.Duration, pids map[string]int) (connectResult, error) {
	var lfd int
	if err := topo.Do(serverNS, func() error {
		var err error
		lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		_ = unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err := unix.Bind(lfd, &unix.SockaddrInet4{Port: int(listen.Port()), Addr: listen.Addr().As4()}); err != nil {
			unix.Close(lfd)
			return err
		}
		if err := unix.Listen(lfd, 4096); err != nil {
			unix.Close(lfd)
			return err
		}
		return nil
	}); err != nil {
		return connectResult{}, fmt.Errorf("listener on %s: %w", serverNS, err)
	}
	var accWG sync.WaitGroup
	for range 2 {
		accWG.Add(1)
		go func() {
			defer accWG.Done()
			for {
				fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
				if err != nil {
					if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) || errors.Is(err, unix.EMFILE) {
						continue
					}
					return // shut down
				}
				unix.Close(fd)
			}
		}()
	}
	defer func() {
		// Wakes the blocked accepts (EINVAL), then frees the socket.
		_ = unix.Shutdown(lfd, unix.SHUT_RDWR)
		accWG.Wait()
		unix.Close(lfd)
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ok, failed atomic.Uint64
	var firstDialErr atomic.Pointer[string]
	var wg sync.WaitGroup
	errs := make(chan error, loops)
	sa := &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
	for range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := topo.Do(clientNS, func() error {
				return connectLoop(ctx, sa, inFlight, &ok, &failed, &firstDialErr)
			})
			if err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	stop := func() { cancel(); wg.Wait() }
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		stop()
		return connectResult{}, firstErr(errs, err)
	}
	cpu0, cpuErr := sampleCPU(pids)
	ok0, f0, t0 := ok.Load(), failed.Load(), time.Now()
	if err := sleepCtx(ctx, dur); err != nil {
		stop()
		return connectResult{}, firstErr(errs, err)
	}
	ok1, f1, el := ok.Load(), failed.Load(), time.Since(t0).Seconds()
	cpu1, err := sampleCPU(pids)
	if cpuErr == nil {
		cpuErr = err
	}
	stop()
	select {
	case err := <-errs:
		return connectResult{}, err
	default:
	}
	if ok1 == ok0 {
		return connectResult{}, fmt.Errorf("no connection completed in %.1f s (%d failed)", el, f1-f0)
	}
	res := connectResult{Rate: float64(ok1-ok0) / el, Failed: f1 - f0, Loops: loops, InFlight: inFlight}
	if cpuErr != nil {
		res.CPUErr = cpuErr.Error()
	} else {
		res.CPU = perConnection(cpu0, cpu1, ok1-ok0)
	}
	if p := firstDialErr.Load(); p != nil {
		res.FirstErr = *p
	}
	return res, nil
}

// connectTimeout is how long a connect may stay under way before it
// counts as failed (a lost SYN would otherwise hold its slot for the
// kernel's 1 s retransmission).
const connectTimeout = time.Second

// connectLoop keeps inFlight non-blocking connects to sa under way until
// ctx ends: each one that completes (writable, SO_ERROR 0) is counted in
// ok, closed with a RST and replaced. It must run on a thread inside the
// client's namespace: the sockets are made there.
func connectLoop(ctx context.Context, sa *unix.SockaddrInet4, inFlight int, ok, failed *atomic.Uint64, firstErr *atomic.Pointer[string]) error {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(ep)
	started := map[int]time.Time{}
	defer func() {
		for fd := range started {
			unix.Close(fd)
		}
	}()
	fail := func(err error) {
		failed.Add(1)
		msg := err.Error()
		firstErr.CompareAndSwap(nil, &msg)
	}
	linger := &unix.Linger{Onoff: 1, Linger: 0}
	open := func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err // out of descriptors or memory: stop, do not spin
		}
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, linger)
		err = unix.Connect(fd, sa)
		switch {
		case err == nil:
			ok.Add(1)
			unix.Close(fd)
			return nil
		case errors.Is(err, unix.EINPROGRESS):
		default:
			fail(fmt.Errorf("connect: %w", err))
			unix.Close(fd)
			return nil
		}
		ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLERR | unix.EPOLLHUP, Fd: int32(fd)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(fd)
			return err
		}
		started[fd] = time.Now()
		return nil
	}
	events := make([]unix.EpollEvent, 256)
	lastSweep := time.Now()
	for ctx.Err() == nil {
		for len(started) < inFlight {
			if err := open(); err != nil {
				return err
			}
		}
		n, err := unix.EpollWait(ep, events, 50)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		for _, ev := range events[:max(n, 0)] {
			fd := int(ev.Fd)
			soErr, gerr := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			switch {
			case gerr != nil:
				fail(gerr)
			case soErr == 0, unix.Errno(soErr) == unix.ECONNRESET:
				// ECONNRESET: the handshake completed and the server's
				// close came before we looked (a refused SYN is
				// ECONNREFUSED).
				ok.Add(1)
			default:
				fail(fmt.Errorf("connect: %w", unix.Errno(soErr)))
			}
			delete(started, fd)
			unix.Close(fd) // closing removes it from the epoll set
		}
		if now := time.Now(); now.Sub(lastSweep) > 100*time.Millisecond {
			lastSweep = now
			for fd, t := range started {
				if now.Sub(t) > connectTimeout {
					fail(fmt.Errorf("connect: no answer in %v", connectTimeout))
					delete(started, fd)
					unix.Close(fd)
				}
			}
		}
	}
	return nil
}

// udpFlows opens new UDP flows from clientNS toward dst's address at rate
// flows per second: flow i is one datagram from source socket i/perSocket
// to port firstPort + i%perSocket, so every flow is a new 5-tuple (a new
// connection on the unit) while the sockets (and PAT xlates) stay few.
type udpFlows struct {
	conns     []*ipv4.PacketConn
	raw       []*net.UDPConn
	dst       netip.Addr
	firstPort int
	perSocket int
	next      int // flows opened so far
}

func newUDPFlows(clientNS string, dst netip.Addr, firstPort, perSocket, sockets int) (*udpFlows, error) {
	u := &udpFlows{dst: dst, firstPort: firstPort, perSocket: perSocket}
	err := topo.Do(clientNS, func() error {
		for range sockets {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{})
			if err != nil {
				return err
			}
			u.raw = append(u.raw, c)
			u.conns = append(u.conns, ipv4.NewPacketConn(c))
		}
		return nil
	})
	if err != nil {
		u.Close()
		return nil, fmt.Errorf("flow sockets in %s: %w", clientNS, err)
	}
	return u, nil
}

// Capacity is how many distinct flows u can open.
func (u *udpFlows) Capacity() int { return len(u.conns) * u.perSocket }

// Close closes the sockets.
func (u *udpFlows) Close() {
	for _, c := range u.raw {
		c.Close()
	}
}

// open sends the next n flows' first datagrams, batched per socket.
func (u *udpFlows) open(n int) error {
	payload := []byte("falab-bench-flow")
	msgs := make([]ipv4.Message, 0, 64)
	flush := func(s int) error {
		for len(msgs) > 0 {
			k, err := u.conns[s].WriteBatch(msgs, 0)
			if err != nil && !errors.Is(err, syscall.ENOBUFS) && !errors.Is(err, syscall.EAGAIN) {
				return err
			}
			msgs = msgs[max(k, 0):]
		}
		msgs = msgs[:0]
		return nil
	}
	cur := -1
	for range n {
		if u.next >= u.Capacity() {
			return fmt.Errorf("all %d flows opened", u.Capacity())
		}
		s := u.next / u.perSocket
		if len(msgs) > 0 && (s != cur || len(msgs) == cap(msgs)) {
			if err := flush(cur); err != nil {
				return err
			}
		}
		cur = s
		port := u.firstPort + u.next%u.perSocket
		msgs = append(msgs, ipv4.Message{Buffers: [][]byte{payload}, Addr: &net.UDPAddr{IP: u.dst.AsSlice(), Port: port}})
		u.next++
	}
	if len(msgs) > 0 {
		return flush(cur)
	}
	return nil
}

// pace opens total new flows at rate per second, in 1 ms slices, and
// returns when done or ctx ends.
func (u *udpFlows) pace(ctx context.Context, total int, rate float64) error {
	start := time.Now()
	done := 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for done < total {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		due := min(total, int(time.Since(start).Seconds()*rate))
		if due > done {
			if err := u.open(due - done); err != nil {
				return err
			}
			done = due
		}
	}
	return nil
}

// iperfTCP runs one iperf3 TCP stream from clientNS to a server in
// serverNS for dur and returns the receiver's rate in Gbit/s.
func iperfTCP(ctx context.Context, clientNS, serverNS, serverAddr string, port int, dur time.Duration) (float64, error) {
	path, err := exec.LookPath("iperf3")
	if err != nil {
		return 0, fmt.Errorf("iperf3 is not installed (apt package iperf3): %w", err)
	}
	// Bound to the IPv4 address: left to itself iperf3 listens on an IPv6
	// socket, and the lab's namespaces have IPv6 disabled.
	srv := exec.Command(path, "-s", "-1", "-B", serverAddr, "-p", strconv.Itoa(port))
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := topo.Do(serverNS, srv.Start); err != nil {
		return 0, fmt.Errorf("iperf3 server: %w", err)
	}
	var stopOnce sync.Once
	stopServer := func() {
		stopOnce.Do(func() {
			// Our own child, by its pid.
			_ = srv.Process.Kill()
			_ = srv.Wait()
		})
	}
	defer stopServer()
	if err := waitListening(ctx, serverNS, port, 3*time.Second); err != nil {
		stopServer() // srvOut is ours to read once the server is gone
		return 0, fmt.Errorf("iperf3 server: %w (it said: %q)", err, srvOut.String())
	}
	secs := strconv.Itoa(max(1, int(dur.Seconds())))
	cl := exec.CommandContext(ctx, path, "-c", serverAddr, "-p", strconv.Itoa(port), "-t", secs, "-J")
	var so bytes.Buffer
	cl.Stdout = &so
	if err := topo.Do(clientNS, cl.Start); err != nil {
		return 0, fmt.Errorf("iperf3 client: %w", err)
	}
	werr := cl.Wait()
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(so.Bytes(), &res); err != nil {
		return 0, fmt.Errorf("iperf3 client (%v): output: %w", werr, err)
	}
	if res.Error != "" || werr != nil {
		stopServer()
		return 0, fmt.Errorf("iperf3 client: %s (exit: %v; server said: %q)", res.Error, werr, srvOut.String())
	}
	if res.End.SumReceived.BitsPerSecond == 0 {
		return 0, errors.New("iperf3 reported 0 bit/s received")
	}
	return res.End.SumReceived.BitsPerSecond / 1e9, nil
}

// waitListening waits until a TCP socket listens on port inside ns (read
// from the thread's /proc/thread-self/net/tcp and tcp6, state 0A).
func waitListening(ctx context.Context, ns string, port int, timeout time.Duration) error {
	want := fmt.Sprintf(":%04X ", port)
	deadline := time.Now().Add(timeout)
	for {
		var listening bool
		err := topo.Do(ns, func() error {
			b, err := os.ReadFile("/proc/thread-self/net/tcp")
			if err != nil {
				return err
			}
			if b6, err := os.ReadFile("/proc/thread-self/net/tcp6"); err == nil {
				b = append(b, b6...)
			}
			for _, line := range strings.Split(string(b), "\n") {
				f := strings.Fields(line)
				if len(f) > 3 && strings.HasSuffix(f[1]+" ", want) && f[3] == "0A" {
					listening = true
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if listening {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on TCP port %d in %s after %v", port, ns, timeout)
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}
