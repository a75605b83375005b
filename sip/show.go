package sip

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// SessionInfo is one session as listed: the replicated record plus this
// unit's idle time.
type SessionInfo struct {
	Session
	Idle time.Duration
}

// Sessions returns the sessions at now, sorted by Call-ID.
func (in *Inspector) Sessions(now time.Time) []SessionInfo {
	t := now.UnixNano()
	in.mu.Lock()
	defer in.mu.Unlock()
	l := make([]SessionInfo, 0, len(in.sessions))
	for _, s := range in.sessions {
		si := SessionInfo{Session: s.rec}
		if t > s.lastSeen {
			si.Idle = time.Duration(t - s.lastSeen)
		}
		l = append(l, si)
	}
	slices.SortFunc(l, func(a, b SessionInfo) int { return strings.Compare(a.CallID, b.CallID) })
	return l
}

// ASAState returns the state as "show sip" words it. The ASA's sample
// shows "Call init" (setup not complete: no final response yet) and
// "Active"; for the BYE and after it, which the sample does not show,
// falab prints "Disconnecting" and "Ended".
func (s State) ASAState() string {
	switch s {
	case StateInviteSent, StateEarly:
		return "Call init"
	case StateConfirmed:
		return "Active"
	case StateTerminating:
		return "Disconnecting"
	case StateEnded:
		return "Ended"
	}
	return s.String()
}

// hms formats a duration as the ASA does: "0:00:06".
func hms(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

// WriteSIP prints sessions in the format of the ASA's "show sip" (sample
// output in the Cisco ASA Series Firewall CLI Configuration Guide,
// "Inspection for Voice and Video Protocols", "Verifying and Monitoring
// SIP Inspection"):
//
//	Total: 2
//	call-id c3943000-960ca-2e43-228f@10.130.56.44
//	   state Call init, idle 0:00:01
//
// The manual's text does not keep the indentation of the state line;
// falab indents it by three spaces.
func WriteSIP(w io.Writer, sessions []SessionInfo) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Total: %d\n", len(sessions))
	for _, s := range sessions {
		fmt.Fprintf(&b, "call-id %s\n   state %s, idle %s\n", s.CallID, s.State.ASAState(), hms(s.Idle))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteServicePolicy prints the counters in the shape of the ASA's "show
// service-policy inspect sip" line ("Inspect: sip , packet N, lock fail
// 0, drop N, reset-drop 0"; lock fail and reset-drop have no meaning here
// and print 0). The search for a Cisco sample of this command's output
// found none, so the line follows the ASA's general "show service-policy"
// form; the indented lines after it are falab's own: drops by reason and
// the tables' sizes, as "show failover" names them.
func WriteServicePolicy(w io.Writer, st Stats, tables [numTables]int) error {
	var b strings.Builder
	var drops uint64
	for _, d := range st.Drops {
		drops += d
	}
	fmt.Fprintf(&b, "      Inspect: sip , packet %d, lock fail 0, drop %d, reset-drop 0\n", st.Packets, drops)
	fmt.Fprintf(&b, "        requests %d, responses %d, sessions created %d, pinholes opened %d, sessions expired %d\n",
		st.Requests, st.Responses, st.Sessions, st.Pinholes, st.Expired)
	for _, r := range DropReasons {
		fmt.Fprintf(&b, "        %s %d\n", r, st.Drops[r])
	}
	for i, n := range tables {
		fmt.Fprintf(&b, "        %s %d\n", Table(i+1), n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
