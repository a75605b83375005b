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

	"github.com/falab/falab/api"
	"github.com/falab/falab/failover"
)

// Status returns the unit's status.
func (u *Unit) Status() api.Status {
	u.statusMu.Lock()
	st := u.status
	hist := make([]api.TransitionInfo, len(u.history))
	for i, t := range u.history {
		hist[i] = api.TransitionInfo{At: t.At, From: t.From.String(), To: t.To.String(), Reason: t.Reason, Term: t.Term}
	}
	link := u.linkStatus
	u.statusMu.Unlock()
	s := api.Status{
		Unit: u.cfg.Name, Peer: u.cfg.Peer, Lab: u.cfg.Lab, Role: u.cfg.Role, PID: os.Getpid(),
		StartedAt: u.startedAt, State: st.State.String(), Active: st.State.IsActive(), Term: st.Term,
		Forwarding: st.State.IsActive() && !st.Suspended && u.fw.Forwarding(), ForwardingSince: st.ForwardingSince, At: time.Now(),
		LastReason: st.LastReason, LastChange: st.LastChange,
		MACMode: u.cfg.MACMode, HTTPReplication: u.cfg.HTTPReplication, Mode: map[bool]string{true: "transparent", false: "routed"}[u.fw.Transparent()],
		PeerKnown: st.Peer.Known, PeerLastHeard: st.Peer.LastHeard, PeerFailed: st.Peer.Failed,
		FailoverLinkUp: !st.Peer.LinkFailed, LinkReason: link.Reason,
		Hellos:       u.helloStats(st.Stats),
		HelloRejects: api.HelloRejects{FailoverLink: u.helloRejects.counts(), DataInterfaces: u.probes.rejects.counts()},
		Counts:       api.TableCounts{Conns: u.fw.ConnCount(), Xlates: u.fw.XlateCount(), ARP: len(u.fw.ARPEntries()), Bridge: u.fw.BridgeCount()},
		History:      hist,
	}
	s.Stateful, s.Local = u.replicationView()
	s.Module = u.moduleStats.get(func() *api.ModuleInfo { return u.moduleInfo(false) })
	if st.Peer.Known {
		s.PeerState = st.Peer.State.String()
	} else {
		s.PeerState = "unknown"
	}
	for _, m := range st.Interfaces {
		s.Monitored = append(s.Monitored, api.MonitoredStatus{Name: m.Name, Up: m.Up})
	}
	for _, m := range st.Peer.Interfaces {
		s.PeerMonitored = append(s.PeerMonitored, api.MonitoredStatus{Name: m.Name, Up: m.Up})
	}
	if snd := u.sender.Load(); snd != nil {
		s.Replication = replicationStats(snd.Stats(), u.tableName)
	} else if r := u.receiver.Load(); r != nil {
		s.Replication = replicationStats(r.Stats(), u.tableName)
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
		writeJSON(w, api.Page[api.Conn]{Total: total, Offset: off, Entries: convert(e, wireConn)})
	})
	mux.HandleFunc("GET /v1/xlates", func(w http.ResponseWriter, r *http.Request) {
		off, lim := paging(r)
		e, total := u.fw.Xlates(off, lim)
		writeJSON(w, api.Page[api.Xlate]{Total: total, Offset: off, Entries: convert(e, wireXlate)})
	})
	mux.HandleFunc("GET /v1/arp", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, convert(u.fw.ARPEntries(), wireARP)) })
	mux.HandleFunc("GET /v1/bridge", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, convert(u.fw.BridgeEntries(), wireBridge)) })
	mux.HandleFunc("GET /v1/routes", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, convert(u.fw.RoutesTable(), wireRoute)) })
	mux.HandleFunc("GET /v1/interfaces", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, u.Interfaces())
	})
	mux.HandleFunc("GET /v1/module", u.serveModule)
	mux.HandleFunc("GET /v1/uauth", u.serveUAuth)
	mux.HandleFunc("POST /v1/uauth/clear", u.serveClearUAuth)
	mux.HandleFunc("GET /v1/crypto", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, u.Crypto()) })
	mux.HandleFunc("GET /v1/voice", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, u.voiceView(time.Now())) })
	mux.HandleFunc("GET /v1/drops", func(w http.ResponseWriter, r *http.Request) {
		out := api.Drops{}
		for reason, n := range u.fw.Drops() {
			out[reason.String()] = n
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("GET /v1/gtp/pdp-contexts", func(w http.ResponseWriter, r *http.Request) {
		if u.gtp == nil {
			http.Error(w, "GTP is not inspected (the lab has no firewall.inspect.gtp)", http.StatusNotFound)
			return
		}
		writeJSON(w, wirePDPContexts(u.gtp.Listing(time.Now())))
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

func paging(r *http.Request) (offset, limit int) {
	offset, _ = strconv.Atoi(r.URL.Query().Get("offset"))
	limit, _ = strconv.Atoi(r.URL.Query().Get("limit"))
	if offset < 0 {
		offset = 0
	}
	if limit <= 0 || limit > api.MaxPage {
		limit = api.MaxPage
	}
	return offset, limit
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// helloStats is the failover link's hello counts, and the delay of the
// hellos read.
func (u *Unit) helloStats(st failover.Stats) api.HelloStats {
	h := api.HelloStats{Sent: st.HellosSent, Received: st.HellosReceived, Missed: st.HellosMissed}
	h.DelaySamples, h.DelayP50, h.DelayP99, h.DelayMax = u.helloDelay.Percentiles()
	return h
}
