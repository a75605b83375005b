package ctiqbe

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// inspectingRelay carries the phone's connection to the CallManager
// through whichever engine is current, as a firewall would: each read is a
// segment with its TCP sequence number. A dropped segment is held and
// offered again with the next bytes at the same sequence number, as TCP
// retransmits (and coalesces) unacknowledged data; it never reaches the
// other side while the engine keeps dropping it.
type inspectingRelay struct {
	engine  atomic.Pointer[Engine]
	mu      sync.Mutex
	results []Result // guarded by mu: every passed segment's result
}

func (r *inspectingRelay) pipe(t *testing.T, from, to net.Conn, fromPhone bool, seq uint32) {
	defer to.Close()
	defer from.Close()
	buf := make([]byte, 512)
	var pending []byte
	for {
		n, err := from.Read(buf)
		if err != nil {
			return
		}
		pending = append(pending, buf[:n]...)
		var res Result
		r.engine.Load().Inspect(&Packet{Conn: testConn, FromPhone: fromPhone, Seq: seq, Payload: pending, Now: time.Now()}, &res)
		if res.Drop {
			continue
		}
		r.mu.Lock()
		r.results = append(r.results, res)
		r.mu.Unlock()
		seq += uint32(len(pending))
		if _, err := to.Write(pending); err != nil {
			return
		}
		pending = pending[:0]
	}
}

// playStory runs RunPhone and ServeCallManager through an inspecting
// relay; with failover, the relay's engine is replaced by an empty one
// (the standby's: the session table is not replicated) once the call is
// up. It returns the phone's timeline, the relay, the standby's engine and
// RunPhone's error.
func playStory(t *testing.T, failover bool) ([]EventKind, *inspectingRelay, *Engine, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	relay := &inspectingRelay{}
	relay.engine.Store(NewEngine(Config{}))
	standby := NewEngine(Config{})
	phoneSide, relayPhone := net.Pipe()
	relayManager, managerSide := net.Pipe()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { relay.pipe(t, relayPhone, relayManager, true, 1000) })
	wg.Go(func() { relay.pipe(t, relayManager, relayPhone, false, 9000) })
	wg.Go(func() {
		err := ServeCallManager(ctx, managerSide, CallManagerConfig{MediaAddr: managerAddr, MediaPort: 16384}, nil)
		if err != nil && !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("ServeCallManager: %v", err)
		}
	})
	var timeline []EventKind
	cfg := PhoneConfig{Device: "SEP-falab", Number: "1000", MediaAddr: phoneAddr, MediaPort: 26822,
		Heartbeat: 20 * time.Millisecond, CallDuration: 100 * time.Millisecond, AckTimeout: 300 * time.Millisecond}
	err := RunPhone(ctx, phoneSide, cfg, func(ev Event) {
		timeline = append(timeline, ev.Kind)
		if ev.Kind == EventCallUp && failover {
			relay.engine.Store(standby)
		}
	})
	return timeline, relay, standby, err
}

// TestMissionStory plays the mission's SoftPhone story over the agents'
// real protocol logic: without a failover the call ends cleanly; with one
// during the call, the standby has no session record, drops the hang-up
// (counted as ctiqbe-no-session), and the phone finds the CallManager
// unreachable and unregisters.
func TestMissionStory(t *testing.T) {
	timeline, relay, _, err := playStory(t, false)
	if err != nil {
		t.Fatalf("without failover: %v (timeline %v)", err, timeline)
	}
	opened := 0
	for _, r := range relay.results {
		opened += len(r.Open)
	}
	if opened != 6 {
		t.Errorf("the active engine opened %d pinholes for the call, want 6 (MakeCall 2, CallSetup 4)", opened)
	}

	timeline, _, standby, err := playStory(t, true)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("with failover: %v, want ErrUnreachable (timeline %v)", err, timeline)
	}
	want := []EventKind{EventRegistered, EventCallUp, EventHeartbeatUnanswered, EventHangUpSent,
		EventNoHangUpAck, EventUnreachable, EventUnregistered}
	i := 0
	for _, k := range timeline {
		if i < len(want) && k == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("timeline %v lacks %q (want in order %v)", timeline, want[i], want)
	}
	if c := standby.Counters(); c.NoSession == 0 || c.Messages != 0 {
		t.Errorf("standby counters %+v: want no-session drops and nothing accepted", c)
	}
	if len(standby.Sessions()) != 0 {
		t.Errorf("standby sessions: %+v", standby.Sessions())
	}
}
