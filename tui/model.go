package tui

import (
	"context"
	"fmt"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/topo"
)

// Tab order. The table tabs come first, in the order of newTableTabs.
const (
	tabIndexHosts    = 10
	tabIndexTimeline = 11
	tabIndexTraffic  = 12
	numTabs          = 13
)

// Timeouts of the commands. A frozen unit's API does not answer at all, so
// status reads give up fast and the badge says "no answer" at once.
const (
	statusTimeout = 400 * time.Millisecond
	fetchTimeout  = 3 * time.Second
	actionTimeout = 30 * time.Second // restart waits for the unit to be ready

	// bannerLookback: a takeover this long before the TUI started still
	// gets its banner, so `falab tui` right after a fault shows it.
	bannerLookback = time.Minute
	// signWindow bounds how far before a takeover its first sign is sought.
	signWindow = 5 * time.Second
	// messageFor is how long an action's result stays in the footer.
	messageFor = 10 * time.Second
)

// Messages: one type per kind of async result. Each carries what it
// answers, so a late answer is recognised.
type (
	tickMsg   struct{ at time.Time }
	statusMsg struct {
		unit   string
		status api.Status
		err    error
	}
	eventsMsg struct {
		unit   string // "lab" for the lab's own timeline
		epoch  int    // the unit process the request was for
		events []api.Event
		err    error
	}
	tableMsg struct {
		req  tableReq
		data tableData
	}
	hostsMsg struct {
		caches map[string][]topo.Neighbor
		errs   map[string]error
	}
	trafficMsg struct {
		flows []TrafficFlowSummary
		err   error
	}
	actionMsg struct {
		result string
		err    error
	}
)

// mode is what the keyboard drives.
type mode uint8

const (
	modeNormal  mode = iota
	modeFilter       // typing a filter after /
	modeHelp         // the ? screen
	modeLinks        // choosing a link for l
	modeConfirm      // a destructive key waits for y (input.go)
	modeRepl         // the replication view (v)
	modeReasons      // the reasons in full (i, reasons.go)
	modeDetail       // a row's detail (enter, detail.go)
)

// unitView is what the TUI knows of one unit.
type unitView struct {
	name   string
	status api.Status
	ok     bool   // the last status read answered
	seen   bool   // it answered at least once
	err    string // why the last read failed
	epoch  int    // bumped when the unit process changes (restart)
	// staleSince is when the unit last answered before it stopped
	// answering (zero while it answers): what is shown of it since then
	// is marked stale (stale.go).
	staleSince time.Time
	lastAnswer time.Time // when a status read last answered
}

// takeover is a standby becoming active, for the banner.
type takeover struct {
	key      string // unit and time of the transition: one banner per takeover
	unit     string
	reason   string
	startAt  time.Time // the transition out of standby
	activeAt time.Time // the transition to Active; zero while Just Active
	signAt   time.Time // the first sign of trouble (fault, lost session, probe)
}

// Model is the TUI: the Bubble Tea model over one lab. Not safe for
// concurrent use: the Bubble Tea loop owns it, and every read of the lab
// happens in a tea.Cmd that reports back with a message.
type Model struct {
	src  Source
	info LabInfo
	keys keyMap
	base context.Context // parent of every command's context
	loc  *time.Location
	tick func(time.Duration) tea.Cmd

	refresh time.Duration
	now     time.Time
	started time.Time
	width   int
	height  int

	units        [2]unitView
	lastActive   int
	statusRounds int // status answers (or failures) received

	tables   []*tableTab
	hosts    *hostsTab
	timeline *timelineTab
	traffic  *trafficTab
	wire     *wireState
	cur      int

	inflight  map[string]bool
	lastFetch map[string]time.Time
	eventSeq  [2]uint64
	labSeq    uint64

	banner    *takeover
	dismissed map[string]bool

	mode      mode
	draft     string
	pick      int
	linksDown map[string]bool
	foCut     bool
	frozen    map[string]bool
	confirm   *confirmation // the destructive action waiting for y
	detail    *detail       // the row enter opened (detail.go)
	msg       string
	msgErr    bool
	msgAt     time.Time
	quitting  bool
}

var _ tea.Model = (*Model)(nil)

// New makes the model over src. now is the time the TUI starts (the clock
// then advances with each tick's time).
func New(ctx context.Context, src Source, now time.Time, opts Options) *Model {
	info := src.Info()
	m := &Model{
		src: src, info: info, keys: defaultKeys(), base: ctx, loc: opts.Location,
		refresh: opts.Refresh, now: now, started: now, width: 80, height: 24,
		tables: newTableTabs(), hosts: newHostsTab(info), traffic: &trafficTab{},
		inflight: map[string]bool{}, lastFetch: map[string]time.Time{}, dismissed: map[string]bool{},
		linksDown: map[string]bool{}, frozen: map[string]bool{},
	}
	if m.loc == nil {
		m.loc = time.Local
	}
	if m.refresh <= 0 {
		m.refresh = 100 * time.Millisecond
	}
	m.tick = func(d time.Duration) tea.Cmd {
		return tea.Tick(d, func(t time.Time) tea.Msg { return tickMsg{at: t} })
	}
	unitW := 3
	for i, n := range info.Units {
		m.units[i].name = n
		unitW = max(unitW, len(n))
	}
	m.timeline = &timelineTab{loc: m.loc, unitW: unitW}
	m.wire = newWireState(info)
	m.hosts.wire = m.wire
	m.resize()
	return m
}

// Init starts the refresh loop.
func (m *Model) Init() tea.Cmd { return m.tick(0) }

// Update applies one message. It never does I/O: reads and actions are
// returned as commands.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.resize()
	case tickMsg:
		if msg.at.After(m.now) {
			m.now = msg.at
		}
		return m, tea.Batch(append(m.fetches(), m.tick(m.refresh))...)
	case statusMsg:
		changed := m.onStatus(msg)
		var cmds []tea.Cmd
		if changed {
			// A role change: read the wire now, while it may show two
			// units (or none) answering.
			cmds = append(cmds, m.wireSoon())
		}
		if m.statusRounds == len(m.units) {
			cmds = append(cmds, m.refreshTab()) // the first statuses: the table can be sized
		}
		return m, tea.Batch(cmds...)
	case wireMsg:
		return m, m.onWire(msg)
	case eventsMsg:
		m.onEvents(msg)
	case tableMsg:
		delete(m.inflight, "tab:"+msg.req.tab)
		for _, t := range m.tables {
			if t.id == msg.req.tab {
				if msg.req.paged && msg.req.offset != t.offset {
					// The user paged on while this was read: fetch again.
					return m, m.fetchTab(t)
				}
				t.setData(msg.data)
			}
		}
	case detailMsg:
		m.onDetailMsg(msg)
	case hostsMsg:
		delete(m.inflight, "hosts")
		m.hosts.update(msg.caches, msg.errs, m.now)
	case trafficMsg:
		delete(m.inflight, "traffic")
		m.traffic.loaded = true
		m.traffic.flows, m.traffic.err = msg.flows, ""
		if msg.err != nil {
			m.traffic.err = msg.err.Error()
		}
	case actionMsg:
		if msg.err != nil {
			m.say(msg.err.Error(), true)
		} else {
			m.say(msg.result, false)
		}
		// A fault just landed: what the hosts see on the wire next is
		// what a user pressing the key wants to know.
		return m, m.wireSoon()
	case tea.KeyPressMsg:
		return m, m.onKey(msg)
	}
	return m, nil
}

func (m *Model) say(s string, isErr bool) {
	m.msg, m.msgErr, m.msgAt = s, isErr, m.now
}

// activeIdx is the unit that reports itself active (the one that became
// active last if both do), else the one last seen active.
func (m *Model) activeIdx() int {
	a0 := m.units[0].ok && m.units[0].status.Active
	a1 := m.units[1].ok && m.units[1].status.Active
	switch {
	case a0 && a1:
		if m.units[1].status.LastChange.After(m.units[0].status.LastChange) {
			return 1
		}
		return 0
	case a0:
		return 0
	case a1:
		return 1
	}
	return m.lastActive
}

// onStatus takes a unit's status and reports whether the unit changed
// role: its state, or whether it answers at all.
func (m *Model) onStatus(msg statusMsg) (changed bool) {
	for i := range m.units {
		u := &m.units[i]
		if u.name != msg.unit {
			continue
		}
		delete(m.inflight, "status:"+u.name)
		m.statusRounds++
		if msg.err != nil {
			changed = u.ok
			if u.seen && u.staleSince.IsZero() {
				u.staleSince = u.lastAnswer
			}
			u.ok, u.err = false, msg.err.Error()
			return changed
		}
		u.staleSince, u.lastAnswer = time.Time{}, m.now
		changed = u.seen && (!u.ok || msg.status.State != u.status.State || msg.status.Active != u.status.Active)
		if u.seen && (msg.status.PID != u.status.PID || !msg.status.StartedAt.Equal(u.status.StartedAt)) {
			// A new process: its events are numbered from 1 again.
			u.epoch++
			m.eventSeq[i] = 0
			delete(m.inflight, "events:"+u.name)
		}
		u.status, u.ok, u.seen, u.err = msg.status, true, true, ""
		if msg.status.Active {
			m.lastActive = m.activeIdx()
		}
		if !u.status.Active {
			// A unit that answers is not frozen (any more).
			delete(m.frozen, u.name)
		}
		m.detectTakeover(i)
	}
	return changed
}

// standbyStates are the states a takeover starts from.
func isStandbyState(s string) bool { return s == "Standby Ready" || s == "Bulk Sync" }

// detectTakeover looks in a unit's transition history for its latest
// takeover and makes (or completes) the banner.
func (m *Model) detectTakeover(i int) {
	u := &m.units[i]
	h := u.status.History
	at := -1
	for j := len(h) - 1; j >= 0; j-- {
		if (h[j].To == "Just Active" || h[j].To == "Active") && isStandbyState(h[j].From) {
			at = j
			break
		}
	}
	if at < 0 {
		return
	}
	t := h[at]
	k := fmt.Sprintf("%s@%d", u.name, t.At.UnixNano())
	if m.dismissed[k] || t.At.Before(m.started.Add(-bannerLookback)) {
		return
	}
	if m.banner == nil || m.banner.key != k {
		if m.banner != nil && m.banner.startAt.After(t.At) {
			return // an older takeover of the other unit is not news
		}
		m.banner = &takeover{key: k, unit: u.name, reason: t.Reason, startAt: t.At}
	}
	for _, e := range h[at:] {
		if e.To == "Active" {
			m.banner.activeAt = e.At
			break
		}
	}
	var prev time.Time
	if at > 0 {
		prev = h[at-1].At
	}
	m.banner.signAt = m.firstSign(u.name, prev, t.At)
}

// quietKinds are events that are not a sign of a failure.
var quietKinds = map[string]bool{"transition": true, "garp": true, "active": true, "start": true, "standby": true}

// signGap ends a run of warning events: the run that led to a takeover
// has its events closer together than this (hellos are missed within the
// hold time); an event further back belongs to something older.
const signGap = time.Second

// firstSign is when trouble began for a takeover by unit at `at` (after
// its previous transition prev, and at most signWindow earlier): the
// latest fault or command the lab recorded, or else the first of the run
// of the unit's own warnings (lost session, missed hellos, probes) that
// ends in the takeover. Zero when none is known.
func (m *Model) firstSign(unitName string, prev, at time.Time) time.Time {
	from := at.Add(-signWindow)
	if prev.After(from) {
		from = prev
	}
	var fault time.Time
	var own []time.Time
	for _, e := range m.timeline.events {
		if e.time.Before(from) || e.time.After(at) {
			continue
		}
		switch {
		case e.unit == "lab" && (e.kind == "fault" || e.kind == "command"):
			fault = e.time // events are in time order: the latest wins
		case e.unit == unitName && !quietKinds[e.kind]:
			own = append(own, e.time)
		}
	}
	if !fault.IsZero() {
		return fault
	}
	var first time.Time
	cur := at
	for i := len(own) - 1; i >= 0; i-- {
		if cur.Sub(own[i]) > signGap {
			break
		}
		first, cur = own[i], own[i]
	}
	return first
}

func (m *Model) onEvents(msg eventsMsg) {
	delete(m.inflight, "events:"+msg.unit)
	if msg.err != nil {
		return
	}
	if msg.unit == "lab" {
		for _, e := range msg.events {
			m.labSeq = max(m.labSeq, e.Seq)
		}
	} else {
		for i := range m.units {
			if m.units[i].name == msg.unit {
				if msg.epoch != m.units[i].epoch {
					return // the answer of a process that is gone
				}
				for _, e := range msg.events {
					m.eventSeq[i] = max(m.eventSeq[i], e.Seq)
				}
			}
		}
	}
	m.timeline.add(msg.events)
	if m.banner != nil && len(msg.events) > 0 {
		for i := range m.units {
			if m.units[i].name == m.banner.unit {
				m.detectTakeover(i)
			}
		}
	}
}

// fetches are the reads due at this tick: each only when the previous
// one of its kind has answered, so a slow unit never piles requests up.
func (m *Model) fetches() []tea.Cmd {
	var cmds []tea.Cmd
	due := func(k string, every time.Duration) bool {
		if m.inflight[k] || m.now.Sub(m.lastFetch[k]) < every {
			return false
		}
		m.inflight[k], m.lastFetch[k] = true, m.now
		return true
	}
	for i := range m.units {
		u := m.units[i]
		if due("status:"+u.name, 0) {
			cmds = append(cmds, m.statusCmd(u.name))
		}
		if due("events:"+u.name, 0) {
			cmds = append(cmds, m.eventsCmd(u.name, m.eventSeq[i], u.epoch))
		}
	}
	if due("events:lab", 0) {
		cmds = append(cmds, m.eventsCmd("lab", m.labSeq, 0))
	}
	hostsEvery := time.Second
	if m.cur == tabIndexHosts {
		hostsEvery = 0
	}
	if len(m.info.Hosts) > 0 && due("hosts", hostsEvery) {
		cmds = append(cmds, m.hostsCmd())
	}
	// A table waits for the first statuses: their counts say whether it
	// is small enough to read whole.
	if m.cur < len(m.tables) && m.statusRounds >= len(m.units) {
		t := m.tables[m.cur]
		if !m.inflight["tab:"+t.id] && m.now.Sub(m.lastFetch["tab:"+t.id]) >= tableEvery(t) {
			cmds = append(cmds, m.fetchTab(t))
		}
	}
	if m.cur == tabIndexTraffic && due("traffic", time.Second) {
		cmds = append(cmds, m.trafficCmd())
	}
	if c := m.wireIfDue(); c != nil {
		cmds = append(cmds, c)
	}
	return cmds
}

// tableEvery slows the refresh of big tables: a whole table of thousands
// of entries is not worth reading ten times a second.
func tableEvery(t *tableTab) time.Duration {
	switch n := len(t.data.rows); {
	case t.data.paged:
		return 500 * time.Millisecond
	case n > 1000:
		return time.Second
	case n > 200:
		return 300 * time.Millisecond
	}
	return 0
}

func (m *Model) ctx(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(m.base, d)
}

func (m *Model) statusCmd(name string) tea.Cmd {
	src := m.src
	return func() tea.Msg {
		ctx, cancel := m.ctx(statusTimeout)
		defer cancel()
		st, err := src.Status(ctx, name)
		return statusMsg{unit: name, status: st, err: err}
	}
}

func (m *Model) eventsCmd(name string, since uint64, epoch int) tea.Cmd {
	src := m.src
	return func() tea.Msg {
		ctx, cancel := m.ctx(statusTimeout)
		defer cancel()
		var evs []api.Event
		var err error
		if name == "lab" {
			evs, err = src.LabEvents(ctx, since)
		} else {
			evs, err = src.UnitEvents(ctx, name, since)
		}
		return eventsMsg{unit: name, epoch: epoch, events: evs, err: err}
	}
}

func (m *Model) hostsCmd() tea.Cmd {
	src, hosts := m.src, m.info.Hosts
	return func() tea.Msg {
		ctx, cancel := m.ctx(fetchTimeout)
		defer cancel()
		out := hostsMsg{caches: map[string][]topo.Neighbor{}, errs: map[string]error{}}
		for _, h := range hosts {
			n, err := src.HostARP(ctx, h.Name)
			if err != nil {
				out.errs[h.Name] = err
				continue
			}
			out.caches[h.Name] = n
		}
		return out
	}
}

func (m *Model) trafficCmd() tea.Cmd {
	src := m.src
	return func() tea.Msg {
		ctx, cancel := m.ctx(fetchTimeout)
		defer cancel()
		f, err := src.Traffic(ctx)
		return trafficMsg{flows: f, err: err}
	}
}

// fetchTab reads the table a tab shows, of the active and the standby.
func (m *Model) fetchTab(t *tableTab) tea.Cmd {
	ai := m.activeIdx()
	req := tableReq{tab: t.id, active: m.units[ai].name, standby: m.units[1-ai].name, macs: m.info.MACs}
	if !m.units[ai].ok && m.units[1-ai].ok {
		// Nobody active answers (both dead or between roles): show what
		// the living unit holds.
		req.active, req.standby = req.standby, req.active
	}
	if t.pageable {
		big := t.data.total > wholeLimit || t.data.standbyTotal > wholeLimit
		for _, u := range m.units {
			c := u.status.Counts.Conns
			if t.id == tabXlate {
				c = u.status.Counts.Xlates
			}
			big = big || (u.ok && c > wholeLimit)
		}
		if big {
			req.paged, req.offset, req.limit = true, t.offset, t.pageRows()
		}
	}
	m.inflight["tab:"+t.id], m.lastFetch["tab:"+t.id] = true, m.now
	src := m.src
	return func() tea.Msg {
		ctx, cancel := m.ctx(fetchTimeout)
		defer cancel()
		return tableMsg{req: req, data: fetchTable(ctx, src, req)}
	}
}

// action runs one thing on the lab and reports what was done.
func (m *Model) action(say string, do func(ctx context.Context) (string, error)) tea.Cmd {
	m.say(say, false)
	return func() tea.Msg {
		ctx, cancel := m.ctx(actionTimeout)
		defer cancel()
		r, err := do(ctx)
		return actionMsg{result: r, err: err}
	}
}

func (m *Model) inject(f lab.Fault) tea.Cmd {
	src := m.src
	return m.action(f.String()+"…", func(ctx context.Context) (string, error) { return src.Inject(ctx, f) })
}

func (m *Model) quit() tea.Cmd {
	m.quitting = true
	return tea.Quit
}

// refreshTab reads a newly shown tab at once rather than at the next tick.
func (m *Model) refreshTab() tea.Cmd {
	// A table waits for the first statuses: their counts say whether it
	// is small enough to read whole.
	if m.cur < len(m.tables) && m.statusRounds >= len(m.units) {
		t := m.tables[m.cur]
		if !m.inflight["tab:"+t.id] {
			return m.fetchTab(t)
		}
	}
	return nil
}

func (m *Model) currentFilter() string {
	if m.cur < len(m.tables) {
		return m.tables[m.cur].filter
	}
	return m.timeline.filter
}

func (m *Model) applyFilter(f string) {
	switch {
	case m.cur < len(m.tables):
		m.tables[m.cur].SetFilter(f)
	case m.cur == tabIndexTimeline:
		m.timeline.SetFilter(f)
	}
}

// Quitting reports whether the user asked to quit (the lab runs on).
func (m *Model) Quitting() bool { return m.quitting }
