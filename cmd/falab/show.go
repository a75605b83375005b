package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/render"
)

var showWhat = []string{"conn", "xlate", "arp", "mac-address-table", "route", "interface", "asp-drop", "failover"}

// cmdShow prints a unit's tables the way an ASA's show commands do.
func cmdShow(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	labName := fs.String("lab", "", "the lab (default: the only running lab)")
	unitName := fs.String("unit", "", "the unit (default: the active one)")
	limit := fs.Int("limit", 1000, "at most this many entries of a large table (conn, xlate)")
	offset := fs.Int("offset", 0, "skip this many entries first")
	fs.BoolVar(&e.json, "json", false, "print as JSON")
	pos, _, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"expected one of: " + strings.Join(showWhat, ", ")}
	}
	what := pos[0]
	name, err := lab.Pick(*labName)
	if err != nil {
		return err
	}
	if what == "failover" {
		return showFailover(ctx, e, name)
	}
	u := *unitName
	if u == "" {
		if u, err = lab.ActiveUnit(ctx, name); err != nil {
			return err
		}
	}
	c, err := lab.UnitClient(name, u)
	if err != nil {
		return err
	}
	w := e.stdout
	switch what {
	case "conn":
		p, err := c.Conns(ctx, *offset, *limit)
		if err != nil {
			return err
		}
		if e.json {
			return printJSON(w, p)
		}
		fmt.Fprintf(w, "%s: %d in use\n", u, p.Total)
		if err := render.Conns.Table(p.Entries).Text(w); err != nil {
			return err
		}
		more(w, p.Total, *offset, len(p.Entries))
	case "xlate":
		p, err := c.Xlates(ctx, *offset, *limit)
		if err != nil {
			return err
		}
		if e.json {
			return printJSON(w, p)
		}
		fmt.Fprintf(w, "%s: %d in use\n", u, p.Total)
		if err := render.Xlates.Table(p.Entries).Text(w); err != nil {
			return err
		}
		more(w, p.Total, *offset, len(p.Entries))
	default:
		return showTable(ctx, e, c, u, what)
	}
	return nil
}

// showTable prints one of a unit's small tables (fetched whole).
func showTable(ctx context.Context, e *env, c *api.Client, u, what string) error {
	var (
		v   any
		t   render.Table
		err error
	)
	w := e.stdout
	switch what {
	case "arp":
		a, err2 := c.ARP(ctx)
		v, t, err = a, render.ARP.Table(a), err2
	case "mac-address-table":
		bt, err2 := c.Bridge(ctx)
		v, t, err = bt, render.Bridge.Table(bt), err2
		if err == nil && !e.json {
			fmt.Fprintf(w, "%s: %d entries (transparent mode bridge table; replicated to the standby)\n", u, len(bt))
		}
	case "route":
		rs, err2 := c.Routes(ctx)
		v, t, err = rs, render.Routes.Table(rs), err2
		if err == nil && !e.json {
			fmt.Fprintf(w, "%s: routes are not replicated: each unit builds its own\n", u)
		}
	case "interface":
		is, err2 := c.Interfaces(ctx)
		v, t, err = is, render.Interfaces.Table(is), err2
	case "asp-drop":
		d, err2 := c.Drops(ctx)
		v, t, err = d, render.Drops.Table(render.DropList(d)), err2
		if err == nil && !e.json {
			fmt.Fprintf(w, "%s: frame drops by reason\n", u)
		}
	default:
		return usageError{fmt.Sprintf("unknown table %q (expected one of: %s)", what, strings.Join(showWhat, ", "))}
	}
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(w, v)
	}
	return t.Text(w)
}

func more(w io.Writer, total, offset, n int) {
	if offset+n < total {
		fmt.Fprintf(w, "... %d more (use --offset %d)\n", total-offset-n, offset+n)
	}
}

// statusWait bounds how long `show failover` waits for a unit: a frozen
// unit never answers, and the operator must not wait with it.
const statusWait = time.Second

// unitStatuses asks every unit at once, each within statusWait. A unit that
// does not answer is named, with why when the process table says (frozen,
// not running).
func unitStatuses(ctx context.Context, labName string, units []string) ([]api.Status, []string) {
	sts := make([]api.Status, len(units))
	errs := make([]string, len(units))
	st, _ := lab.ReadState(labName)
	var wg sync.WaitGroup
	for i, n := range units {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, statusWait)
			defer cancel()
			c, err := lab.UnitClient(labName, n)
			if err == nil {
				sts[i], err = c.Status(sctx)
			}
			if err == nil {
				return
			}
			why := "not running"
			if st != nil {
				if p, ok := st.Units[n]; ok && p.Stopped() {
					why = fmt.Sprintf("not answering: process %d is stopped (frozen, SIGSTOP)", p.PID)
				} else if ok && p.Alive() {
					why = fmt.Sprintf("not answering within %v (process %d runs)", statusWait, p.PID)
				}
			}
			sts[i] = api.Status{Unit: n, State: why}
			errs[i] = fmt.Sprintf("%s: %s (%v)", n, why, err)
		})
	}
	wg.Wait()
	return sts, slices.DeleteFunc(errs, func(s string) bool { return s == "" })
}

// showFailover prints both units' view, like `show failover`.
func showFailover(ctx context.Context, e *env, name string) error {
	units, err := lab.UnitNames(name)
	if err != nil {
		return err
	}
	sts, errs := unitStatuses(ctx, name, units)
	if e.json {
		return printJSON(e.stdout, sts)
	}
	w := e.stdout
	fmt.Fprintf(w, "Failover On (lab %s)\n", name)
	for _, s := range sts {
		if s.PID == 0 {
			fmt.Fprintf(w, "\n%s: %s\n", s.Unit, s.State)
			continue
		}
		fmt.Fprintf(w, "\nThis host: %s - %s  (%s, pid %d, term %d)\n", s.Unit, s.State, s.Role, s.PID, s.Term)
		fmt.Fprintf(w, "  Last change: %s  %s\n", s.LastChange.Format("15:04:05.000"), s.LastReason)
		if s.Active && !s.Forwarding {
			fmt.Fprintf(w, "  Forwarding SUSPENDED: resumed after a freeze, asking the peer its role first\n")
		}
		peerState := s.PeerState
		if s.PeerFailed {
			peerState = "Failed (last reported " + s.PeerState + ")"
		}
		fmt.Fprintf(w, "  Peer %s: %s, last hello %s ago\n", s.Peer, peerState, ago(s.PeerLastHeard))
		link := "up"
		if !s.FailoverLinkUp {
			link = "FAILED " + s.LinkReason
		}
		fmt.Fprintf(w, "  Failover link: %s; hellos sent %d, received %d, missed %d\n", link, s.Hellos.Sent, s.Hellos.Received, s.Hellos.Missed)
		hr := s.HelloRejects
		fmt.Fprintf(w, "  Hello rejects: failover link %s; data interfaces %s\n", rejectCounts(hr.FailoverLink, false), rejectCounts(hr.DataInterfaces, true))
		fmt.Fprintf(w, "  MAC mode %s, HTTP replication %v\n", s.MACMode, s.HTTPReplication)
		for _, m := range s.Monitored {
			state := "Normal (Monitored)"
			if !m.Up {
				state = "Link Down (Monitored)"
			}
			fmt.Fprintf(w, "  Interface %s: %s\n", m.Name, state)
		}
		fmt.Fprintf(w, "  Tables: %d conns, %d xlates, %d arp, %d bridge (%s mode)\n", s.Counts.Conns, s.Counts.Xlates, s.Counts.ARP, s.Counts.Bridge, s.Mode)
		r := s.Replication
		fmt.Fprintf(w, "  Stateful failover (%s): connected %v, synced %v, bulk syncs %d, resyncs %d, sessions %d, errors %d\n",
			orDash(r.Role), r.Connected, r.Synced, r.BulkSyncs, r.Resyncs, r.Sessions, r.SessionErrors)
		if alarm := sessionAlarm(r); alarm != "" {
			fmt.Fprintf(w, "    ALARM: %s\n", alarm)
		}
		fmt.Fprintf(w, "    queue %d (high %d), record seq %d, acked %d, frames %d/%d sent/received\n", r.QueueDepth, r.QueueHigh, r.RecordSeq, r.AckedSeq, r.FramesSent, r.FramesReceived)
		for _, t := range r.Tables {
			fmt.Fprintf(w, "    %-6s sent %d received %d applied %d errors %d\n", t.Table, t.Sent, t.Received, t.Applied, t.Errors)
		}
		if r.LagSamples > 0 {
			fmt.Fprintf(w, "    replication lag p50 %v p99 %v max %v (%d samples)\n", r.LagP50, r.LagP99, r.LagMax, r.LagSamples)
		}
	}
	for _, x := range errs {
		fmt.Fprintln(e.stderr, x)
	}
	return nil
}

// sessionAlarm says when the state session has not held: in steady state a
// unit has exactly one session and no errors, and every extra session was a
// bulk sync, a window in which the standby's tables were partial.
func sessionAlarm(r api.ReplicationStats) string {
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

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Millisecond).String()
}

// cmdFailover is `failover active` / `no failover active` / `failover reset`.
func cmdFailover(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	labName := fs.String("lab", "", "the lab (default: the only running lab)")
	to := fs.String("to", "", "make this unit active (default: the standby)")
	fs.BoolVar(&e.json, "json", false, "print as JSON")
	pos, _, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	name, err := lab.Pick(*labName)
	if err != nil {
		return err
	}
	units, err := lab.UnitNames(name)
	if err != nil {
		return err
	}
	if len(pos) == 1 && pos[0] == "reset" {
		var results []string
		for _, n := range units {
			c, _ := lab.UnitClient(name, n)
			r, err := c.Failover(ctx, "reset")
			if err != nil {
				r = err.Error()
			}
			results = append(results, n+": "+r)
		}
		fmt.Fprintln(e.stdout, strings.Join(results, "\n"))
		return nil
	}
	if len(pos) != 0 {
		return usageError{"expected no argument, or reset"}
	}
	target := *to
	if target == "" {
		active, err := lab.ActiveUnit(ctx, name)
		if err != nil {
			return err
		}
		target = units[0]
		if active == units[0] {
			target = units[1]
		}
	}
	c, err := lab.UnitClient(name, target)
	if err != nil {
		return err
	}
	start := time.Now()
	r, err := c.Failover(ctx, "active")
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(e.stdout, map[string]any{"unit": target, "result": r, "took_ms": time.Since(start).Milliseconds()})
	}
	fmt.Fprintf(e.stdout, "failover active on %s: %s\n", target, r)
	return nil
}
