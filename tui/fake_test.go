package tui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/arpcheck"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/topo"
)

// errNoAnswer is what a dead or frozen fake unit's API returns.
var errNoAnswer = errors.New("unit API: connection refused (is the unit running?)")

// fakeUnit is one fake firewall unit.
type fakeUnit struct {
	status api.Status
	dead   bool
	events []api.Event
}

// fakeSource is a Source over an imaginary lab of two units, four hosts
// and tables made up by index, driven by a manual clock. Faults change it
// the way they change a real lab: kill fw-a and fw-b takes over 10ms
// after the first sign. Safe for concurrent use.
type fakeSource struct {
	mu        sync.Mutex
	now       time.Time
	info      LabInfo
	units     map[string]*fakeUnit
	conns     map[string][]api.Conn
	xlates    map[string][]api.Xlate
	arp       map[string][]api.ARPEntry
	hostARP   map[string][]topo.Neighbor
	labEvents []api.Event
	injected  []lab.Fault
	traffic   []TrafficFlowSummary // what Traffic returns
	maxLimit  map[string]int       // largest page asked of each unit's conns

	// The wire check: by default every host's gateway is answered by
	// each living active unit (see GatewayAnswers); wireAnswers and
	// wireErr replace that when set.
	wireAnswers []lab.WireAnswer
	wireErr     error
	wireCalls   int
}

var _ Source = (*fakeSource)(nil)

var t0 = time.Date(2026, 11, 25, 10, 15, 24, 0, time.UTC)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// newFakeSource makes the lab with n connections on the active (fw-a); the
// standby misses the last `missing` of them and holds one extra.
func newFakeSource(n, missing int) *fakeSource {
	f := &fakeSource{
		now: t0,
		info: LabInfo{
			Name: "tuitest", Units: [2]string{"fw-a", "fw-b"}, MACMode: "virtual",
			Hosts: []HostInfo{
				{Name: "client1", Gateway: netip.MustParseAddr("198.18.1.1")},
				{Name: "server1", Gateway: netip.MustParseAddr("198.18.2.1")},
			},
			Links: []string{"fw-a:inside", "fw-a:outside", "fw-b:inside", "fw-b:outside", "client1:eth0"},
			MACs: map[string]string{"02:00:00:00:01:11": "client1 eth0", "02:00:00:00:02:11": "server1 eth0",
				"00:00:0c:9f:f0:01": "virtual inside (active)"},
		},
		units: map[string]*fakeUnit{}, conns: map[string][]api.Conn{},
		xlates: map[string][]api.Xlate{}, arp: map[string][]api.ARPEntry{},
		maxLimit: map[string]int{},
	}
	start := t0.Add(-time.Minute)
	for i, name := range f.info.Units {
		u := &fakeUnit{status: api.Status{
			Unit: name, Peer: f.info.Units[1-i], Lab: "tuitest", PID: 100 + i, StartedAt: start,
			Role: []string{"primary", "secondary"}[i], MACMode: "virtual", PeerKnown: true, FailoverLinkUp: true,
		}}
		if i == 0 {
			u.status.State, u.status.Active, u.status.PeerState = "Active", true, "Standby Ready"
			u.status.LastReason = "both units negotiating: primary becomes active"
			u.status.History = []api.TransitionInfo{
				{At: start, From: "Disabled", To: "Negotiation", Reason: "failover enabled"},
				{At: start.Add(time.Millisecond), From: "Negotiation", To: "Active", Reason: u.status.LastReason, Term: 1},
			}
			u.status.Replication.Connected, u.status.Replication.Synced = true, true
			u.status.Replication.LagSamples, u.status.Replication.LagP99 = 10, 456*time.Microsecond
		} else {
			u.status.State, u.status.PeerState = "Standby Ready", "Active"
			u.status.LastReason = "bulk sync complete, digests match"
			u.status.History = []api.TransitionInfo{
				{At: start, From: "Disabled", To: "Negotiation", Reason: "failover enabled"},
				{At: start.Add(time.Millisecond), From: "Negotiation", To: "Bulk Sync", Reason: "peer is Active"},
				{At: start.Add(2 * time.Millisecond), From: "Bulk Sync", To: "Standby Ready", Reason: u.status.LastReason, Term: 1},
			}
		}
		u.status.LastChange = u.status.History[len(u.status.History)-1].At
		u.addEvent(start, "start", fmt.Sprintf("unit %s started", name))
		for _, h := range u.status.History {
			u.addEvent(h.At, "transition", h.From+" -> "+h.To+": "+h.Reason)
		}
		f.units[name] = u
	}
	all := make([]api.Conn, n)
	for i := range all {
		all[i] = fakeConn(i)
	}
	f.conns["fw-a"] = all
	sb := make([]api.Conn, 0, n+1)
	sb = append(sb, all[:max(n-missing, 0)]...)
	f.conns["fw-b"] = append(sb, api.Conn{Protocol: "udp", InInterface: "inside", OutInterface: "outside",
		OrigSrc: "198.18.1.11:5353", OrigDst: "198.18.2.12:53", ReplySrc: "198.18.2.12:53", ReplyDst: "198.18.2.1:5353", State: "-"})
	x := []api.Xlate{
		{Kind: "static", RealInterface: "inside", MappedInterface: "outside",
			Real: netip.MustParseAddrPort("198.18.1.12:0"), Mapped: netip.MustParseAddrPort("198.18.2.112:0"), Age: time.Minute},
		{Kind: "pat", Protocol: "tcp", RealInterface: "inside", MappedInterface: "outside",
			Real: netip.MustParseAddrPort("198.18.1.11:40000"), Mapped: netip.MustParseAddrPort("198.18.2.1:1024"), Conns: 1, Age: 5 * time.Second},
	}
	f.xlates["fw-a"], f.xlates["fw-b"] = x, x
	a := []api.ARPEntry{
		{Interface: "inside", IP: netip.MustParseAddr("198.18.1.11"), MAC: "02:00:00:00:01:11", Age: 2 * time.Second},
		{Interface: "outside", IP: netip.MustParseAddr("198.18.2.11"), MAC: "02:00:00:00:02:11", Age: 3 * time.Second},
	}
	f.arp["fw-a"], f.arp["fw-b"] = a, a[:1]
	f.hostARP = map[string][]topo.Neighbor{
		"client1": {{IP: netip.MustParseAddr("198.18.1.1"), MAC: mustMAC("00:00:0c:9f:f0:01"), State: "REACHABLE", Ifname: "eth0"}},
		"server1": {
			{IP: netip.MustParseAddr("198.18.2.1"), MAC: mustMAC("00:00:0c:9f:f0:02"), State: "REACHABLE", Ifname: "eth0"},
			{IP: netip.MustParseAddr("198.18.2.112"), MAC: mustMAC("00:00:0c:9f:f0:02"), State: "STALE", Ifname: "eth0"},
		},
	}
	f.refreshCounts()
	return f
}

// fakeConn is connection i: unique by source address and port.
func fakeConn(i int) api.Conn {
	src := fmt.Sprintf("198.18.1.%d:%d", 11+i/60000, 1024+i%60000)
	mapped := fmt.Sprintf("198.18.2.1:%d", 1024+i%60000)
	return api.Conn{Protocol: "tcp", InInterface: "inside", OutInterface: "outside",
		OrigSrc: src, OrigDst: "198.18.2.11:80", ReplySrc: "198.18.2.11:80", ReplyDst: mapped,
		State: "ESTABLISHED", Packets: uint64(10 + i%7), Bytes: uint64(1000 + i), Age: time.Minute, Idle: time.Second}
}

func (u *fakeUnit) addEvent(at time.Time, kind, msg string) {
	u.events = append(u.events, api.Event{Seq: uint64(len(u.events) + 1), Time: at, Unit: u.status.Unit, Kind: kind, Msg: msg})
}

// refreshCounts sets each unit's table counts. Caller holds mu or owns f.
func (f *fakeSource) refreshCounts() {
	for name, u := range f.units {
		u.status.Counts = api.TableCounts{Conns: len(f.conns[name]), Xlates: len(f.xlates[name]), ARP: len(f.arp[name])}
	}
}

// setNow moves the fake lab's clock (the test's manual clock).
func (f *fakeSource) setNow(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
	for _, u := range f.units {
		if !u.dead && !f.units[u.status.Peer].dead {
			u.status.PeerLastHeard = t.Add(-8 * time.Millisecond)
		}
	}
}

func (f *fakeSource) alive(name string) (*fakeUnit, error) {
	u, ok := f.units[name]
	if !ok {
		return nil, fmt.Errorf("no unit %q", name)
	}
	if u.dead {
		return nil, errNoAnswer
	}
	return u, nil
}

func (f *fakeSource) Info() LabInfo { return f.info }

func (f *fakeSource) Status(_ context.Context, name string) (api.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.alive(name)
	if err != nil {
		return api.Status{}, err
	}
	s := u.status
	s.History = append([]api.TransitionInfo(nil), s.History...)
	return s, nil
}

func page[T any](all []T, off, lim int) api.Page[T] {
	off = min(max(off, 0), len(all))
	end := min(off+max(lim, 0), len(all))
	return api.Page[T]{Total: len(all), Offset: off, Entries: append([]T(nil), all[off:end]...)}
}

func (f *fakeSource) Conns(_ context.Context, name string, off, lim int) (api.Page[api.Conn], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.alive(name); err != nil {
		return api.Page[api.Conn]{}, err
	}
	f.maxLimit[name] = max(f.maxLimit[name], lim)
	return page(f.conns[name], off, lim), nil
}

func (f *fakeSource) Xlates(_ context.Context, name string, off, lim int) (api.Page[api.Xlate], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.alive(name); err != nil {
		return api.Page[api.Xlate]{}, err
	}
	return page(f.xlates[name], off, lim), nil
}

// Bridge: two stations of the lab and one the lab did not give out.
func (f *fakeSource) Bridge(_ context.Context, name string) ([]api.BridgeEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.alive(name); err != nil {
		return nil, err
	}
	return []api.BridgeEntry{
		{MAC: "02:00:00:00:01:11", Interface: "inside", Age: 2 * time.Second},
		{MAC: "02:00:00:00:02:11", Interface: "outside", Age: time.Second},
		{MAC: "0A:BB:CC:00:00:01", Interface: "outside", Age: 30 * time.Second},
	}, nil
}

func (f *fakeSource) ARP(_ context.Context, name string) ([]api.ARPEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.alive(name); err != nil {
		return nil, err
	}
	return append([]api.ARPEntry(nil), f.arp[name]...), nil
}

func (f *fakeSource) Routes(_ context.Context, name string) ([]api.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.alive(name); err != nil {
		return nil, err
	}
	return []api.Route{
		{Interface: "inside", Prefix: netip.MustParsePrefix("198.18.1.0/24"), Connected: true},
		{Interface: "outside", Prefix: netip.MustParsePrefix("198.18.2.0/24"), Connected: true},
	}, nil
}

func (f *fakeSource) Interfaces(_ context.Context, name string) ([]api.Interface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.alive(name); err != nil {
		return nil, err
	}
	rx := uint64(1000)
	if name == "fw-b" {
		rx = 20
	}
	// Virtual MACs: the active answers with the active MAC, the standby
	// with the standby MAC; fw-b's outside has lost carrier.
	is := []api.Interface{
		{Name: "inside", SecurityLevel: 100, Address: netip.MustParsePrefix("198.18.1.1/24"), StandbyAddr: netip.MustParseAddr("198.18.1.2"),
			MAC: "00:00:0c:9f:f0:01", Attached: true, RxPackets: rx, TxPackets: rx / 2,
			ActiveMAC: "00:00:0c:9f:f0:01", StandbyMAC: "00:00:0c:9f:f1:01", VirtualMAC: true, BurnedInMAC: "02:fa:00:00:0a:01",
			LinkKnown: true, AdminUp: true, Carrier: true, Monitored: true, MonitorUp: true},
		{Name: "outside", Address: netip.MustParsePrefix("198.18.2.1/24"), StandbyAddr: netip.MustParseAddr("198.18.2.2"),
			MAC: "00:00:0c:9f:f0:02", Attached: true, RxPackets: rx / 2, TxPackets: rx, Drops: 3,
			ActiveMAC: "00:00:0c:9f:f0:02", StandbyMAC: "00:00:0c:9f:f1:02", VirtualMAC: true, BurnedInMAC: "02:fa:00:00:0b:02",
			LinkKnown: true, AdminUp: true, Carrier: true, Monitored: true, MonitorUp: true},
	}
	if !f.units[name].status.Active {
		for i := range is {
			is[i].MAC = is[i].StandbyMAC
		}
		is[1].Carrier, is[1].MonitorUp = false, false
	}
	if name == "fw-b" {
		is[0].BurnedInMAC, is[1].BurnedInMAC = "02:fa:00:00:1a:01", "02:fa:00:00:1b:02"
	}
	return is, nil
}

func (f *fakeSource) Crypto(_ context.Context, name string) (api.Crypto, error) {
	sa := api.IKESA{Remote: netip.MustParseAddrPort("198.18.2.50:4500"), SPIi: "5c1f2a3b4c5d6e7f", SPIr: "a1b2c3d4e5f60718",
		Suite: "aes256gcm16-prfsha256-ecp256", NextMessageID: 4,
		Children: []api.ChildSA{{InSPI: "c1000001", OutSPI: "d2000002"}}}
	return api.Crypto{Unit: name, Replicated: true, IKE: []api.IKESA{sa}}, nil
}

func (f *fakeSource) Drops(_ context.Context, name string) (map[string]uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.alive(name); err != nil {
		return nil, err
	}
	if name == "fw-a" {
		return map[string]uint64{"acl-drop": 12, "no-route": 1}, nil
	}
	return map[string]uint64{"not-active": 40}, nil
}

func (f *fakeSource) PDPContexts(_ context.Context, name string) (api.PDPContexts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.alive(name); err != nil {
		return api.PDPContexts{}, err
	}
	c := api.PDPContext{TID: "0001012143658750", IMSI: "001010123456789", NSAPI: 5, Primary: true, MS: "198.19.200.1", APN: "internet",
		SGSNControl: "198.18.1.11", SGSNData: "198.18.1.11", GGSNControl: "198.18.2.11", GGSNData: "198.18.2.11",
		SGSNControlTEID: 1, SGSNDataTEID: 1, GGSNControlTEID: 1, GGSNDataTEID: 1, Upstream: 6, Downstream: 6}
	if name == "fw-b" {
		c.Upstream, c.Downstream = 0, 0
	}
	return api.PDPContexts{InUse: 1, MostUsed: 1, Timeout: 30 * time.Minute, Contexts: []api.PDPContext{c}}, nil
}

// Voice: both units hold the SIP call (replicated); only fw-a, which saw
// the phone register, holds the CTIQBE session (never replicated).
func (f *fakeSource) Voice(_ context.Context, name string) (api.Voice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.alive(name); err != nil {
		return api.Voice{}, err
	}
	v := api.Voice{
		SIP:    &api.SIPInspection{Replicated: true, Sessions: []api.SIPSession{{CallID: "1-2@198.18.1.11", State: "Active", Idle: time.Second}}},
		CTIQBE: &api.CTIQBEInspection{Model: "lab model", Sessions: []api.CTIQBESession{}},
	}
	if name == "fw-a" {
		v.CTIQBE.Sessions = append(v.CTIQBE.Sessions, api.CTIQBESession{Phone: "198.18.1.11:41000", Manager: "198.18.2.11:2748", Device: "SEP-falab", State: "in call", Calls: 1})
	}
	return v, nil
}

func (f *fakeSource) HostARP(_ context.Context, host string) ([]topo.Neighbor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.hostARP[host]
	if !ok {
		return nil, fmt.Errorf("no host %q", host)
	}
	return append([]topo.Neighbor(nil), n...), nil
}

// setHostMAC changes a host's cache entry (as a gratuitous ARP would).
func (f *fakeSource) setHostMAC(host string, ip netip.Addr, mac string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.hostARP[host] {
		if f.hostARP[host][i].IP == ip {
			f.hostARP[host][i].MAC = mustMAC(mac)
		}
	}
}

func since(evs []api.Event, seq uint64) []api.Event {
	var out []api.Event
	for _, e := range evs {
		if e.Seq > seq {
			out = append(out, e)
		}
	}
	return out
}

func (f *fakeSource) UnitEvents(_ context.Context, name string, seq uint64) ([]api.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.alive(name)
	if err != nil {
		return nil, err
	}
	return since(u.events, seq), nil
}

func (f *fakeSource) LabEvents(_ context.Context, seq uint64) ([]api.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return since(f.labEvents, seq), nil
}

func (f *fakeSource) recordLab(kind, msg string) {
	f.labEvents = append(f.labEvents, api.Event{Seq: uint64(len(f.labEvents) + 1), Time: f.now, Unit: "lab", Kind: kind, Msg: msg})
}

// takeOver makes name active at the fake clock: the first sign 1ms after
// now, Active 10ms after the sign.
func (f *fakeSource) takeOver(name, reason, sign string) {
	u := f.units[name]
	signAt := f.now.Add(time.Millisecond)
	at := signAt.Add(10 * time.Millisecond)
	if sign != "" {
		u.addEvent(signAt, "sync", sign)
	}
	from := u.status.State
	u.status.History = append(u.status.History,
		api.TransitionInfo{At: at, From: from, To: "Just Active", Reason: reason, Term: 2},
		api.TransitionInfo{At: at, From: "Just Active", To: "Active", Reason: "takeover complete: " + reason, Term: 2})
	u.addEvent(at, "transition", from+" -> Just Active: "+reason)
	u.addEvent(at, "transition", "Just Active -> Active: takeover complete: "+reason)
	u.status.State, u.status.Active = "Active", true
	u.status.LastReason, u.status.LastChange = "takeover complete: "+reason, at
	u.status.Replication = f.units[u.status.Peer].status.Replication
	u.status.Replication.Connected = false
	// The standby's tables become the active's.
}

func (f *fakeSource) Inject(_ context.Context, fl lab.Fault) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.injected = append(f.injected, fl)
	var msg string
	switch fl.Kind {
	case lab.FaultKill:
		u, err := f.alive(fl.Target)
		if err != nil {
			return "", fmt.Errorf("kill: %w", err)
		}
		u.dead = true
		msg = fmt.Sprintf("killed %s (SIGKILL pid %d)", fl.Target, u.status.PID)
		f.recordLab("fault", msg)
		f.takeOver(u.status.Peer, "peer process closed the failover connection", "state session from active ended: EOF")
	case lab.FaultManual:
		u, err := f.alive(fl.Target)
		if err != nil {
			return "", err
		}
		peer := f.units[u.status.Peer]
		f.takeOver(fl.Target, "operator command: failover active", "")
		at := u.status.LastChange
		peer.status.History = append(peer.status.History, api.TransitionInfo{At: at, From: peer.status.State, To: "Standby Ready", Reason: "peer became active"})
		peer.addEvent(at, "transition", peer.status.State+" -> Standby Ready: peer became active")
		peer.status.State, peer.status.Active, peer.status.LastChange = "Standby Ready", false, at
		peer.status.LastReason = "peer became active"
		msg = "failover active on " + fl.Target + ": ok"
		f.recordLab("fault", msg)
	case lab.FaultFreeze, lab.FaultThaw:
		// A frozen unit's API does not answer; the fake's peer does not
		// take over (the hold time is not modelled here).
		f.units[fl.Target].dead = fl.Kind == lab.FaultFreeze
		msg = fl.String()
	case lab.FaultRestart:
		u := f.units[fl.Target]
		u.dead = false
		u.status.PID += 1000
		u.status.StartedAt = f.now
		u.status.State, u.status.Active = "Standby Ready", false
		u.events = nil
		u.addEvent(f.now, "start", "unit "+fl.Target+" started")
		msg = "restarted " + fl.Target
	default:
		msg = fl.String()
	}
	return msg, nil
}

func (f *fakeSource) Failover(_ context.Context, name, do string) (string, error) {
	return "ok", nil
}

func (f *fakeSource) Traffic(context.Context) ([]TrafficFlowSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.traffic, nil
}

// GatewayAnswers models the wire: each host's gateway is answered by every
// living active unit, all with the virtual MAC in the host's cache, so two
// actives answer every request twice and none answers not at all.
func (f *fakeSource) GatewayAnswers(context.Context) ([]lab.WireAnswer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wireCalls++
	if f.wireAnswers != nil || f.wireErr != nil {
		return append([]lab.WireAnswer(nil), f.wireAnswers...), f.wireErr
	}
	actives := 0
	for _, u := range f.units {
		if !u.dead && u.status.Active {
			actives++
		}
	}
	var out []lab.WireAnswer
	for _, h := range f.info.Hosts {
		r := arpcheck.Result{Target: h.Gateway, Requests: arpcheck.DefaultRequests}
		for _, n := range f.hostARP[h.Name] {
			if n.IP == h.Gateway && actives > 0 {
				r.Replies = actives * r.Requests
				r.MACs = []arpcheck.MACCount{{MAC: n.MAC.String(), Count: r.Replies}}
				if actives > 1 {
					r.DoubledRounds = r.Requests
				}
			}
		}
		out = append(out, lab.WireAnswer{Host: h.Name, Interface: "eth0", Result: r})
	}
	return out, nil
}

// setWire makes the next wire checks return answers and err.
func (f *fakeSource) setWire(answers []lab.WireAnswer, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wireAnswers, f.wireErr = answers, err
}
