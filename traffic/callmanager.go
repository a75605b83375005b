package traffic

// The callmanager agent: the CallManager side of the CTIQBE lab model (a
// lab model of CTIQBE's behaviour, not wire-compatible; see package
// ctiqbe). It accepts softphones on TCP 2748 and answers them
// (RegisterAck, HeartbeatAck, CallSetup naming its media echo, HangUpAck),
// and echoes every UDP datagram that reaches its media port back to its
// sender, so a call's media crosses the firewall both ways.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/falab/falab/ctiqbe"
)

// callManager is the callmanager agent.
type callManager struct {
	cfg agentConfig
	log *slog.Logger
	ids atomic.Uint32 // device and call ids, shared by all connections

	mu        sync.Mutex
	flows     []*voiceFlow // guarded by mu
	mediaIn   uint64       // datagrams received on the media port; guarded by mu
	mediaEcho uint64       // datagrams echoed; guarded by mu
}

func newCallManager(cfg agentConfig, log *slog.Logger) *callManager {
	return &callManager{cfg: cfg, log: log}
}

func (s *callManager) run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.listenAddr())
	if err != nil {
		return err
	}
	media, err := lc.ListenPacket(ctx, "udp4", net.JoinHostPort(s.cfg.bind, strconv.Itoa(s.cfg.voice.mediaPort)))
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("media port: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = ln.Close(); _ = media.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.echo(media) })
	mediaPort := uint16(media.LocalAddr().(*net.UDPAddr).Port)
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
			_ = media.Close()
			return fmt.Errorf("accept: %w", err)
		}
		wg.Go(func() { s.serve(ctx, nc, mediaPort) })
	}
}

// echo sends every datagram on the media port back to its sender until
// the socket is closed.
func (s *callManager) echo(media net.PacketConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := media.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		_, werr := media.WriteTo(buf[:n], from)
		s.mu.Lock()
		s.mediaIn++
		if werr == nil {
			s.mediaEcho++
		}
		s.mu.Unlock()
	}
}

// serve answers one softphone.
func (s *callManager) serve(ctx context.Context, nc net.Conn, mediaPort uint16) {
	now := time.Now()
	f := &voiceFlow{core: &flowCore{
		id: 0, state: StateAlive, begun: now, established: now,
		local: nc.LocalAddr().String(), remote: nc.RemoteAddr().String(),
	}}
	f.voice.State = VoiceRegistering
	s.mu.Lock()
	f.core.id = uint32(len(s.flows))
	s.flows = append(s.flows, f)
	s.mu.Unlock()
	var addr [4]byte
	copy(addr[:], nc.LocalAddr().(*net.TCPAddr).IP.To4())
	cfg := ctiqbe.CallManagerConfig{
		Heartbeat: uint16(s.cfg.voice.heartbeat / time.Second), MediaAddr: addr, MediaPort: mediaPort,
		IDs: &s.ids, MuteAfterSetup: s.cfg.voice.muteAfter,
	}
	err := ctiqbe.ServeCallManager(ctx, nc, cfg, func(ev ctiqbe.Event) {
		f.add(ev.At, string(ev.Kind), ev.Detail)
		f.core.mu.Lock()
		defer f.core.mu.Unlock()
		switch ev.Kind {
		case ctiqbe.EventRegisterSeen:
			f.voice.State, f.voice.Device = VoiceRegistered, ev.Detail
		case ctiqbe.EventCallSetupSent:
			f.voice.State, f.voice.CallID = VoiceInCall, ev.CallID
		case ctiqbe.EventHangUpAckSent:
			f.voice.State = VoiceRegistered
		case ctiqbe.EventStoppedAnswering:
			f.voice.State = VoiceMuted
		case ctiqbe.EventUnregisterSeen:
			f.voice.State = VoiceUnregistered
		}
	})
	f.core.mu.Lock()
	defer f.core.mu.Unlock()
	switch {
	case err != nil:
		f.core.endLocked(StateReset, time.Now(), err)
	case ctx.Err() == nil:
		// The phone unregistered or closed the connection.
		f.core.endLocked(StateCompleted, time.Now(), nil)
	}
}

func (s *callManager) snapshot(now time.Time) Report {
	s.mu.Lock()
	flows := s.flows[:len(s.flows):len(s.flows)]
	rep := Report{Received: s.mediaIn, Sent: s.mediaEcho, Detail: make([]FlowReport, 0, len(flows))}
	s.mu.Unlock()
	for _, f := range flows {
		fr := f.report(now, s.cfg.stall)
		fr.Peers = []string{fr.Remote}
		rep.Detail = append(rep.Detail, fr)
	}
	return rep
}
