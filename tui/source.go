package tui

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/labfile"
	"github.com/falab/falab/topo"
)

// LabInfo is the shape of a running lab as the TUI needs it. It does not
// change while the lab runs, so it is read once.
type LabInfo struct {
	Name    string
	Units   [2]string // primary first, then secondary
	MACMode string    // "virtual" or "burned-in"
	Hosts   []HostInfo
	// Links are the link ends (NODE:IFACE) the `l` key offers to set down
	// and up: the units' data interfaces first, then the hosts'.
	Links []string
	// MACs names every MAC the lab gave out (lower-case, colon form): a
	// host's interface "client1 eth0", a unit's "fw-a inside", a virtual
	// MAC "virtual inside (active)". The Bridge tab resolves its stations
	// with it.
	MACs map[string]string
}

// HostInfo is one host of the lab: the TUI reads its ARP cache.
type HostInfo struct {
	Name    string
	Gateway netip.Addr // zero when the host has none
}

// TrafficFlowSummary is one running traffic generator as the Traffic tab
// shows it. The traffic package fills it (through Options.Traffic).
type TrafficFlowSummary struct {
	Name       string         // e.g. "tcp-stream client1->server1"
	Kind       string         // tcp-stream, udp-probe, http, ping
	Flows      int            // flows started
	Alive      int            // flows alive or completed
	Broken     int            // flows reset, stalled or corrupt
	RateBps    float64        // bits per second at the last report
	LongestGap time.Duration  // longest pause seen by any flow
	Faults     []TrafficFault // the figures across each fault (hosts.go)
	// At is the time of the client's latest report; Traces its flows for
	// the gap chart (gapchart.go).
	At     time.Time
	Traces []FlowTrace
}

// Source is everything the TUI reads from a lab or does to it. Each method
// is called from a tea.Cmd, never from Update, so it may block on I/O; it
// must be safe for concurrent use because commands run in parallel.
type Source interface {
	// Info returns the lab's shape.
	Info() LabInfo
	// Status returns a unit's failover status.
	Status(ctx context.Context, unitName string) (api.Status, error)
	// Conns returns one page of a unit's connection table.
	Conns(ctx context.Context, unitName string, offset, limit int) (api.Page[api.Conn], error)
	// Xlates returns one page of a unit's translation table.
	Xlates(ctx context.Context, unitName string, offset, limit int) (api.Page[api.Xlate], error)
	// ARP returns a unit's (replicated) ARP table.
	ARP(ctx context.Context, unitName string) ([]api.ARPEntry, error)
	// Bridge returns a unit's (replicated) bridge table, transparent mode.
	Bridge(ctx context.Context, unitName string) ([]api.BridgeEntry, error)
	// Routes returns a unit's routing table.
	Routes(ctx context.Context, unitName string) ([]api.Route, error)
	// Interfaces returns a unit's data interfaces with their counters.
	Interfaces(ctx context.Context, unitName string) ([]api.Interface, error)
	// Drops returns a unit's drop counters by reason.
	Drops(ctx context.Context, unitName string) (map[string]uint64, error)
	// PDPContexts returns a unit's GTP PDP contexts (an error when the
	// unit does not inspect GTP).
	PDPContexts(ctx context.Context, unitName string) (api.PDPContexts, error)
	// Crypto returns a unit's IKE and IPsec SAs.
	Crypto(ctx context.Context, unitName string) (api.Crypto, error)
	// Voice returns a unit's SIP and CTIQBE inspection tables.
	Voice(ctx context.Context, unitName string) (api.Voice, error)
	// HostARP returns a host's ARP cache, read from its namespace.
	HostARP(ctx context.Context, host string) ([]topo.Neighbor, error)
	// UnitEvents returns a unit's events after seq.
	UnitEvents(ctx context.Context, unitName string, since uint64) ([]api.Event, error)
	// LabEvents returns the lab's own timeline (faults) after seq.
	LabEvents(ctx context.Context, since uint64) ([]api.Event, error)
	// Inject performs a fault and returns what was done.
	Inject(ctx context.Context, f lab.Fault) (string, error)
	// Failover sends an operator failover command ("active", "standby",
	// "reset") to one unit.
	Failover(ctx context.Context, unitName, do string) (string, error)
	// Traffic returns the running traffic generators (none: nil).
	Traffic(ctx context.Context) ([]TrafficFlowSummary, error)
	// GatewayAnswers has every host with a gateway ARP for it on the wire
	// and says which units answered (lab.GatewayAnswers): exactly one is
	// a healthy pair. It takes ~150ms a host and returns the answers got
	// so far with its error.
	GatewayAnswers(ctx context.Context) ([]lab.WireAnswer, error)
}

// LabSource is the Source over a running lab: unit API clients, the hosts'
// namespaces and the lab's state directory. Safe for concurrent use: its
// fields are set once by NewLabSource.
type LabSource struct {
	info    LabInfo
	lab     *labfile.Lab
	clients map[string]*api.Client
	traffic func(context.Context) ([]TrafficFlowSummary, error)
}

var _ Source = (*LabSource)(nil)

// NewLabSource reads the running lab labName. traffic may be nil (the
// Traffic tab then says no traffic is running).
func NewLabSource(labName string, traffic func(context.Context) ([]TrafficFlowSummary, error)) (*LabSource, error) {
	_, l, err := lab.LoadRunning(labName)
	if err != nil {
		return nil, err
	}
	s := &LabSource{lab: l, clients: map[string]*api.Client{}, traffic: traffic}
	for _, u := range l.Units {
		c, err := lab.UnitClient(labName, u.Name)
		if err != nil {
			return nil, err
		}
		s.clients[u.Name] = c
	}
	s.info = infoOf(l)
	return s, nil
}

// infoOf extracts what the TUI needs from a resolved lab.
func infoOf(l *labfile.Lab) LabInfo {
	in := LabInfo{Name: l.Name, Units: [2]string{l.Units[0].Name, l.Units[1].Name}, MACMode: l.Failover.MACMode}
	for _, h := range l.Hosts {
		in.Hosts = append(in.Hosts, HostInfo{Name: h.Name, Gateway: h.Gateway})
	}
	in.MACs = labMACs(l)
	isUnit := func(n string) bool { return n == in.Units[0] || n == in.Units[1] }
	var hostEnds []string
	for _, lk := range l.Links {
		for _, e := range []labfile.Endpoint{lk.A, lk.B} {
			switch {
			case e.Iface == "" || e.Iface == l.Failover.Link.Interface && isUnit(e.Node):
				// Switch ends have no name of ours; the failover link has its own key.
			case isUnit(e.Node):
				in.Links = append(in.Links, e.Node+":"+e.Iface)
			default:
				if _, ok := l.Host(e.Node); ok {
					hostEnds = append(hostEnds, e.Node+":"+e.Iface)
				}
			}
		}
	}
	in.Links = append(in.Links, hostEnds...)
	return in
}

func (s *LabSource) client(name string) (*api.Client, error) {
	c, ok := s.clients[name]
	if !ok {
		return nil, fmt.Errorf("lab %s has no unit %q", s.info.Name, name)
	}
	return c, nil
}

// Info implements Source.
func (s *LabSource) Info() LabInfo { return s.info }

// Status implements Source.
func (s *LabSource) Status(ctx context.Context, u string) (api.Status, error) {
	c, err := s.client(u)
	if err != nil {
		return api.Status{}, err
	}
	return c.Status(ctx)
}

// Conns implements Source.
func (s *LabSource) Conns(ctx context.Context, u string, offset, limit int) (api.Page[api.Conn], error) {
	c, err := s.client(u)
	if err != nil {
		return api.Page[api.Conn]{}, err
	}
	return c.Conns(ctx, offset, limit)
}

// Xlates implements Source.
func (s *LabSource) Xlates(ctx context.Context, u string, offset, limit int) (api.Page[api.Xlate], error) {
	c, err := s.client(u)
	if err != nil {
		return api.Page[api.Xlate]{}, err
	}
	return c.Xlates(ctx, offset, limit)
}

// ARP implements Source.
func (s *LabSource) ARP(ctx context.Context, u string) ([]api.ARPEntry, error) {
	c, err := s.client(u)
	if err != nil {
		return nil, err
	}
	return c.ARP(ctx)
}

// Routes implements Source.
func (s *LabSource) Routes(ctx context.Context, u string) ([]api.Route, error) {
	c, err := s.client(u)
	if err != nil {
		return nil, err
	}
	return c.Routes(ctx)
}

// Interfaces implements Source.
func (s *LabSource) Interfaces(ctx context.Context, u string) ([]api.Interface, error) {
	c, err := s.client(u)
	if err != nil {
		return nil, err
	}
	return c.Interfaces(ctx)
}

// Crypto implements Source.
func (s *LabSource) Crypto(ctx context.Context, u string) (api.Crypto, error) {
	c, err := s.client(u)
	if err != nil {
		return api.Crypto{}, err
	}
	return c.Crypto(ctx)
}

// Drops implements Source.
func (s *LabSource) Voice(ctx context.Context, u string) (api.Voice, error) {
	c, err := s.client(u)
	if err != nil {
		return api.Voice{}, err
	}
	return c.Voice(ctx)
}

func (s *LabSource) Drops(ctx context.Context, u string) (map[string]uint64, error) {
	c, err := s.client(u)
	if err != nil {
		return nil, err
	}
	return c.Drops(ctx)
}

// PDPContexts implements Source.
func (s *LabSource) PDPContexts(ctx context.Context, u string) (api.PDPContexts, error) {
	c, err := s.client(u)
	if err != nil {
		return api.PDPContexts{}, err
	}
	return c.PDPContexts(ctx)
}

// Bridge implements Source.
func (s *LabSource) Bridge(ctx context.Context, u string) ([]api.BridgeEntry, error) {
	c, err := s.client(u)
	if err != nil {
		return nil, err
	}
	return c.Bridge(ctx)
}

// HostARP implements Source.
func (s *LabSource) HostARP(_ context.Context, host string) ([]topo.Neighbor, error) {
	if _, ok := s.lab.Host(host); !ok {
		return nil, fmt.Errorf("lab %s has no host %q", s.info.Name, host)
	}
	return topo.Neighbors(s.lab.Namespace(host))
}

// UnitEvents implements Source.
func (s *LabSource) UnitEvents(ctx context.Context, u string, since uint64) ([]api.Event, error) {
	c, err := s.client(u)
	if err != nil {
		return nil, err
	}
	return c.Events(ctx, since, 0)
}

// LabEvents implements Source.
func (s *LabSource) LabEvents(_ context.Context, since uint64) ([]api.Event, error) {
	evs, err := lab.LabEvents(s.info.Name)
	if err != nil {
		return nil, err
	}
	var out []api.Event
	for _, e := range evs {
		if e.Seq > since {
			out = append(out, e)
		}
	}
	return out, nil
}

// Inject implements Source.
func (s *LabSource) Inject(ctx context.Context, f lab.Fault) (string, error) {
	return lab.Inject(ctx, s.info.Name, f)
}

// Failover implements Source.
func (s *LabSource) Failover(ctx context.Context, u, do string) (string, error) {
	c, err := s.client(u)
	if err != nil {
		return "", err
	}
	r, err := c.Failover(ctx, do)
	if err == nil {
		lab.RecordEvent(s.info.Name, "command", fmt.Sprintf("failover %s on %s: %s", do, u, r))
	}
	return r, err
}

// Traffic implements Source.
func (s *LabSource) Traffic(ctx context.Context) ([]TrafficFlowSummary, error) {
	if s.traffic == nil {
		return nil, nil
	}
	return s.traffic(ctx)
}

// GatewayAnswers implements Source.
func (s *LabSource) GatewayAnswers(ctx context.Context) ([]lab.WireAnswer, error) {
	return lab.GatewayAnswers(ctx, s.lab)
}

// labMACs names every MAC of the lab: the hosts' interfaces, the units'
// burned-in MACs and the virtual MACs.
func labMACs(l *labfile.Lab) map[string]string {
	out := map[string]string{}
	add := func(mac net.HardwareAddr, name string) {
		if len(mac) > 0 {
			out[mac.String()] = name
		}
	}
	for _, h := range l.Hosts {
		for _, i := range h.Interfaces {
			add(i.MAC, h.Name+" "+i.Name)
		}
	}
	for _, u := range l.Units {
		for iface, mac := range u.MACs {
			add(mac, u.Name+" "+iface)
		}
	}
	if l.Failover.MACMode == labfile.MACVirtual {
		for _, fi := range l.Firewall.Interfaces {
			add(fi.VirtualMAC, "virtual "+fi.Name+" (active)")
			add(fi.StandbyVirtualMAC, "virtual "+fi.Name+" (standby)")
		}
	}
	return out
}

// macName is a MAC's owner in the lab, "?" for a MAC the lab did not give
// out.
func macName(macs map[string]string, mac string) string {
	if hw, err := net.ParseMAC(mac); err == nil {
		mac = hw.String()
	}
	if n, ok := macs[strings.ToLower(mac)]; ok {
		return n
	}
	return "?"
}
