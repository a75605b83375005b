package render

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/falab/falab/api"
)

// ShowFailover writes `show failover` as the unit this answers it: "This
// host" is that unit, "Other host" its peer, as on an ASA. A unit that did
// not answer has PID 0 and its State says why. now is the clock the hello
// ages are measured against (a fixed one in tests).
func ShowFailover(w io.Writer, lab string, this, other api.Status, now time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Failover On (lab %s)\n", lab)
	failoverHost(&b, "This host", this, now)
	failoverHost(&b, "Other host", other, now)
	if this.PID != 0 {
		b.WriteString("\n")
		if err := FailoverStats(&b, this, other); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// failoverHost writes one unit's block of `show failover`.
func failoverHost(b *strings.Builder, label string, s api.Status, now time.Time) {
	if s.PID == 0 {
		fmt.Fprintf(b, "\n%s: %s - %s\n", label, s.Unit, s.State)
		return
	}
	fmt.Fprintf(b, "\n%s: %s - %s  (%s, pid %d, term %d)\n", label, s.Unit, s.State, s.Role, s.PID, s.Term)
	fmt.Fprintf(b, "  Last change: %s  %s\n", s.LastChange.Format("15:04:05.000"), s.LastReason)
	if s.Active && !s.Forwarding {
		b.WriteString("  Forwarding SUSPENDED: resumed after a freeze, asking the peer its role first\n")
	}
	peerState := s.PeerState
	if s.PeerFailed {
		peerState = "Failed (last reported " + s.PeerState + ")"
	}
	fmt.Fprintf(b, "  Peer %s: %s, last hello %s ago\n", s.Peer, peerState, ago(now, s.PeerLastHeard))
	link := "up"
	if !s.FailoverLinkUp {
		link = "FAILED " + s.LinkReason
	}
	fmt.Fprintf(b, "  Failover link: %s; hellos sent %d, received %d, missed %d\n", link, s.Hellos.Sent, s.Hellos.Received, s.Hellos.Missed)
	if h := s.Hellos; h.DelaySamples > 0 {
		fmt.Fprintf(b, "  Hello delay, sent to read: p50 %v p99 %v max %v (%d hellos)\n", h.DelayP50, h.DelayP99, h.DelayMax, h.DelaySamples)
	}
	hr := s.HelloRejects
	fmt.Fprintf(b, "  Hello rejects: failover link %s; data interfaces %s\n", rejectCounts(hr.FailoverLink, false), rejectCounts(hr.DataInterfaces, true))
	fmt.Fprintf(b, "  MAC mode %s, HTTP replication %v\n", s.MACMode, s.HTTPReplication)
	for _, m := range s.Monitored {
		state := "Normal (Monitored)"
		if !m.Up {
			state = "Link Down (Monitored)"
		}
		fmt.Fprintf(b, "  Interface %s: %s\n", m.Name, state)
	}
	fmt.Fprintf(b, "  Tables: %d conns, %d xlates, %d arp, %d bridge (%s mode)\n", s.Counts.Conns, s.Counts.Xlates, s.Counts.ARP, s.Counts.Bridge, s.Mode)
	moduleLine(b, s.Module)
	replicationLines(b, s.Replication)
}

// replicationLines writes the stateful failover counters of one unit.
func replicationLines(b *strings.Builder, r api.ReplicationStats) {
	fmt.Fprintf(b, "  Stateful failover (%s): connected %v, synced %v, bulk syncs %d, resyncs %d, sessions %d, errors %d\n",
		orDash(r.Role), r.Connected, r.Synced, r.BulkSyncs, r.Resyncs, r.Sessions, r.SessionErrors)
	if alarm := SessionAlarm(r); alarm != "" {
		fmt.Fprintf(b, "    ALARM: %s\n", alarm)
	}
	fmt.Fprintf(b, "    queue %d (high %d), record seq %d, acked %d, frames %d/%d sent/received\n", r.QueueDepth, r.QueueHigh, r.RecordSeq, r.AckedSeq, r.FramesSent, r.FramesReceived)
	for _, t := range r.Tables {
		fmt.Fprintf(b, "    %-6s sent %d received %d applied %d errors %d", t.Table, t.Sent, t.Received, t.Applied, t.Errors)
		if t.Coalesced > 0 {
			// Said only where it happened: conns opened and closed
			// within one batch, or changed twice in it.
			fmt.Fprintf(b, " coalesced %d", t.Coalesced)
		}
		b.WriteByte('\n')
	}
	if r.LagSamples > 0 {
		fmt.Fprintf(b, "    replication lag p50 %v p99 %v max %v (%d samples)\n", r.LagP50, r.LagP99, r.LagMax, r.LagSamples)
	}
}

// SessionAlarm says when the state session has not held: in steady state a
// unit has exactly one session and no errors, and every extra session was a
// bulk sync, a window in which the standby's tables were partial.
func SessionAlarm(r api.ReplicationStats) string {
	var parts []string
	if r.Sessions > 1 || r.SessionErrors > 0 {
		parts = append(parts, fmt.Sprintf("state session churn: %d sessions, %d ended with an error (last: %s)", r.Sessions, r.SessionErrors, orDash(r.LastError)))
	}
	if r.Overflows > 0 {
		parts = append(parts, fmt.Sprintf("%d queue overflows (each a resync)", r.Overflows))
	}
	if r.Refused > 0 {
		parts = append(parts, fmt.Sprintf("%d connections to the state port refused", r.Refused))
	}
	return strings.Join(parts, "; ")
}

// rejectCounts says a unit's refused hellos by reason; port checks are the
// peer's liveness checks, on the failover link only, and the rate limit
// applies to the data interfaces only.
func rejectCounts(c api.RejectCounts, iface bool) string {
	s := fmt.Sprintf("bad auth %d, stale %d, replay %d, ", c.BadAuth, c.Stale, c.Replay)
	if iface {
		s += fmt.Sprintf("rate-limited %d, ", c.RateLimited)
	} else {
		s += fmt.Sprintf("port check %d, ", c.PortCheck)
	}
	return s + fmt.Sprintf("malformed %d", c.Malformed)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Millisecond).String()
}
