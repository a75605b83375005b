package busyloop

import (
	"net"
	"runtime"
	"sync/atomic"
	"testing"
)

// TestYieldPollsNetwork runs a reader that never parks (as a saturated
// ring's does) on one P beside a goroutine waiting for a UDP datagram:
// the datagram must reach that goroutine within the yields of one poll
// interval, not at the runtime monitor's next poll (10 ms later, after
// many thousands of yields).
func TestYieldPollsNetwork(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	server, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	client, err := net.DialUDP("udp4", nil, server.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	var received atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 16)
		if _, _, err := server.ReadFrom(buf); err == nil {
			received.Store(true)
		}
	}()
	// Let the receiver run until it waits in the poller.
	for range 10 {
		runtime.Gosched()
	}
	if _, err := client.Write([]byte("ack")); err != nil {
		t.Fatal(err)
	}
	// Loopback delivers the datagram inside Write: the receiver's socket
	// is ready now. Yields a poll interval apart must run it.
	var p poller
	now := int64(0)
	for range 3 {
		now += int64(PollInterval)
		p.yield(now)
		if received.Load() {
			break
		}
	}
	if !received.Load() {
		t.Fatal("a goroutine whose socket was ready did not run within 3 yields a poll interval apart: yield no longer makes the runtime poll the network")
	}
	<-done
}

// TestYieldPollsAtMostEveryInterval: yields closer together than the
// interval force one poll between them, so a busy reader pays for a stop
// of the world at most every PollInterval.
func TestYieldPollsAtMostEveryInterval(t *testing.T) {
	var p poller
	now := int64(PollInterval)
	p.yield(now)
	if got := p.last.Load(); got != now {
		t.Fatalf("poll at %d not recorded (last %d)", now, got)
	}
	p.yield(now + int64(PollInterval)/2)
	if got := p.last.Load(); got != now {
		t.Fatalf("a yield half an interval later polled again (last %d, want %d)", got, now)
	}
}
