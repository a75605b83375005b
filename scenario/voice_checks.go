package scenario

// Expectations on a softphone's VoiceReport (the CTIQBE lab model's
// client agent): its final state, the steps of its timeline in order, and
// whether media flowed across the last fault. They are how the softphone
// scenario checks the mission's story step by step.

import (
	"fmt"
	"strings"
	"time"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/labfile"
	"github.com/falab/falab/traffic"
)

// VoiceExpect checks a softphone traffic's report.
type VoiceExpect struct {
	// State is the softphone's final state, e.g. "unregistered:
	// callmanager unreachable".
	State string `yaml:"state"`
	// Timeline lists events that must appear in this order (others may
	// come between), e.g. [registered, call up, media first, hangup sent,
	// no hangup ack, CallManager unreachable, unregistered].
	Timeline []string `yaml:"timeline"`
	// NotTimeline lists events that must not appear (e.g. hangup ack).
	NotTimeline []string `yaml:"not_timeline"`
	// MediaAcrossFault: echoes came back before the last fault and at
	// least MediaAfter after it.
	MediaAcrossFault bool `yaml:"media_across_fault"`
	// MediaAfter is how long after the fault echoes must still have come
	// back (default 500ms).
	MediaAfter *labfile.Duration `yaml:"media_after"`
}

func (r *runner) checkVoices(e *ExpectSpec) []string {
	reps, err := lab.TrafficReports(r.name)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for _, name := range keys(e.Voice) {
		problems = append(problems, checkVoice(name, e.Voice[name], reps, r.lastFault)...)
	}
	return problems
}

// checkVoice checks one softphone traffic's client report against ve.
func checkVoice(name string, ve *VoiceExpect, reps []lab.TrafficReport, fault time.Time) []string {
	var v *traffic.VoiceReport
	for _, tr := range reps {
		if tr.Traffic.Name == name && tr.Client != nil {
			for _, f := range tr.Client.Detail {
				if f.Voice != nil {
					v = f.Voice
				}
			}
		}
	}
	if v == nil {
		return []string{"voice " + name + ": no softphone report"}
	}
	if ve == nil {
		return nil
	}
	var problems []string
	bad := func(format string, a ...any) {
		problems = append(problems, fmt.Sprintf("voice %s: ", name)+fmt.Sprintf(format, a...))
	}
	if ve.State != "" && v.State != ve.State {
		bad("state %q, expected %q", v.State, ve.State)
	}
	events := make([]string, len(v.Timeline))
	for i, ev := range v.Timeline {
		events[i] = ev.Event
	}
	next := 0
	for _, ev := range events {
		if next < len(ve.Timeline) && strings.EqualFold(ev, ve.Timeline[next]) {
			next++
		}
	}
	if next < len(ve.Timeline) {
		bad("timeline lacks %q in order after %v; it is %s", ve.Timeline[next], ve.Timeline[:next], strings.Join(events, ", "))
	}
	for _, not := range ve.NotTimeline {
		for _, ev := range events {
			if strings.EqualFold(ev, not) {
				bad("timeline has %q; it is %s", ev, strings.Join(events, ", "))
			}
		}
	}
	if ve.MediaAcrossFault {
		after := ve.MediaAfter.D(500 * time.Millisecond)
		switch {
		case fault.IsZero():
			bad("media across the fault: no fault was injected")
		case v.MediaFirst.IsZero() || !v.MediaFirst.Before(fault):
			bad("no media echoed before the fault (first echo %v, fault %v)", v.MediaFirst, fault)
		case v.MediaLast.Sub(fault) < after:
			bad("media stopped %v after the fault (last echo %v), expected at least %v", v.MediaLast.Sub(fault).Round(time.Millisecond), v.MediaLast, after)
		}
	}
	return problems
}
