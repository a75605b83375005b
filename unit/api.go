package unit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/falab/falab/failover"
	"github.com/falab/falab/firewall"
	"github.com/falab/falab/replicate"
)

// Status is a unit's answer to `show failover`: who it is, its role and
// state, its peer as it sees it, and the replication counters.
type Status struct {
	Unit      string    `json:"unit"`
	Peer      string    `json:"peer"`
	Lab       string    `json:"lab"`
	Role      string    `json:"role"` // primary or secondary
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	State     string    `json:"state"` // Active, Standby Ready, Bulk Sync, ...
	Active    bool      `json:"active"`
	// Forwarding is false for an active unit that resumed after a freeze
	// and has not yet settled its role with the peer (its data plane's
	// lease lapsed); always false on a standby.
	Forwarding bool `json:"forwarding"`
	// ForwardingSince is when forwarding last began; At is when this
	// status was taken. Together they bound an interval in which the unit
	// surely forwarded (the chaos sampler compares two units' intervals).
	ForwardingSince time.Time `json:"forwarding_since,omitzero"`
	At              time.Time `json:"at"`
	Term            uint64    `json:"term"`
	LastReason      string    `json:"last_reason"`
	LastChange      time.Time `json:"last_change"`
	MACMode         string    `json:"mac_mode"`
	Mode            string    `json:"mode"` // routed or transparent
	HTTPReplication bool      `json:"http_replication"`

	PeerState      string    `json:"peer_state"`
	PeerKnown      bool      `json:"peer_known"`
	PeerLastHeard  time.Time `json:"peer_last_heard"`
	PeerFailed     bool      `json:"peer_failed"`
	FailoverLinkUp bool      `json:"failover_link_up"`
	LinkReason     string    `json:"failover_link_reason,omitempty"`

	Monitored     []MonitoredStatus `json:"monitored"`
	PeerMonitored []MonitoredStatus `json:"peer_monitored"`

	Hellos       HelloStats      `json:"hellos"`
	HelloRejects HelloRejects    `json:"hello_rejects"`
	Counts       TableCounts     `json:"counts"`
	Replication  replicate.Stats `json:"replication"`

	History []TransitionInfo `json:"history"`
}

// MonitoredStatus is one monitored interface's link.
type MonitoredStatus struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
}

// HelloStats counts the failover link's hellos.
type HelloStats struct {
	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
	Missed   uint64 `json:"missed"`
}

// HelloRejects counts the hellos refused on the failover link and the
// interface hellos refused on the data interfaces, by reason.
type HelloRejects struct {
	FailoverLink   RejectCounts `json:"failover_link"`
	DataInterfaces RejectCounts `json:"data_interfaces"`
}

// RejectCounts counts refused messages by reason. PortCheck is the peer's
// own datagram asking whether this unit's hello port is open (no failure);
// RateLimited applies to interface hellos only.
type RejectCounts struct {
	BadAuth     uint64 `json:"bad_auth"`
	Stale       uint64 `json:"stale"`
	Replay      uint64 `json:"replay"`
	PortCheck   uint64 `json:"port_check"`
	RateLimited uint64 `json:"rate_limited"`
	Malformed   uint64 `json:"malformed"`
}

// TableCounts are the sizes of the unit's tables.
type TableCounts struct {
	Conns  int `json:"conns"`
	Xlates int `json:"xlates"`
	ARP    int `json:"arp"`
	Bridge int `json:"bridge"`
}

// TransitionInfo is one state change, for the history.
type TransitionInfo struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
	Term   uint64    `json:"term"`
}

// Page is one page of a large table.
type Page[T any] struct {
	Total   int `json:"total"`
	Offset  int `json:"offset"`
	Entries []T `json:"entries"`
}

// Status returns the unit's status.
func (u *Unit) Status() Status {
	u.statusMu.Lock()
	st := u.status
	hist := make([]TransitionInfo, len(u.history))
	for i, t := range u.history {
		hist[i] = TransitionInfo{At: t.At, From: t.From.String(), To: t.To.String(), Reason: t.Reason, Term: t.Term}
	}
	link := u.linkStatus
	u.statusMu.Unlock()
	s := Status{
		Unit: u.cfg.Name, Peer: u.cfg.Peer, Lab: u.cfg.Lab, Role: u.cfg.Role, PID: os.Getpid(),
		StartedAt: u.startedAt, State: st.State.String(), Active: st.State.IsActive(), Term: st.Term,
		Forwarding: st.State.IsActive() && !st.Suspended && u.fw.Forwarding(), ForwardingSince: st.ForwardingSince, At: time.Now(),
		LastReason: st.LastReason, LastChange: st.LastChange,
		MACMode: u.cfg.MACMode, HTTPReplication: u.cfg.HTTPReplication, Mode: map[bool]string{true: "transparent", false: "routed"}[u.fw.Transparent()],
		PeerKnown: st.Peer.Known, PeerLastHeard: st.Peer.LastHeard, PeerFailed: st.Peer.Failed,
		FailoverLinkUp: !st.Peer.LinkFailed, LinkReason: link.Reason,
		Hellos:       HelloStats{Sent: st.Stats.HellosSent, Received: st.Stats.HellosReceived, Missed: st.Stats.HellosMissed},
		HelloRejects: HelloRejects{FailoverLink: u.helloRejects.counts(), DataInterfaces: u.probes.rejects.counts()},
		Counts:       TableCounts{Conns: u.fw.ConnCount(), Xlates: u.fw.XlateCount(), ARP: len(u.fw.ARPEntries()), Bridge: u.fw.BridgeCount()},
		History:      hist,
	}
	if st.Peer.Known {
		s.PeerState = st.Peer.State.String()
	} else {
		s.PeerState = "unknown"
	}
	for _, m := range st.Interfaces {
		s.Monitored = append(s.Monitored, MonitoredStatus{Name: m.Name, Up: m.Up})
	}
	for _, m := range st.Peer.Interfaces {
		s.PeerMonitored = append(s.PeerMonitored, MonitoredStatus{Name: m.Name, Up: m.Up})
	}
	if snd := u.sender.Load(); snd != nil {
		s.Replication = snd.Stats()
	} else if r := u.receiver.Load(); r != nil {
		s.Replication = r.Stats()
	}
	return s
}

// serveAPI listens on the unit's Unix socket (mode 0600: only root may
// command a unit) and serves the API until the returned listener closes.
func (u *Unit) serveAPI() (*http.Server, error) {
	_ = os.Remove(u.cfg.Socket) // a stale socket of a crashed unit
	ln, err := net.Listen("unix", u.cfg.Socket)
	if err != nil {
		return nil, fmt.Errorf("API socket: %w", err)
	}
	if err := os.Chmod(u.cfg.Socket, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, u.Status()) })
	mux.HandleFunc("GET /v1/conns", func(w http.ResponseWriter, r *http.Request) {
		off, lim := paging(r)
		e, total := u.fw.Conns(off, lim)
		writeJSON(w, Page[firewall.ConnInfo]{Total: total, Offset: off, Entries: nonNil(e)})
	})
	mux.HandleFunc("GET /v1/xlates", func(w http.ResponseWriter, r *http.Request) {
		off, lim := paging(r)
		e, total := u.fw.Xlates(off, lim)
		writeJSON(w, Page[firewall.XlateInfo]{Total: total, Offset: off, Entries: nonNil(e)})
	})
	mux.HandleFunc("GET /v1/arp", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, nonNil(u.fw.ARPEntries())) })
	mux.HandleFunc("GET /v1/bridge", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, nonNil(u.fw.BridgeEntries())) })
	mux.HandleFunc("GET /v1/routes", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, nonNil(u.fw.RoutesTable())) })
	mux.HandleFunc("GET /v1/interfaces", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, nonNil(u.fw.InterfaceStats())) })
	mux.HandleFunc("GET /v1/drops", func(w http.ResponseWriter, r *http.Request) {
		out := map[string]uint64{}
		for reason, n := range u.fw.Drops() {
			out[reason.String()] = n
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		since, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
		wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
		evs, wake := u.events.Since(since)
		if len(evs) == 0 && wait > 0 {
			select {
			case <-wake:
				evs, _ = u.events.Since(since)
			case <-time.After(min(wait, 30*time.Second)):
			case <-r.Context().Done():
				return
			}
		}
		writeJSON(w, nonNil(evs))
	})
	mux.HandleFunc("POST /v1/failover", func(w http.ResponseWriter, r *http.Request) {
		var ev failover.Event
		switch r.URL.Query().Get("do") {
		case "active":
			ev = failover.ManualFailover{MakeActive: true}
		case "standby":
			ev = failover.ManualFailover{MakeActive: false}
		case "reset":
			ev = failover.Reset{}
		default:
			http.Error(w, "do must be active, standby or reset", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		msg, err := u.Command(ctx, ev)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		u.events.Add("command", fmt.Sprintf("operator: failover %s: %s", r.URL.Query().Get("do"), msg))
		writeJSON(w, map[string]string{"result": msg})
	})
	// Requests live within Run: a long poll or a command in flight ends
	// when Run stops, and Shutdown then waits for its handler.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return u.ctx }}
	u.spawn(func(context.Context) {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			u.log.Error("API server", "err", err)
		}
	})
	return srv, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// maxPage bounds one page, so that a table of a million entries is served
// in pages and never in one answer.
const maxPage = 10000

func paging(r *http.Request) (offset, limit int) {
	offset, _ = strconv.Atoi(r.URL.Query().Get("offset"))
	limit, _ = strconv.Atoi(r.URL.Query().Get("limit"))
	if offset < 0 {
		offset = 0
	}
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	return offset, limit
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
