package ctiqbe

// The two agents' protocol logic of the CTIQBE lab model (a lab model of
// CTIQBE's behaviour, not wire-compatible): the phone (a SoftPhone) and
// the CallManager, each over a net.Conn it is given.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// EventKind names a step of an agent's timeline.
type EventKind string

// Timeline steps. The phone's:
const (
	EventRegistered          EventKind = "registered"           // RegisterAck received
	EventCallUp              EventKind = "call up"              // CallSetup received (media may flow)
	EventHeartbeatUnanswered EventKind = "heartbeat unanswered" // a heartbeat got no ack before the next was due
	EventHeartbeatAnswered   EventKind = "heartbeat answered"   // acks came back after unanswered ones
	EventHangUpSent          EventKind = "hangup sent"
	EventHangUpAck           EventKind = "hangup ack"
	EventNoHangUpAck         EventKind = "no hangup ack"
	EventUnreachable         EventKind = "CallManager unreachable"
	EventUnregistered        EventKind = "unregistered"
)

// The CallManager's:
const (
	EventRegisterSeen     EventKind = "register"
	EventCallSetupSent    EventKind = "call setup sent"
	EventHangUpAckSent    EventKind = "hangup ack sent"
	EventUnregisterSeen   EventKind = "unregister"
	EventStoppedAnswering EventKind = "stopped answering" // MuteAfterSetup
)

// Event is one step of an agent's timeline.
type Event struct {
	At     time.Time
	Kind   EventKind
	CallID uint32
	// Media is the remote media address and RTP port (EventCallUp) or the
	// one offered (EventCallSetupSent).
	Media     [4]byte
	MediaPort uint16
	Detail    string
}

// ErrUnreachable is the phone's verdict when a request it sent got no
// answer within its ack timeout: it considers the CallManager unreachable
// and unregisters.
var ErrUnreachable = errors.New("CallManager unreachable")

// PhoneConfig is what a phone does.
type PhoneConfig struct {
	Device string
	Number string // called number
	// MediaAddr and MediaPort are where the phone receives RTP.
	MediaAddr [4]byte
	MediaPort uint16
	// Heartbeat is the time between heartbeats.
	Heartbeat time.Duration
	// CallAfter is how long after registering the phone makes its call.
	CallAfter time.Duration
	// CallDuration is how long the call lasts before the phone hangs up.
	CallDuration time.Duration
	// AckTimeout is how long the phone waits for an answer to a request
	// (RegisterAck, CallSetup, HangUpAck) before it considers the
	// CallManager unreachable.
	AckTimeout time.Duration
}

// RunPhone registers, heartbeats, makes one call, hangs up after the
// call's duration and unregisters, over conn, which it owns and closes
// before it returns. event is called for each step of the timeline, on
// the calling goroutine (EventCallUp is the cue to start media,
// EventHangUpSent to stop it). It returns nil after a clean unregister,
// ErrUnreachable (wrapped) if the CallManager did not answer in time, in
// which case it has sent Unregister, or another error (the connection
// broke, ctx was cancelled).
func RunPhone(ctx context.Context, conn net.Conn, cfg PhoneConfig, event func(Event)) error {
	if cfg.Heartbeat <= 0 || cfg.AckTimeout <= 0 || cfg.CallDuration < 0 || cfg.CallAfter < 0 {
		_ = conn.Close()
		return errors.New("phone: the heartbeat and ack timeout must be positive, the call's times not negative")
	}
	in := make(chan Message, 16)
	readErr := make(chan error, 1)
	go func() {
		defer close(in)
		for {
			m, err := ReadMessage(conn)
			if err != nil {
				readErr <- err
				return
			}
			if m.Type.FromPhone() {
				readErr <- fmt.Errorf("the CallManager sent a phone's message, %s", m.Type)
				return
			}
			in <- m
		}
	}()
	defer func() {
		_ = conn.Close()
		for range in { // let the reader end
		}
	}()
	// One heartbeat ticker for the whole run, so heartbeats keep their
	// pace across the script's waits.
	beat := time.NewTicker(cfg.Heartbeat)
	defer beat.Stop()
	p := &phone{conn: conn, cfg: cfg, event: event, in: in, readErr: readErr, beat: beat.C}
	return p.run(ctx)
}

// phone is RunPhone's state, owned by its goroutine.
type phone struct {
	conn    net.Conn
	cfg     PhoneConfig
	event   func(Event)
	in      <-chan Message
	readErr <-chan error
	beat    <-chan time.Time
	txid    uint32

	heartbeatOut bool // a heartbeat awaits its ack
	unanswered   int  // heartbeats in a row with no ack when the next was due
}

func (p *phone) send(m Message) error {
	p.txid++
	m.TxID = p.txid
	_ = p.conn.SetWriteDeadline(time.Now().Add(p.cfg.AckTimeout))
	if err := WriteMessage(p.conn, m); err != nil {
		return fmt.Errorf("sending %s: %w", m.Type, err)
	}
	return nil
}

func (p *phone) emit(ev Event) {
	ev.At = time.Now()
	if p.event != nil {
		p.event(ev)
	}
}

// run is the phone's script: each wait also serves heartbeats.
func (p *phone) run(ctx context.Context) error {
	if err := p.send(Message{Type: TypeRegister, Device: p.cfg.Device}); err != nil {
		return err
	}
	if _, err := p.await(ctx, TypeRegisterAck, 0, p.cfg.AckTimeout); err != nil {
		return p.giveUp(err, "RegisterAck")
	}
	p.emit(Event{Kind: EventRegistered})
	if _, err := p.await(ctx, 0, 0, p.cfg.CallAfter); err != nil {
		return err
	}
	mc := Message{Type: TypeMakeCall, Number: p.cfg.Number, MediaAddr: p.cfg.MediaAddr, MediaPort: p.cfg.MediaPort}
	if err := p.send(mc); err != nil {
		return err
	}
	setup, err := p.await(ctx, TypeCallSetup, 0, p.cfg.AckTimeout)
	if err != nil {
		return p.giveUp(err, "CallSetup")
	}
	if err := p.send(Message{Type: TypeCallSetupAck, CallID: setup.CallID}); err != nil {
		return err
	}
	p.emit(Event{Kind: EventCallUp, CallID: setup.CallID, Media: setup.MediaAddr, MediaPort: setup.MediaPort})
	if _, err := p.await(ctx, 0, 0, p.cfg.CallDuration); err != nil {
		return err
	}
	if err := p.send(Message{Type: TypeHangUp, CallID: setup.CallID}); err != nil {
		return err
	}
	p.emit(Event{Kind: EventHangUpSent, CallID: setup.CallID})
	if _, err := p.await(ctx, TypeHangUpAck, setup.CallID, p.cfg.AckTimeout); err != nil {
		p.emit(Event{Kind: EventNoHangUpAck, CallID: setup.CallID})
		return p.giveUp(err, "HangUpAck")
	}
	p.emit(Event{Kind: EventHangUpAck, CallID: setup.CallID})
	if err := p.send(Message{Type: TypeUnregister}); err != nil {
		return err
	}
	p.emit(Event{Kind: EventUnregistered})
	return nil
}

// errNoAnswer is await's timeout.
var errNoAnswer = errors.New("no answer")

// giveUp ends the phone after a wait for what failed with err: a timeout
// makes the CallManager unreachable, and the phone unregisters.
func (p *phone) giveUp(err error, what string) error {
	if !errors.Is(err, errNoAnswer) {
		return err
	}
	p.emit(Event{Kind: EventUnreachable, Detail: fmt.Sprintf("no %s within %s", what, p.cfg.AckTimeout)})
	unreg := p.send(Message{Type: TypeUnregister})
	detail := ""
	if unreg != nil {
		detail = unreg.Error()
	}
	p.emit(Event{Kind: EventUnregistered, Detail: detail})
	return fmt.Errorf("%w: no %s within %s", ErrUnreachable, what, p.cfg.AckTimeout)
}

// await waits up to d for a message of type want (with call id callID if
// not zero), serving heartbeats meanwhile; want 0 just waits d. A timeout
// is errNoAnswer.
func (p *phone) await(ctx context.Context, want Type, callID uint32, d time.Duration) (Message, error) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return Message{}, ctx.Err()
		case <-deadline.C:
			if want == 0 {
				return Message{}, nil
			}
			return Message{}, errNoAnswer
		case <-p.beat:
			if p.heartbeatOut {
				p.unanswered++
				if p.unanswered == 1 {
					p.emit(Event{Kind: EventHeartbeatUnanswered})
				}
			}
			if err := p.send(Message{Type: TypeHeartbeat}); err != nil {
				return Message{}, err
			}
			p.heartbeatOut = true
		case m, ok := <-p.in:
			if !ok {
				return Message{}, fmt.Errorf("connection to the CallManager: %w", <-p.readErr)
			}
			if m.Type == TypeHeartbeatAck {
				p.heartbeatOut = false
				if p.unanswered > 0 {
					p.emit(Event{Kind: EventHeartbeatAnswered, Detail: fmt.Sprintf("after %d unanswered", p.unanswered)})
					p.unanswered = 0
				}
				continue
			}
			if m.Type == want && (callID == 0 || m.CallID == callID) {
				return m, nil
			}
			// Anything else is not what the phone waits for; the model
			// ignores it.
		}
	}
}

// CallManagerConfig is what a CallManager answers.
type CallManagerConfig struct {
	// Heartbeat is the interval it announces in RegisterAck, in seconds.
	Heartbeat uint16
	// MediaAddr and MediaPort are the media address it offers in
	// CallSetup (where the phone sends RTP).
	MediaAddr [4]byte
	MediaPort uint16
	// IDs hands out device and call ids, shared by the connections of one
	// CallManager.
	IDs *atomic.Uint32
	// MuteAfterSetup: once a call is set up, read everything and answer
	// nothing, as a CallManager whose messages no longer arrive. A lab
	// knob, to show the phone's verdict without a failover.
	MuteAfterSetup bool
}

// ServeCallManager answers one phone over conn until the phone
// unregisters (nil), the connection ends, or ctx is done; conn is closed
// when it returns. event is called for each step of the timeline.
func ServeCallManager(ctx context.Context, conn net.Conn, cfg CallManagerConfig, event func(Event)) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	defer conn.Close()
	if cfg.IDs == nil {
		cfg.IDs = new(atomic.Uint32)
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 1
	}
	emit := func(ev Event) {
		ev.At = time.Now()
		if event != nil {
			event(ev)
		}
	}
	muted := false
	for {
		m, err := ReadMessage(conn)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil // stopped, or the phone closed the connection
			}
			return err
		}
		if !m.Type.FromPhone() {
			return fmt.Errorf("the phone sent a CallManager's message, %s", m.Type)
		}
		if muted {
			continue
		}
		reply := Message{TxID: m.TxID}
		switch m.Type {
		case TypeRegister:
			reply.Type, reply.DeviceID, reply.Heartbeat = TypeRegisterAck, cfg.IDs.Add(1), cfg.Heartbeat
			emit(Event{Kind: EventRegisterSeen, Detail: m.Device})
		case TypeHeartbeat:
			reply.Type = TypeHeartbeatAck
		case TypeMakeCall:
			reply.Type, reply.CallID, reply.MediaAddr, reply.MediaPort = TypeCallSetup, cfg.IDs.Add(1), cfg.MediaAddr, cfg.MediaPort
		case TypeHangUp:
			reply.Type, reply.CallID = TypeHangUpAck, m.CallID
		case TypeUnregister:
			emit(Event{Kind: EventUnregisterSeen})
			return nil
		default: // CallSetupAck: nothing to answer
			continue
		}
		if err := WriteMessage(conn, reply); err != nil {
			return err
		}
		switch reply.Type {
		case TypeCallSetup:
			emit(Event{Kind: EventCallSetupSent, CallID: reply.CallID, Media: reply.MediaAddr, MediaPort: reply.MediaPort})
			if cfg.MuteAfterSetup {
				muted = true
				emit(Event{Kind: EventStoppedAnswering, CallID: reply.CallID})
			}
		case TypeHangUpAck:
			emit(Event{Kind: EventHangUpAckSent, CallID: reply.CallID})
		}
	}
}
