package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/falab/falab/api"
	"github.com/falab/falab/topo"
)

// flashFor is how long a changed ARP entry stays highlighted.
const flashFor = 15 * time.Second

// macFlash is a host's ARP entry whose MAC changed: in burned-in MAC mode
// every host re-learns the gateway after a takeover.
type macFlash struct {
	old, new string
	at       time.Time
}

// hostsTab shows each host's ARP cache, the gateway entry highlighted and
// changed entries flashed with old -> new MAC, and under each host the
// wire check's full verdict (who answered its ARP for the gateway). Not
// safe for concurrent use.
type hostsTab struct {
	hosts   []HostInfo
	macMode string
	caches  map[string][]topo.Neighbor
	errs    map[string]string
	last    map[string]string   // "host ip" -> MAC last seen
	flashes map[string]macFlash // "host ip" -> change
	loaded  bool
	scroll  int
	wire    *wireState // the last wire check, shared with the model's header

	width, height int
}

func newHostsTab(info LabInfo) *hostsTab {
	return &hostsTab{hosts: info.Hosts, macMode: info.MACMode, caches: map[string][]topo.Neighbor{},
		errs: map[string]string{}, last: map[string]string{}, flashes: map[string]macFlash{}}
}

// SetSize sets the area the tab draws in.
func (h *hostsTab) SetSize(w, ht int) { h.width, h.height = w, ht }

// ShortHelp is the tab's own keys.
func (h *hostsTab) ShortHelp(k keyMap) []key.Binding {
	return []key.Binding{k.PageDn, k.PageUp, k.NextTab}
}

// update takes the hosts' caches read at now and flashes changed MACs.
func (h *hostsTab) update(caches map[string][]topo.Neighbor, errs map[string]error, now time.Time) {
	h.loaded = true
	for name, c := range caches {
		h.caches[name] = c
		delete(h.errs, name)
		for _, n := range c {
			if len(n.MAC) == 0 {
				continue // INCOMPLETE or FAILED: no MAC to compare
			}
			k := name + " " + n.IP.String()
			mac := n.MAC.String()
			if old, ok := h.last[k]; ok && old != mac {
				h.flashes[k] = macFlash{old: old, new: mac, at: now}
			}
			h.last[k] = mac
		}
	}
	for name, err := range errs {
		h.errs[name] = err.Error()
	}
	for k, f := range h.flashes {
		if now.Sub(f.at) > flashFor {
			delete(h.flashes, k)
		}
	}
}

// HandleKey scrolls.
func (h *hostsTab) HandleKey(msg tea.KeyPressMsg, k keyMap) {
	switch {
	case key.Matches(msg, k.PageDn):
		h.scroll += h.height - 1
	case key.Matches(msg, k.PageUp):
		h.scroll -= h.height - 1
	case key.Matches(msg, k.Down):
		h.scroll++
	case key.Matches(msg, k.Up):
		h.scroll--
	case key.Matches(msg, k.Home):
		h.scroll = 0
	}
	h.scroll = max(h.scroll, 0)
}

// Render draws the tab in exactly its size.
func (h *hostsTab) Render(now time.Time) string {
	var lines []string
	note := "burned-in MACs: after a takeover hosts re-learn the gateway's MAC"
	if h.macMode == "virtual" {
		note = "virtual MACs: a takeover changes no host's ARP cache"
	}
	lines = append(lines, styleDim.Render(note))
	if h.wire != nil && h.wire.enabled {
		lines = append(lines, h.wire.hostsNote(now))
	}
	if !h.loaded {
		lines = append(lines, styleDim.Render("reading the hosts' ARP caches…"))
		return block(lines, h.width, h.height)
	}
	var body []string
	for _, host := range h.hosts {
		head := styleTitle.Render(host.Name)
		if host.Gateway.IsValid() {
			head += styleDim.Render("  gateway " + host.Gateway.String())
		}
		body = append(body, head)
		if h.wire != nil {
			body = append(body, h.wire.hostLines(host.Name, h.width)...)
		}
		if e, ok := h.errs[host.Name]; ok {
			body = append(body, "  "+styleErr.Render(e))
			continue
		}
		cache := h.caches[host.Name]
		if len(cache) == 0 {
			body = append(body, styleDim.Render("  (empty)"))
		}
		for _, n := range cache {
			mac := "—"
			if len(n.MAC) > 0 {
				mac = n.MAC.String()
			}
			line := fmt.Sprintf("  %-15s %-17s %-10s %s", n.IP, mac, n.State, n.Ifname)
			if n.IP == host.Gateway {
				line = styleGateway.Render(line + "  gateway")
			}
			body = append(body, line)
			if f, ok := h.flashes[host.Name+" "+n.IP.String()]; ok && now.Sub(f.at) <= flashFor {
				body = append(body, "    "+styleFlash.Render(fmt.Sprintf(" ↳ MAC %s -> %s, %s ago ", f.old, f.new, shortDur(now.Sub(f.at)))))
			}
		}
	}
	room := h.height - len(lines)
	h.scroll = min(h.scroll, max(len(body)-room, 0))
	lines = append(lines, body[h.scroll:]...)
	return block(lines, h.width, h.height)
}

// timelineCap bounds the events kept for the Timeline tab.
const timelineCap = 5000

// timelineTab merges the events of both units and the lab by time. Not
// safe for concurrent use.
type timelineTab struct {
	events []eventRow
	filter string
	shown  []int
	back   int // rows scrolled back from the newest; 0 follows new events
	loc    *time.Location
	unitW  int

	width, height int
}

// eventRow is an event and its rendered line (events never change, so the
// line is made once).
type eventRow struct {
	time time.Time
	unit string
	kind string
	line string
	hay  string
}

// SetSize sets the area the tab draws in.
func (t *timelineTab) SetSize(w, h int) { t.width, t.height = w, h }

// ShortHelp is the tab's own keys.
func (t *timelineTab) ShortHelp(k keyMap) []key.Binding {
	return []key.Binding{k.Filter, k.PageUp, k.PageDn, k.End, k.NextTab}
}

// add merges events in, keeping the newest timelineCap.
func (t *timelineTab) add(evs []api.Event) {
	if len(evs) == 0 {
		return
	}
	for _, e := range evs {
		style := styleDim
		switch e.Kind {
		case "transition", "active":
			style = styleTitle
		case "peer-failed", "fault":
			style = styleErr
		case "garp", "command":
			style = styleWarn
		}
		ts := e.Time.In(t.loc).Format("15:04:05.000")
		line := fmt.Sprintf("%s %-*s %-11s %s", ts, t.unitW, e.Unit, e.Kind, e.Msg)
		t.events = append(t.events, eventRow{time: e.Time, unit: e.Unit, kind: e.Kind,
			line: style.Render(line), hay: strings.ToLower(line)})
	}
	// Stable: events of one source keep their order when stamped alike.
	sortEventRows(t.events)
	if n := len(t.events) - timelineCap; n > 0 {
		t.events = append(t.events[:0], t.events[n:]...)
	}
	t.refilter()
}

func (t *timelineTab) refilter() {
	t.shown = t.shown[:0]
	f := strings.ToLower(t.filter)
	for i := range t.events {
		if f == "" || strings.Contains(t.events[i].hay, f) {
			t.shown = append(t.shown, i)
		}
	}
}

// SetFilter applies a filter.
func (t *timelineTab) SetFilter(f string) {
	t.filter = f
	t.back = 0
	t.refilter()
}

// HandleKey scrolls back in time and forward again.
func (t *timelineTab) HandleKey(msg tea.KeyPressMsg, k keyMap) {
	n := max(t.height-2, 1)
	switch {
	case key.Matches(msg, k.PageUp):
		t.back += n
	case key.Matches(msg, k.PageDn):
		t.back -= n
	case key.Matches(msg, k.Up):
		t.back++
	case key.Matches(msg, k.Down):
		t.back--
	case key.Matches(msg, k.Home):
		t.back = len(t.shown)
	case key.Matches(msg, k.End):
		t.back = 0
	}
	t.back = max(min(t.back, len(t.shown)-n), 0)
}

// Render draws the newest events that fit (or older ones when scrolled).
func (t *timelineTab) Render() string {
	n := max(t.height-1, 1)
	end := max(len(t.shown)-t.back, 0)
	start := max(end-n, 0)
	lines := make([]string, 0, t.height)
	if len(t.shown) == 0 {
		if t.filter != "" {
			lines = append(lines, styleDim.Render("no event matches /"+t.filter))
		} else {
			lines = append(lines, styleDim.Render("no events yet"))
		}
	}
	for _, i := range t.shown[start:end] {
		lines = append(lines, t.events[i].line)
	}
	for len(lines) < n {
		lines = append(lines, "")
	}
	status := fmt.Sprintf("%d events", len(t.shown))
	if t.back > 0 {
		status += fmt.Sprintf(" · %d newer below (end follows)", t.back)
	} else {
		status += " · following"
	}
	if t.filter != "" {
		status += " · /" + t.filter
	}
	lines = append(lines, styleDim.Render(status))
	return block(lines, t.width, t.height)
}

// trafficTab shows the running traffic generators. Not safe for
// concurrent use.
type trafficTab struct {
	flows  []TrafficFlowSummary
	err    string
	loaded bool

	width, height int
}

// SetSize sets the area the tab draws in.
func (t *trafficTab) SetSize(w, h int) { t.width, t.height = w, h }

// ShortHelp is the tab's own keys.
func (t *trafficTab) ShortHelp(k keyMap) []key.Binding { return []key.Binding{k.NextTab} }

// Render draws the flows.
func (t *trafficTab) Render() string {
	var lines []string
	switch {
	case t.err != "":
		lines = append(lines, styleErr.Render(t.err))
	case len(t.flows) == 0:
		lines = append(lines, "no traffic running", styleDim.Render("start some with: falab traffic start --kind tcp-stream --client client1 --server server1"))
	default:
		lines = append(lines, styleColHead.Render(fmt.Sprintf("%-30s %-10s %6s %6s %6s %10s %8s", "Generator", "Kind", "Flows", "Alive", "Broken", "Rate", "Max gap")))
		for _, f := range t.flows {
			l := fmt.Sprintf("%-30s %-10s %6d %6d %6d %10s %8s", f.Name, f.Kind, f.Flows, f.Alive, f.Broken, bitRate(f.RateBps), shortDur(f.LongestGap))
			if f.Broken > 0 {
				l = styleErr.Render(l)
			}
			lines = append(lines, l)
			for _, ft := range f.Faults {
				lines = append(lines, styleDim.Render(ft.line()))
			}
		}
		lines = append(lines, chartLines(t.flows, t.width, t.height-len(lines))...)
	}
	return block(lines, t.width, t.height)
}

// TrafficFault is one generator's figures across one fault of the lab:
// the gap and loss that belong to the failover, not to start-up.
type TrafficFault struct {
	Fault       string        // e.g. "kill fw-a"
	At          time.Time     // when the fault was injected (zero: unknown, not charted)
	ToActive    time.Duration // fault to a unit Active; negative: no takeover
	Gap         time.Duration // the longest gap across the fault
	Lost        int64         // probes lost in the fault's window; negative: not a probe kind
	SurvivedPct float64
}

// line is the fault's row under its generator.
func (f TrafficFault) line() string {
	active := "no takeover"
	if f.ToActive >= 0 {
		active = "Active in " + shortDur(f.ToActive)
	}
	lost := ""
	if f.Lost >= 0 {
		lost = fmt.Sprintf(", lost %d", f.Lost)
	}
	return fmt.Sprintf("  ↳ %s: %s, gap %s%s, survived %.0f%%", f.Fault, active, shortDur(f.Gap), lost, f.SurvivedPct)
}

func bitRate(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.1fGb/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.1fMb/s", bps/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.1fkb/s", bps/1e3)
	}
	return fmt.Sprintf("%.0fb/s", bps)
}

func sortEventRows(r []eventRow) {
	slices.SortStableFunc(r, func(a, b eventRow) int { return a.time.Compare(b.time) })
}
