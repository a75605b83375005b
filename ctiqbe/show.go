package ctiqbe

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// ModelLabel heads every rendering of the engine's tables.
const ModelLabel = "CTIQBE: a lab model of CTIQBE's behaviour, not wire-compatible; its session table is not replicated"

// SessionInfo is one session of the table, for display.
type SessionInfo struct {
	Conn      ConnKey
	Device    string
	DeviceID  uint32
	State     int    // 0 registering, 1 registered, 2 in a call (the model's numbering)
	Heartbeat uint16 // seconds, from the RegisterAck
	Calls     []CallInfo
}

// CallInfo is one call of a session.
type CallInfo struct {
	CallID                uint32
	Phone, Remote         [4]byte
	PhonePort, RemotePort uint16
	Ending                bool // hang-up seen, ack not yet
}

// Sessions returns the session table, ordered by connection.
func (e *Engine) Sessions() []SessionInfo {
	e.mu.Lock()
	var out []SessionInfo
	for k, c := range e.conns {
		ss := &c.sess
		if ss.state == sessNone {
			continue
		}
		si := SessionInfo{Conn: k, Device: ss.device, DeviceID: ss.deviceID, Heartbeat: ss.heartbeat}
		switch {
		case ss.state == sessRegistering:
			si.State = 0
		case ss.ncalls > 0:
			si.State = 2
		default:
			si.State = 1
		}
		for _, cl := range ss.calls[:ss.ncalls] {
			si.Calls = append(si.Calls, CallInfo{CallID: cl.id, Phone: cl.phone, Remote: cl.remote,
				PhonePort: cl.phonePort, RemotePort: cl.remotePort, Ending: cl.ending})
		}
		out = append(out, si)
	}
	e.mu.Unlock()
	slices.SortFunc(out, func(a, b SessionInfo) int { return compareConn(a.Conn, b.Conn) })
	return out
}

func compareConn(a, b ConnKey) int {
	if c := bytes.Compare(a.Phone[:], b.Phone[:]); c != 0 {
		return c
	}
	if a.PhonePort != b.PhonePort {
		return int(a.PhonePort) - int(b.PhonePort)
	}
	if c := bytes.Compare(a.Manager[:], b.Manager[:]); c != 0 {
		return c
	}
	return int(a.ManagerPort) - int(b.ManagerPort)
}

const (
	showRule  = "---------------------------------------------------------------"
	showRule2 = "----------------------------------------------"
)

// WriteShow writes `show ctiqbe` in the ASA's layout (Cisco Security
// Appliance Command Line Configuration Guide, OL-12172-03, chapter 25,
// "Verifying and Monitoring CTIQBE Inspection", whose sample shows
// "Total:", a LOCAL / FOREIGN / STATE / HEARTBEAT line
// per session, then a MEDIA block per call), headed by [ModelLabel]. LOCAL
// is the CTI device (the phone), FOREIGN the CallManager. As in the ASA's
// sample, a MEDIA block's Foreign line is the CTI device's own RTP-RTCP
// ports and its Local line the other party's. The "RTP/RTCP: PAT xlates"
// line is left out: an ASA prints it only for a PATed device, and the
// engine reads real addresses. STATE is the model's own numbering, given
// in the footer.
func WriteShow(w io.Writer, sessions []SessionInfo, c Counters) error {
	var b strings.Builder
	fmt.Fprintf(&b, "! %s\n", ModelLabel)
	fmt.Fprintf(&b, "Total: %d\n", len(sessions))
	fmt.Fprintf(&b, "%-5s %-21s %-21s %-5s %s\n", "", "LOCAL", "FOREIGN", "STATE", "HEARTBEAT")
	fmt.Fprintln(&b, showRule)
	for i, s := range sessions {
		fmt.Fprintf(&b, "%-5d %-21s %-21s %-5d %d\n", i+1,
			hostPort(s.Conn.Phone, s.Conn.PhonePort), hostPort(s.Conn.Manager, s.Conn.ManagerPort), s.State, s.Heartbeat)
		fmt.Fprintln(&b, showRule2)
		for _, cl := range s.Calls {
			ending := ""
			if cl.Ending {
				ending = " (hang-up sent)"
			}
			fmt.Fprintf(&b, "MEDIA: Device ID %d   Call ID %d%s\n", s.DeviceID, cl.CallID, ending)
			fmt.Fprintf(&b, "  Foreign %-15s (%d - %d)\n", netip.AddrFrom4(cl.Phone), cl.PhonePort, cl.PhonePort+1)
			fmt.Fprintf(&b, "  Local   %-15s (%d - %d)\n", netip.AddrFrom4(cl.Remote), cl.RemotePort, cl.RemotePort+1)
			fmt.Fprintln(&b, showRule2)
		}
	}
	fmt.Fprintf(&b, "! STATE: 0 registering, 1 registered, 2 in a call. Drops: ctiqbe-no-session %d, ctiqbe-malformed %d, ctiqbe-out-of-order %d, ctiqbe-table-full %d\n",
		c.NoSession, c.Malformed, c.OutOfOrder, c.TableFull)
	_, err := io.WriteString(w, b.String())
	return err
}

// Show returns the engine's `show ctiqbe` text.
func (e *Engine) Show() string {
	var b strings.Builder
	_ = WriteShow(&b, e.Sessions(), e.Counters())
	return b.String()
}

func hostPort(a [4]byte, port uint16) string {
	return fmt.Sprintf("%s/%d", netip.AddrFrom4(a), port)
}
