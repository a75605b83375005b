package scenario

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/labfile"
	"github.com/falab/falab/topo"
)

func describeExpect(e *ExpectSpec) string {
	var parts []string
	if e.Active != "" {
		parts = append(parts, "active "+e.Active)
	}
	if e.StandbyReady != "" {
		parts = append(parts, "standby_ready "+e.StandbyReady)
	}
	for _, u := range keys(e.State) {
		parts = append(parts, u+" "+e.State[u])
	}
	if e.FailoverLink != "" {
		parts = append(parts, "failover link "+e.FailoverLink)
	}
	if e.StandbyHas != "" {
		parts = append(parts, "standby has "+e.StandbyHas)
	}
	for _, n := range keys(e.Traffic) {
		parts = append(parts, "traffic "+n)
	}
	for _, a := range e.ARP {
		if a != nil {
			parts = append(parts, fmt.Sprintf("arp %s %s %s", a.Host, a.IP, a.MAC))
		}
	}
	for _, d := range keys(e.Drops) {
		parts = append(parts, "drops "+d+" "+e.Drops[d])
	}
	for _, d := range keys(e.Module) {
		parts = append(parts, "module "+d+" "+e.Module[d])
	}
	for _, d := range keys(e.UAuth) {
		parts = append(parts, "uauth on "+d+" "+e.UAuth[d])
	}
	if e.OneAnswer {
		parts = append(parts, "one unit answers ARP on the wire")
	}
	if e.SteadyReplication {
		parts = append(parts, "steady replication")
	}
	if e.MaxTerm > 0 {
		parts = append(parts, fmt.Sprintf("max term %d", e.MaxTerm))
	}
	for _, n := range keys(e.Run) {
		parts = append(parts, "run "+n)
	}
	for _, le := range e.Log {
		if le != nil {
			parts = append(parts, "log "+le.File+" /"+le.Pattern+"/")
		}
	}
	for _, n := range keys(e.Voice) {
		parts = append(parts, "voice "+n)
	}
	if e.Within != nil {
		parts = append(parts, "within "+e.Within.D(0).String())
	}
	return strings.Join(parts, ", ")
}

// expect checks e, retrying every pollEvery until within has passed.
func (r *runner) expect(ctx context.Context, e *ExpectSpec) (string, error) {
	within := e.Within.D(0)
	deadline := time.Now().Add(within)
	t0 := time.Now()
	for {
		r.checks = nil // the step reports its last evaluation
		problems := r.check(ctx, e)
		if len(problems) == 0 {
			if within > 0 {
				return "after " + time.Since(t0).Round(time.Millisecond).String(), nil
			}
			return "", nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: %w", strings.Join(problems, "; "), errScenarioFailed)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// check returns what does not hold now.
func (r *runner) check(ctx context.Context, e *ExpectSpec) []string {
	us := &unitStatuses{ctx: ctx, lab: r.name, status: map[string]*api.Status{}}
	problems := r.checkStates(us, e)
	switch e.StandbyHas {
	case "all-conns":
		if p := r.checkStandbyHas(ctx); p != "" {
			problems = append(problems, p)
		}
	case "bridge-table":
		if p := r.checkBridgeTable(ctx); p != "" {
			problems = append(problems, p)
		}
	case standbyHasPDP:
		if p := r.checkStandbyPDP(ctx); p != "" {
			problems = append(problems, p)
		}
	}
	if len(e.Traffic) > 0 {
		reps, err := lab.TrafficReports(r.name)
		if err != nil {
			problems = append(problems, err.Error())
		}
		for _, name := range keys(e.Traffic) {
			for _, c := range trafficChecks(name, e.Traffic[name], reps) {
				r.noteCheck(c)
				if !c.OK {
					problems = append(problems, "traffic "+name+": "+c.Detail)
				}
			}
		}
	}
	for _, a := range e.ARP {
		if a != nil {
			if p := r.checkARP(a); p != "" {
				problems = append(problems, p)
			}
		}
	}
	if e.SteadyReplication || e.MaxTerm > 0 {
		problems = append(problems, r.checkSteady(us, e)...)
	}
	if e.OneAnswer {
		answers, err := lab.GatewayAnswers(ctx, r.l)
		if err != nil {
			problems = append(problems, "one answer: "+err.Error())
		}
		problems = append(problems, lab.WireProblems(answers)...)
	}
	if len(e.Drops) > 0 {
		problems = append(problems, r.checkDrops(ctx, e)...)
	}
	if len(e.Module) > 0 {
		problems = append(problems, r.checkModule(ctx, e)...)
	}
	if len(e.UAuth) > 0 {
		problems = append(problems, r.checkUAuth(us, e)...)
	}
	if len(e.Run) > 0 || len(e.Log) > 0 {
		problems = append(problems, r.checkRuns(e)...)
	}
	if len(e.Voice) > 0 {
		problems = append(problems, r.checkVoices(e)...)
	}
	return problems
}

// unitStatuses asks each unit for its status at most once per check.
type unitStatuses struct {
	ctx    context.Context
	lab    string
	status map[string]*api.Status // nil: the unit did not answer
}

// stateOf returns unit u's failover state, "Down" when it does not answer.
func (us *unitStatuses) stateOf(u string) string {
	if s, ok := us.status[u]; ok {
		if s == nil {
			return "Down"
		}
		return s.State
	}
	c, err := lab.UnitClient(us.lab, u)
	if err != nil {
		us.status[u] = nil
		return "Down"
	}
	cctx, cancel := context.WithTimeout(us.ctx, 500*time.Millisecond)
	defer cancel()
	s, err := c.Status(cctx)
	if err != nil {
		us.status[u] = nil
		return "Down"
	}
	us.status[u] = &s
	return s.State
}

// get returns unit u's status, nil when it does not answer.
func (us *unitStatuses) get(u string) *api.Status {
	us.stateOf(u)
	return us.status[u]
}

// checkStates checks the units' failover states and the failover link.
func (r *runner) checkStates(us *unitStatuses, e *ExpectSpec) []string {
	var problems []string
	if e.Active != "" {
		s := us.stateOf(e.Active)
		r.stateCheck(e.Active, "Active", s)
		if s != "Active" {
			problems = append(problems, fmt.Sprintf("%s is %s, not Active", e.Active, s))
		}
	}
	if e.StandbyReady != "" {
		s := us.stateOf(e.StandbyReady)
		r.stateCheck(e.StandbyReady, "Standby Ready", s)
		if s != "Standby Ready" {
			problems = append(problems, fmt.Sprintf("%s is %s, not Standby Ready", e.StandbyReady, s))
		}
	}
	for _, u := range keys(e.State) {
		s := us.stateOf(u)
		r.stateCheck(u, e.State[u], s)
		if s != e.State[u] {
			problems = append(problems, fmt.Sprintf("%s is %s, not %s", u, s, e.State[u]))
		}
	}
	if e.FailoverLink != "" {
		var failed, seen []string
		for _, u := range r.l.Units {
			if s := us.get(u.Name); s != nil {
				seen = append(seen, u.Name)
				if !s.FailoverLinkUp {
					failed = append(failed, u.Name)
				}
			}
		}
		switch {
		case e.FailoverLink == "failed" && len(failed) == 0:
			problems = append(problems, fmt.Sprintf("no unit reports the failover link failed (asked %s)", strings.Join(seen, ", ")))
		case e.FailoverLink == "up" && len(failed) > 0:
			problems = append(problems, fmt.Sprintf("%s report the failover link failed", strings.Join(failed, ", ")))
		}
	}
	return problems
}

// checkSteady checks that no takeover raised a unit's term above max_term
// and, for steady_replication, that each state session held.
func (r *runner) checkSteady(us *unitStatuses, e *ExpectSpec) []string {
	var problems []string
	for _, u := range r.l.Units {
		s := us.get(u.Name)
		if s == nil {
			problems = append(problems, u.Name+" not answering")
			continue
		}
		if e.MaxTerm > 0 && s.Term > uint64(e.MaxTerm) {
			problems = append(problems, fmt.Sprintf("%s is in term %d, above %d: a takeover happened", u.Name, s.Term, e.MaxTerm))
		}
		if e.SteadyReplication {
			if p := steadyProblem(s.Replication); p != "" {
				problems = append(problems, u.Name+": "+p)
			}
		}
	}
	return problems
}

// checkDrops compares the active unit's drop counters with e.Drops.
func (r *runner) checkDrops(ctx context.Context, e *ExpectSpec) []string {
	var problems []string
	active, err := lab.ActiveUnit(ctx, r.name)
	var drops map[string]uint64
	if err == nil {
		var c *api.Client
		if c, err = lab.UnitClient(r.name, active); err == nil {
			drops, err = c.Drops(ctx)
		}
	}
	if err != nil {
		problems = append(problems, "drops: "+err.Error())
	}
	for _, reason := range keys(e.Drops) {
		op, n, _ := parseCount(e.Drops[reason])
		if got := drops[reason]; !compare(got, op, n) {
			problems = append(problems, fmt.Sprintf("drops %s on %s: %d, expected %s%d", reason, active, got, op, n))
		}
	}
	return problems
}

// steadyProblem says what shows a state session that did not hold, or "".
func steadyProblem(r api.ReplicationStats) string {
	var p []string
	if r.Sessions != 1 {
		p = append(p, fmt.Sprintf("%d state sessions", r.Sessions))
	}
	if r.SessionErrors != 0 {
		p = append(p, fmt.Sprintf("%d session errors (last: %s)", r.SessionErrors, r.LastError))
	}
	if r.Role == "receiver" && r.BulkSyncs != 1 {
		p = append(p, fmt.Sprintf("%d bulk syncs", r.BulkSyncs))
	}
	if r.Resyncs != 0 || r.Overflows != 0 || r.DigestMismatches != 0 {
		p = append(p, fmt.Sprintf("%d resyncs, %d overflows, %d digest mismatches", r.Resyncs, r.Overflows, r.DigestMismatches))
	}
	if !r.Synced {
		p = append(p, "not synced")
	}
	if len(p) == 0 {
		return ""
	}
	return "state session did not hold: " + strings.Join(p, ", ")
}

func compare(got uint64, op string, n uint64) bool {
	switch op {
	case ">":
		return got > n
	case ">=":
		return got >= n
	case "<":
		return got < n
	case "<=":
		return got <= n
	}
	return got == n
}

// checkStandbyHas compares the active's and the standby's connections: every
// replicated connection of the active must be on the standby. The tables
// are read one after the other, page by page, while the active may be
// expiring connections (hundreds a second after a burst of short ones
// waiting out TIME_WAIT) and the standby applying those deletes, so a
// page can skip an entry that moved. A connection counts as missing only
// if the active held it before and after the standby was read, in each of
// up to three rounds. Read once, a check 1.3 s after a minute of 200 short
// connections a second reported 53 "missing" that the active was sweeping.
func (r *runner) checkStandbyHas(ctx context.Context) string {
	active, err := lab.ActiveUnit(ctx, r.name)
	if err != nil {
		return err.Error()
	}
	standby := r.l.Peer(active).Name
	var missing map[string]bool
	total := 0
	for round := 0; round < 3 && (round == 0 || len(missing) > 0); round++ {
		a, err := r.connKeys(ctx, active)
		if err != nil {
			return err.Error()
		}
		s, err := r.connKeys(ctx, standby)
		if err != nil {
			return err.Error()
		}
		again, err := r.connKeys(ctx, active)
		if err != nil {
			return err.Error()
		}
		if round == 0 && len(a) == 0 {
			return "the active has no connections to compare"
		}
		now := map[string]bool{}
		for k := range a {
			if !s[k] && again[k] && (round == 0 || missing[k]) {
				now[k] = true
			}
		}
		missing, total = now, len(a)
	}
	if len(missing) > 0 {
		keys := slices.Sorted(maps.Keys(missing))
		return fmt.Sprintf("standby %s lacks %d of the active's %d connections (e.g. %s)", standby, len(keys), total, keys[0])
	}
	return ""
}

// connKeys returns the replicated connections of unit u, as
// "proto src dst" keys.
func (r *runner) connKeys(ctx context.Context, u string) (map[string]bool, error) {
	c, err := lab.UnitClient(r.name, u)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for off := 0; ; {
		p, err := c.Conns(ctx, off, 10000)
		if err != nil {
			return nil, err
		}
		for _, cn := range p.Entries {
			if cn.HTTP && !r.l.Failover.HTTPReplication {
				continue
			}
			out[cn.Protocol+" "+cn.OrigSrc+" "+cn.OrigDst] = true
		}
		off += len(p.Entries)
		if len(p.Entries) == 0 || off >= p.Total {
			return out, nil
		}
	}
}

// checkBridgeTable compares the active's and the standby's bridge tables.
func (r *runner) checkBridgeTable(ctx context.Context) string {
	active, err := lab.ActiveUnit(ctx, r.name)
	if err != nil {
		return err.Error()
	}
	standby := r.l.Peer(active).Name
	table := func(u string) (map[string]string, error) {
		c, err := lab.UnitClient(r.name, u)
		if err != nil {
			return nil, err
		}
		bt, err := c.Bridge(ctx)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, b := range bt {
			out[b.MAC] = b.Interface
		}
		return out, nil
	}
	a, err := table(active)
	if err != nil {
		return err.Error()
	}
	s, err := table(standby)
	if err != nil {
		return err.Error()
	}
	if len(a) == 0 {
		return "the active's bridge table is empty"
	}
	for mac, iface := range a {
		if s[mac] != iface {
			return fmt.Sprintf("standby %s has %s on %q, the active on %q (%d vs %d entries)", standby, mac, s[mac], iface, len(s), len(a))
		}
	}
	if len(s) != len(a) {
		return fmt.Sprintf("standby %s has %d bridge entries, the active %d", standby, len(s), len(a))
	}
	return ""
}

func (r *runner) checkARP(a *ARPExpect) string {
	ip := net.ParseIP(a.IP).To4()
	ns, err := topo.Neighbors(r.l.Namespace(a.Host))
	if err != nil {
		return err.Error()
	}
	find := func(list []topo.Neighbor) string {
		for _, n := range list {
			if n.IP == netipFrom(ip) && n.MAC != nil {
				return n.MAC.String()
			}
		}
		return ""
	}
	got := find(ns)
	if got == "" {
		return fmt.Sprintf("%s has no ARP entry for %s", a.Host, a.IP)
	}
	var want string
	switch a.MAC {
	case "unchanged":
		want = find(r.lastARP[a.Host])
		if want == "" {
			return fmt.Sprintf("%s had no ARP entry for %s before the last fault to compare with", a.Host, a.IP)
		}
	case "virtual":
		fi := r.ifaceFor(ip)
		if fi == nil {
			return fmt.Sprintf("%s is on no firewall interface", a.IP)
		}
		want = fi.VirtualMAC.String()
	default:
		if u, ok := r.l.Unit(a.MAC); ok {
			fi := r.ifaceFor(ip)
			if fi == nil {
				return fmt.Sprintf("%s is on no firewall interface", a.IP)
			}
			want = u.MACs[fi.Name].String()
		} else {
			want = strings.ToLower(a.MAC)
		}
	}
	if got != want {
		return fmt.Sprintf("%s's ARP entry for %s is %s, expected %s (%s)", a.Host, a.IP, got, want, a.MAC)
	}
	return ""
}

func (r *runner) ifaceFor(ip net.IP) *labfile.FirewallInterface {
	for i := range r.l.Firewall.Interfaces {
		fi := &r.l.Firewall.Interfaces[i]
		if fi.Addr.IsValid() && fi.Addr.Masked().Contains(netipFrom(ip)) {
			return fi
		}
	}
	return nil
}

func netipFrom(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip.To4())
	return a
}
