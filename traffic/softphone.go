package traffic

// The softphone agent: the CTI device side of the CTIQBE lab model (a lab
// model of CTIQBE's behaviour, not wire-compatible; see package ctiqbe).
// It registers with a callmanager agent on TCP 2748, heartbeats, makes one
// call, sends RTP-like media to the media address the call setup names
// (the callmanager's host echoes it, so media crosses the firewall both
// ways through the pinholes the inspection opened), hangs up after
// --call-duration and waits --ack-timeout for the hang-up's ack. Without
// one it logs "CallManager unreachable", unregisters and says so in its
// report: the mission's SoftPhone story.

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/falab/falab/ctiqbe"
)

// Voice states of a softphone's report (VoiceReport.State).
const (
	VoiceRegistering  = "registering"
	VoiceRegistered   = "registered"
	VoiceInCall       = "in call"
	VoiceHangingUp    = "hanging up"
	VoiceUnregistered = "unregistered"
	// VoiceUnreachable is the mission's ending: the hang-up got no ack,
	// the phone considered the CallManager unreachable and unregistered.
	VoiceUnreachable = "unregistered: callmanager unreachable"
	VoiceFailed      = "failed"
	// A callmanager's flow after --mute-after-setup took effect.
	VoiceMuted = "stopped answering"
)

// VoiceReport is a CTIQBE agent's view of its connection (FlowReport.Voice).
type VoiceReport struct {
	State  string `json:"state"`
	Device string `json:"device,omitempty"`
	CallID uint32 `json:"call_id,omitempty"`
	// Media counts RTP packets: sent and echoes received (softphone).
	MediaSent     uint64    `json:"media_sent"`
	MediaReceived uint64    `json:"media_received"`
	MediaFirst    time.Time `json:"media_first,omitzero"` // first echo
	MediaLast     time.Time `json:"media_last,omitzero"`  // last echo
	// HeartbeatsUnanswered is how many times a heartbeat was still
	// unanswered when the next was due.
	HeartbeatsUnanswered int `json:"heartbeats_unanswered"`
	// Timeline is every step, in time order: registered, call up, media
	// first, hangup sent, hangup ack or no hangup ack and CallManager
	// unreachable, media last, unregistered, and heartbeat gaps.
	Timeline []TimelineEvent `json:"timeline"`
}

// TimelineEvent is one step of a VoiceReport's timeline.
type TimelineEvent struct {
	At     time.Time `json:"at"`
	Event  string    `json:"event"`
	Detail string    `json:"detail,omitempty"`
}

// Timeline events the agents add to ctiqbe's own.
const (
	EventMediaFirst = "media first"
	EventMediaLast  = "media last"
)

// voiceConfig is the flags of softphone and callmanager.
type voiceConfig struct {
	heartbeat     time.Duration
	callAfter     time.Duration
	callDuration  time.Duration
	ackTimeout    time.Duration
	mediaInterval time.Duration
	device        string
	number        string
	mediaPort     int
	muteAfter     bool
}

func (v *voiceConfig) flags(fs *flag.FlagSet, kind string) {
	switch kind {
	case KindSoftphone:
		fs.DurationVar(&v.heartbeat, "heartbeat", time.Second, "time between heartbeats")
		fs.DurationVar(&v.callAfter, "call-after", 200*time.Millisecond, "how long after registering to make the call")
		fs.DurationVar(&v.callDuration, "call-duration", 5*time.Second, "how long the call lasts before the hang-up")
		fs.DurationVar(&v.ackTimeout, "ack-timeout", 5*time.Second, "how long to wait for an answer (hang-up ack) before the CallManager is unreachable")
		fs.DurationVar(&v.mediaInterval, "media-interval", 20*time.Millisecond, "time between RTP packets")
		fs.StringVar(&v.device, "device", "SEP-falab", "device name to register")
		fs.StringVar(&v.number, "number", "1000", "number to call")
	case KindCallManager:
		fs.DurationVar(&v.heartbeat, "heartbeat", time.Second, "heartbeat interval announced in RegisterAck (whole seconds)")
		fs.IntVar(&v.mediaPort, "media-port", 16384, "UDP port of the media echo offered in call setups (0: any)")
		fs.BoolVar(&v.muteAfter, "mute-after-setup", false, "lab knob: after a call setup, answer nothing more on that connection")
	}
}

func (v *voiceConfig) check(kind, role string) error {
	switch kind {
	case KindSoftphone:
		if role != RoleClient {
			return errors.New("softphone has only a client role (the callmanager is its server)")
		}
		for name, d := range map[string]time.Duration{"--heartbeat": v.heartbeat, "--ack-timeout": v.ackTimeout,
			"--media-interval": v.mediaInterval, "--call-duration": v.callDuration} {
			if d <= 0 {
				return fmt.Errorf("%s must be positive, got %s", name, d)
			}
		}
		if v.callAfter < 0 {
			return fmt.Errorf("--call-after must not be negative, got %s", v.callAfter)
		}
		if _, err := (&ctiqbe.Message{Type: ctiqbe.TypeRegister, Device: v.device}).MarshalBinary(); err != nil {
			return fmt.Errorf("--device %q: 1..%d of A-Z a-z 0-9 . _ -", v.device, ctiqbe.MaxDeviceLen)
		}
		m := ctiqbe.Message{Type: ctiqbe.TypeMakeCall, Number: v.number, MediaAddr: [4]byte{1, 1, 1, 1}, MediaPort: 1}
		if _, err := m.MarshalBinary(); err != nil {
			return fmt.Errorf("--number %q: 1..%d of 0-9 * #", v.number, ctiqbe.MaxNumberLen)
		}
	case KindCallManager:
		if role != RoleServer {
			return errors.New("callmanager has only a server role")
		}
		if v.heartbeat < time.Second || v.heartbeat > 65535*time.Second {
			return fmt.Errorf("--heartbeat must be 1s..65535s, got %s", v.heartbeat)
		}
		if v.mediaPort < 0 || v.mediaPort > 65534 {
			return fmt.Errorf("--media-port %d is not in 0..65534", v.mediaPort)
		}
	}
	return nil
}

// voiceFlow is one CTIQBE connection's flow and timeline, under core.mu.
type voiceFlow struct {
	core  *flowCore
	voice VoiceReport // guarded by core.mu
}

// add appends a timeline event.
func (f *voiceFlow) add(at time.Time, event, detail string) {
	f.core.mu.Lock()
	f.voice.Timeline = append(f.voice.Timeline, TimelineEvent{At: at, Event: event, Detail: detail})
	f.core.mu.Unlock()
}

// report renders the flow with its voice view.
func (f *voiceFlow) report(now time.Time, stall time.Duration) FlowReport {
	r := f.core.report(now, stall)
	f.core.mu.Lock()
	v := f.voice
	v.Timeline = slices.Clone(v.Timeline)
	f.core.mu.Unlock()
	if !v.MediaLast.IsZero() && v.State != VoiceInCall {
		v.Timeline = append(v.Timeline, TimelineEvent{At: v.MediaLast, Event: EventMediaLast})
	}
	slices.SortStableFunc(v.Timeline, func(a, b TimelineEvent) int { return a.At.Compare(b.At) })
	r.Voice = &v
	return r
}

// softphone is the softphone agent: one phone, one call.
type softphone struct {
	cfg  agentConfig
	log  *slog.Logger
	flow *voiceFlow
}

func newSoftphone(cfg agentConfig, log *slog.Logger) *softphone {
	f := &voiceFlow{core: &flowCore{state: StateConnecting, begun: time.Now()}}
	f.voice.State, f.voice.Device = VoiceRegistering, cfg.voice.device
	return &softphone{cfg: cfg, log: log, flow: f}
}

// rtpHeaderLen and rtpPayloadLen size the media packets: an RTP header
// and 20 ms of G.711.
const (
	rtpHeaderLen  = 12
	rtpPayloadLen = 160
)

func (s *softphone) run(ctx context.Context) error {
	f, core := s.flow, s.flow.core
	nc, err := dialRetry(ctx, "tcp", s.cfg.targetAddr())
	if err != nil {
		s.finish(StateFailed, VoiceFailed, fmt.Errorf("connecting to the callmanager: %w", err))
		return nil
	}
	local := nc.LocalAddr().(*net.TCPAddr)
	media, err := net.ListenUDP("udp4", &net.UDPAddr{IP: local.IP})
	if err != nil {
		_ = nc.Close()
		s.finish(StateFailed, VoiceFailed, fmt.Errorf("media socket: %w", err))
		return nil
	}
	defer media.Close()
	core.mu.Lock()
	core.local, core.remote = local.String(), nc.RemoteAddr().String()
	core.mu.Unlock()
	var addr [4]byte
	copy(addr[:], local.IP.To4())
	v := s.cfg.voice
	pcfg := ctiqbe.PhoneConfig{
		Device: v.device, Number: v.number, MediaAddr: addr, MediaPort: uint16(media.LocalAddr().(*net.UDPAddr).Port),
		Heartbeat: v.heartbeat, CallAfter: v.callAfter, CallDuration: v.callDuration, AckTimeout: v.ackTimeout,
	}
	m := &mediaSession{flow: f, conn: media, interval: v.mediaInterval, ssrc: uint32(randomSession())}
	defer m.stop()
	err = ctiqbe.RunPhone(ctx, nc, pcfg, func(ev ctiqbe.Event) { s.onEvent(ctx, m, ev) })
	m.stop()
	switch {
	case err == nil:
		s.finish(StateCompleted, VoiceUnregistered, nil)
	case errors.Is(err, ctiqbe.ErrUnreachable):
		s.finish(StateStalled, VoiceUnreachable, err)
	case ctx.Err() != nil:
		// The run ended (--duration, or stopped) with the phone still up.
	default:
		s.finish(StateReset, VoiceFailed, err)
	}
	return nil
}

// finish ends the flow in state with the voice state vs.
func (s *softphone) finish(state FlowState, vs string, err error) {
	c := s.flow.core
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked(state, time.Now(), err)
	s.flow.voice.State = vs
}

// onEvent records a step of RunPhone's timeline and acts on it.
func (s *softphone) onEvent(ctx context.Context, m *mediaSession, ev ctiqbe.Event) {
	f, c := s.flow, s.flow.core
	f.add(ev.At, string(ev.Kind), ev.Detail)
	c.mu.Lock()
	switch ev.Kind {
	case ctiqbe.EventRegistered:
		c.state, c.established = StateAlive, ev.At
		f.voice.State = VoiceRegistered
	case ctiqbe.EventCallUp:
		f.voice.State, f.voice.CallID = VoiceInCall, ev.CallID
	case ctiqbe.EventHangUpSent:
		f.voice.State = VoiceHangingUp
	case ctiqbe.EventHeartbeatUnanswered:
		f.voice.HeartbeatsUnanswered++
	}
	c.mu.Unlock()
	switch ev.Kind {
	case ctiqbe.EventCallUp:
		m.start(ctx, &net.UDPAddr{IP: net.IP(ev.Media[:]), Port: int(ev.MediaPort)})
	case ctiqbe.EventHangUpSent:
		m.stop()
	case ctiqbe.EventUnreachable:
		s.log.Warn("CallManager unreachable", "detail", ev.Detail)
	}
}

func (s *softphone) snapshot(now time.Time) Report {
	fr := s.flow.report(now, s.cfg.stall)
	v := fr.Voice
	rep := Report{Sent: v.MediaSent, Received: v.MediaReceived, Detail: []FlowReport{fr}}
	if v.MediaSent > v.MediaReceived {
		rep.Lost = v.MediaSent - v.MediaReceived
	}
	return rep
}

// mediaSession sends RTP-like packets to the remote media address and
// counts their echoes, from EventCallUp to EventHangUpSent.
type mediaSession struct {
	flow     *voiceFlow
	conn     *net.UDPConn
	interval time.Duration
	ssrc     uint32

	mu     sync.Mutex // guards cancel and wg's use
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (m *mediaSession) start(ctx context.Context, to *net.UDPAddr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil {
		return
	}
	ctx, m.cancel = context.WithCancel(ctx)
	m.wg.Go(func() { m.send(ctx, to) })
	m.wg.Go(func() { m.receive(ctx) })
}

// stop ends the media and waits for its goroutines; it may be called more
// than once.
func (m *mediaSession) stop() {
	m.mu.Lock()
	if m.cancel != nil {
		m.cancel()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

func (m *mediaSession) send(ctx context.Context, to *net.UDPAddr) {
	pkt := make([]byte, rtpHeaderLen+rtpPayloadLen)
	pkt[0], pkt[1] = 0x80, 0 // RTP version 2, payload type 0 (PCMU)
	binary.BigEndian.PutUint32(pkt[8:], m.ssrc)
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	for seq := uint16(0); ; seq++ {
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*rtpPayloadLen)
		if _, err := m.conn.WriteToUDP(pkt, to); err == nil {
			c := m.flow.core
			c.mu.Lock()
			m.flow.voice.MediaSent++
			c.sent += uint64(len(pkt))
			c.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// receive counts the echoes of our own packets until ctx is done.
func (m *mediaSession) receive(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { _ = m.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 2048)
	for {
		n, _, err := m.conn.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if n != rtpHeaderLen+rtpPayloadLen || buf[0] != 0x80 || binary.BigEndian.Uint32(buf[8:]) != m.ssrc {
			continue
		}
		now := time.Now()
		c, v := m.flow.core, &m.flow.voice
		c.mu.Lock()
		v.MediaReceived++
		c.received += uint64(n)
		first := v.MediaFirst.IsZero()
		if first {
			v.MediaFirst = now
			v.Timeline = append(v.Timeline, TimelineEvent{At: now, Event: EventMediaFirst})
		}
		v.MediaLast = now
		c.mu.Unlock()
	}
}
