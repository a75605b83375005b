package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/traffic"
)

// TestCheckVoice: the mission's ending passes; a clean hang-up, a missing
// step, and media that stopped at the fault each fail with their reason.
func TestCheckVoice(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fault := t0.Add(2 * time.Second)
	report := func(state string, mediaLast time.Duration, events ...string) []lab.TrafficReport {
		v := &traffic.VoiceReport{State: state, MediaFirst: t0.Add(300 * time.Millisecond), MediaLast: t0.Add(mediaLast)}
		for i, e := range events {
			v.Timeline = append(v.Timeline, traffic.TimelineEvent{At: t0.Add(time.Duration(i) * time.Second), Event: e})
		}
		return []lab.TrafficReport{{Traffic: lab.Traffic{Name: "phone"}, Client: &traffic.Report{Detail: []traffic.FlowReport{{Voice: v}}}}}
	}
	want := &VoiceExpect{
		State:            traffic.VoiceUnreachable,
		Timeline:         []string{"registered", "call up", "media first", "hangup sent", "no hangup ack", "CallManager unreachable", "unregistered"},
		NotTimeline:      []string{"hangup ack"},
		MediaAcrossFault: true,
	}
	story := []string{"registered", "call up", "media first", "heartbeat unanswered", "hangup sent", "no hangup ack", "CallManager unreachable", "media last", "unregistered"}
	if p := checkVoice("phone", want, report(traffic.VoiceUnreachable, 5*time.Second, story...), fault); len(p) != 0 {
		t.Fatalf("the mission's story failed: %v", p)
	}
	for _, c := range []struct {
		name, want string
		reps       []lab.TrafficReport
	}{
		{"clean hang-up", `state "unregistered"`, report(traffic.VoiceUnregistered, 5*time.Second, "registered", "call up", "media first", "hangup sent", "hangup ack", "unregistered")},
		{"no call", `lacks "call up"`, report(traffic.VoiceUnreachable, 5*time.Second, "registered", "CallManager unreachable")},
		{"media cut", "media stopped", report(traffic.VoiceUnreachable, 2*time.Second, story...)},
	} {
		p := strings.Join(checkVoice("phone", want, c.reps, fault), "\n")
		if !strings.Contains(p, c.want) {
			t.Errorf("%s: problems %q, want one with %q", c.name, p, c.want)
		}
	}
	if p := checkVoice("other", want, report(traffic.VoiceUnreachable, 5*time.Second, story...), fault); len(p) != 1 {
		t.Errorf("unknown traffic: %v", p)
	}
}
