package traffic

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/ctiqbe"
)

// timelineOrder checks that want's events occur in tl in that order (with
// others between), and returns what is missing.
func timelineOrder(t *testing.T, tl []TimelineEvent, want ...string) {
	t.Helper()
	i := 0
	for _, ev := range tl {
		if i < len(want) && ev.Event == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("timeline lacks %q (in order %q):\n%+v", want[i], want, tl)
	}
	for k := 1; k < len(tl); k++ {
		if tl[k].At.Before(tl[k-1].At) {
			t.Errorf("timeline not in time order at %d: %+v", k, tl)
		}
	}
}

// startCallManager runs a callmanager agent on loopback and returns it and
// its port.
func startCallManager(t *testing.T, extra ...string) (*agent, string) {
	t.Helper()
	port := freePort(t, "tcp")
	args := append([]string{KindCallManager, "--role", "server", "--bind", "127.0.0.1", "--port", port,
		"--media-port", "0", "--report-every", "20ms"}, extra...)
	return startAgent(t, args...), port
}

func softphoneArgs(port string, extra ...string) []string {
	return append([]string{KindSoftphone, "--role", "client", "--target", "127.0.0.1", "--port", port,
		"--heartbeat", "40ms", "--call-after", "0s", "--call-duration", "300ms", "--media-interval", "5ms",
		"--report-every", "20ms"}, extra...)
}

// TestSoftphoneCall: a softphone and a callmanager on loopback complete a
// call, media echoed, and the phone unregisters cleanly.
func TestSoftphoneCall(t *testing.T) {
	checkNoLeaks(t)
	cm, port := startCallManager(t)
	ph := startAgent(t, softphoneArgs(port, "--ack-timeout", "3s")...)
	if err := ph.wait(t); err != nil {
		t.Fatalf("softphone: %v", err)
	}
	rep := ph.out.final(t)
	if len(rep.Detail) != 1 || rep.Detail[0].Voice == nil {
		t.Fatalf("softphone report: %+v", rep)
	}
	f, v := rep.Detail[0], rep.Detail[0].Voice
	if f.State != StateCompleted || v.State != VoiceUnregistered || f.Error != "" {
		t.Errorf("softphone ended %s / %q (%s), want completed / %q", f.State, v.State, f.Error, VoiceUnregistered)
	}
	if v.MediaSent == 0 || v.MediaReceived == 0 || v.CallID == 0 || rep.Received != v.MediaReceived {
		t.Errorf("media sent %d, echoed %d, call id %d: want media both ways in a call", v.MediaSent, v.MediaReceived, v.CallID)
	}
	timelineOrder(t, v.Timeline, string(ctiqbe.EventRegistered), string(ctiqbe.EventCallUp), EventMediaFirst,
		string(ctiqbe.EventHangUpSent), string(ctiqbe.EventHangUpAck), string(ctiqbe.EventUnregistered))
	timelineOrder(t, v.Timeline, EventMediaFirst, EventMediaLast)

	// The phone's Unregister may still be in flight: wait (bounded) for the
	// callmanager to report the flow completed before stopping it.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if rs := cm.out.reports(t); len(rs) > 0 && rs[len(rs)-1].Completed == 1 {
			break
		}
	}
	if err := cm.stop(t); err != nil {
		t.Fatalf("callmanager: %v", err)
	}
	srv := cm.out.final(t)
	if len(srv.Detail) != 1 || srv.Detail[0].State != StateCompleted || srv.Detail[0].Voice.State != VoiceUnregistered ||
		srv.Detail[0].Voice.Device != "SEP-falab" || srv.Received == 0 || srv.Sent == 0 {
		t.Errorf("callmanager report: %+v / %+v", srv, srv.Detail)
	}
	timelineOrder(t, srv.Detail[0].Voice.Timeline, string(ctiqbe.EventRegisterSeen), string(ctiqbe.EventCallSetupSent),
		string(ctiqbe.EventHangUpAckSent), string(ctiqbe.EventUnregisterSeen))
}

// TestSoftphoneUnreachable: with a callmanager that stops answering once
// the call is set up, media still flows, but the hang-up gets no ack; the
// phone logs "CallManager unreachable", unregisters and reports it.
func TestSoftphoneUnreachable(t *testing.T) {
	checkNoLeaks(t)
	_, port := startCallManager(t, "--mute-after-setup")
	var logged lines
	out := &lines{}
	err := RunAgentLogger(context.Background(), softphoneArgs(port, "--ack-timeout", "300ms"), out,
		slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatalf("softphone: %v", err)
	}
	rep := out.final(t)
	f, v := rep.Detail[0], rep.Detail[0].Voice
	if VoiceUnreachable != "unregistered: callmanager unreachable" || v.State != VoiceUnreachable || f.State != StateStalled ||
		!strings.Contains(f.Error, "CallManager unreachable: no HangUpAck within 300ms") {
		t.Errorf("softphone ended %s / %q (%s); want stalled / %q", f.State, v.State, f.Error, VoiceUnreachable)
	}
	if v.MediaReceived == 0 || v.HeartbeatsUnanswered == 0 {
		t.Errorf("media echoed %d, heartbeats unanswered %d: want media through the call and heartbeats unanswered",
			v.MediaReceived, v.HeartbeatsUnanswered)
	}
	timelineOrder(t, v.Timeline, string(ctiqbe.EventRegistered), string(ctiqbe.EventCallUp), EventMediaFirst,
		string(ctiqbe.EventHeartbeatUnanswered), string(ctiqbe.EventHangUpSent), string(ctiqbe.EventNoHangUpAck),
		string(ctiqbe.EventUnreachable), string(ctiqbe.EventUnregistered))
	if !bytes.Contains(logged.buf.Bytes(), []byte("CallManager unreachable")) {
		t.Errorf("log lacks \"CallManager unreachable\":\n%s", logged.buf.String())
	}
}

func TestVoiceFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{KindSoftphone, "--role", "server"}, "softphone has only a client role"},
		{[]string{KindCallManager, "--role", "client", "--target", "x"}, "callmanager has only a server role"},
		{[]string{KindSoftphone, "--role", "client", "--target", "x", "--ack-timeout", "0s"}, "--ack-timeout must be positive"},
		{[]string{KindSoftphone, "--role", "client", "--target", "x", "--device", "a b"}, `--device "a b"`},
		{[]string{KindSoftphone, "--role", "client", "--target", "x", "--number", "12a"}, `--number "12a"`},
		{[]string{KindCallManager, "--role", "server", "--heartbeat", "10ms"}, "--heartbeat must be 1s..65535s"},
		{[]string{KindCallManager, "--role", "server", "--call-duration", "1s"}, "flag provided but not defined: -call-duration"},
	} {
		err := RunAgent(context.Background(), tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("RunAgent(%q) = %v, want %q", tc.args, err, tc.wantErr)
		}
	}
	cfg, err := parseAgentFlags([]string{KindSoftphone, "--role", "client", "--target", "198.18.1.10"})
	if err != nil || cfg.targetAddr() != "198.18.1.10:2748" || cfg.voice.ackTimeout.String() != "5s" || cfg.voice.heartbeat.String() != "1s" {
		t.Errorf("softphone defaults: %+v, %v", cfg, err)
	}
}
