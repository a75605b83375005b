package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/falab/falab/api"
	"github.com/falab/falab/render"
)

// Smallest usable terminal; 80x24 is the size the layout is made for.
const (
	minWidth  = 60
	minHeight = 16
	// wideWidth is where tab titles get their numbers and full names.
	wideWidth = 110
)

// View renders the screen (the alternate screen: the shell's scrollback is
// left as it was).
func (m *Model) View() tea.View {
	v := tea.NewView(m.Render())
	v.AltScreen = true
	v.WindowTitle = "falab " + m.info.Name
	return v
}

// headerLines is the header's height: title and badges, health, the wire
// check (when the lab has hosts with a gateway), last change, and the
// takeover banner when there is one.
func (m *Model) headerLines() int {
	n := 3
	if m.wire.enabled {
		n++
	}
	if m.banner != nil {
		n++
	}
	return n
}

// bodyHeight is what is left for the current tab.
func (m *Model) bodyHeight() int { return max(m.height-m.headerLines()-1-2, 1) }

// resize gives every component its size.
func (m *Model) resize() {
	w, h := m.width, m.bodyHeight()
	for _, t := range m.tables {
		t.SetSize(w, h)
		t.clampScroll()
	}
	m.hosts.SetSize(w, h)
	m.timeline.SetSize(w, h)
	m.traffic.SetSize(w, h)
}

// Render is the screen as a string of exactly height lines of width cells.
func (m *Model) Render() string {
	if m.width < minWidth || m.height < minHeight {
		return block([]string{fmt.Sprintf("falab: the terminal is %dx%d; the TUI needs %dx%d", m.width, m.height, minWidth, minHeight)}, m.width, m.height)
	}
	m.resize()
	var sb strings.Builder
	for _, l := range m.header() {
		sb.WriteString(fit(l, m.width))
		sb.WriteByte('\n')
	}
	sb.WriteString(fit(m.tabBar(), m.width))
	sb.WriteByte('\n')
	sb.WriteString(m.body())
	sb.WriteByte('\n')
	f := m.footer()
	sb.WriteString(fit(f[0], m.width))
	sb.WriteByte('\n')
	sb.WriteString(fit(f[1], m.width))
	return sb.String()
}

// header is the lab and both units at a glance.
func (m *Model) header() []string {
	ai := m.activeIdx()
	var l1 strings.Builder
	l1.WriteString(styleTitle.Render("falab " + m.info.Name))
	for i := range m.units {
		u := &m.units[i]
		l1.WriteString("   ")
		l1.WriteString(u.name)
		if u.seen {
			l1.WriteString(styleDim.Render(" " + u.status.Role))
		}
		l1.WriteString(" ")
		state := stateNoAnswer
		switch {
		case u.ok:
			state = u.status.State
		case !u.seen && u.err == "":
			state = "…"
		case m.frozen[u.name]:
			state = stateFrozen
		}
		l1.WriteString(badge(state))
	}
	if m.units[0].ok && m.units[1].ok && m.units[0].status.Active && m.units[1].status.Active {
		l1.WriteString("  " + styleErr.Render("both units active"))
	}
	lines := []string{l1.String(), m.health(ai)}
	if m.wire.enabled {
		lines = append(lines, m.wireLine())
	}
	lines = append(lines, m.lastChange(ai))
	if m.banner != nil {
		lines = append(lines, m.bannerLine())
	}
	return lines
}

// health is hello ages, replication state and table sizes.
func (m *Model) health(ai int) string {
	var parts []string
	var hellos []string
	// The replication lag is left out when the line would not fit: the
	// hello ages and the counts matter more.
	lagAt, lag := -1, ""
	for i := range m.units {
		u, p := &m.units[i], &m.units[1-i]
		if !u.ok {
			continue
		}
		s := p.name + "→" + u.name + " "
		switch {
		case u.status.PeerLastHeard.IsZero():
			s += "never"
		default:
			age := m.now.Sub(u.status.PeerLastHeard)
			txt := shortDur(age)
			if age > time.Second {
				txt = styleErr.Render(txt)
			}
			s += txt
		}
		hellos = append(hellos, s)
	}
	if len(hellos) > 0 {
		// An age, not a period: how long ago each unit last heard its
		// peer's hello (peer→unit).
		parts = append(parts, "hello age "+strings.Join(hellos, " "))
	} else {
		parts = append(parts, styleErr.Render("no unit answers"))
	}
	if a := &m.units[ai]; a.ok && a.status.Active {
		r := a.status.Replication
		var s string
		lagAt = len(parts)
		switch {
		case !r.Connected:
			s = styleWarn.Render("repl: no standby")
		case r.InBulk:
			s = styleWarn.Render("repl: bulk sync")
		case r.Synced:
			s = styleOK.Render("repl: in step")
		default:
			s = "repl: streaming"
		}
		if r.LagSamples > 0 {
			lag = " p99 " + r.LagP99.Round(time.Microsecond).String()
		}
		if r.QueueDepth > 0 {
			s += fmt.Sprintf(" queue %d", r.QueueDepth)
		}
		parts = append(parts, s)
	}
	if a, s := &m.units[ai], &m.units[1-ai]; a.ok {
		c := fmt.Sprintf("conns %d", a.status.Counts.Conns)
		x := fmt.Sprintf("xl %d", a.status.Counts.Xlates)
		if s.ok {
			c += fmt.Sprintf("/%d", s.status.Counts.Conns)
			x += fmt.Sprintf("/%d", s.status.Counts.Xlates)
		}
		parts = append(parts, c+" "+x)
	}
	if lagAt >= 0 {
		with := slices.Clone(parts)
		with[lagAt] += lag
		if l := strings.Join(with, " · "); ansi.StringWidth(l) <= m.width {
			return l
		}
	}
	return strings.Join(parts, " · ")
}

// lastChange is the latest role change of the unit shown as active.
func (m *Model) lastChange(ai int) string {
	u := &m.units[ai]
	if !u.ok {
		for i := range m.units {
			if m.units[i].ok {
				u = &m.units[i]
			}
		}
	}
	if !u.ok {
		if m.units[ai].err != "" {
			return styleErr.Render(m.units[ai].err)
		}
		return styleDim.Render("waiting for the units to answer…")
	}
	st := &u.status
	return styleDim.Render("last change ") + st.LastChange.In(m.loc).Format("15:04:05.000") + " " + u.name + ": " + st.LastReason
}

// bannerLine announces the latest takeover, with how long it took from
// its first sign (or from leaving standby, when no sign was seen) to
// Active.
func (m *Model) bannerLine() string {
	b := m.banner
	var s string
	if b.activeAt.IsZero() {
		s = fmt.Sprintf(" %s is taking over: %s ", b.unit, b.reason)
	} else {
		from := b.startAt
		if !b.signAt.IsZero() && b.signAt.Before(from) {
			from = b.signAt
		}
		s = fmt.Sprintf(" %s took over in %s: %s ", b.unit, millis(b.activeAt.Sub(from)), b.reason)
	}
	ago := styleDim.Render(fmt.Sprintf(" %s ago", shortDur(m.now.Sub(b.startAt))))
	// The age and hint go after the reason; the reason is cut first.
	room := m.width - ansi.StringWidth(ago)
	if ansi.StringWidth(s) > room {
		s = ansi.Truncate(s, room-1, "…") + " "
	}
	return styleBanner.Render(s) + ago
}

// millis prints a takeover time: 0.8ms, 9.6ms, 11ms, 1.24s.
func millis(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// tabTitle is a tab's name, short on a narrow terminal.
func (m *Model) tabTitle(i int) string {
	wide := m.width >= wideWidth
	var title string
	switch {
	case i < len(m.tables):
		title = m.tables[i].short
		if wide {
			title = m.tables[i].title
		}
	case i == tabIndexHosts:
		title = "Hosts"
	case i == tabIndexTimeline:
		title = "Timeline"
	default:
		title = "Traffic"
	}
	if wide {
		title = fmt.Sprintf("%d %s", i+1, title)
	}
	return title
}

func (m *Model) tabBar() string {
	var sb strings.Builder
	for i := range numTabs {
		t := " " + m.tabTitle(i) + " "
		if i == m.cur {
			sb.WriteString(styleTabOn.Render(t))
		} else {
			sb.WriteString(styleTabOff.Render(t))
		}
	}
	return sb.String()
}

// body is the current tab, or the help or link picker over it.
func (m *Model) body() string {
	h := m.bodyHeight()
	switch m.mode {
	case modeHelp:
		return m.helpView(h)
	case modeLinks:
		return m.linksView(h)
	case modeRepl:
		return m.replView(h)
	case modeReasons:
		return m.reasonsView(h)
	case modeDetail:
		return m.detailView(h)
	}
	switch {
	case m.cur < len(m.tables):
		m.markStale(m.tables[m.cur])
		return m.tables[m.cur].Render()
	case m.cur == tabIndexHosts:
		return m.hosts.Render(m.now)
	case m.cur == tabIndexTimeline:
		return m.timeline.Render()
	}
	return m.traffic.Render()
}

func (m *Model) helpView(h int) string {
	lines := []string{styleTitle.Render("Keys") + styleDim.Render("  (any key closes)")}
	for _, sec := range m.keys.helpSections() {
		lines = append(lines, "", styleTitle.Render(sec.title))
		var row []string
		for _, b := range sec.keys {
			hp := b.Help()
			desc := hp.Desc
			if l, ok := longHelp[hp.Key]; ok {
				desc = l
			}
			row = append(row, fmt.Sprintf("%s %s", styleKey.Render(fmt.Sprintf("%-9s", hp.Key)), desc))
		}
		// Two bindings a line on a narrow terminal, more when wide.
		per := max(m.width/40, 1)
		for i := 0; i < len(row); i += per {
			var l strings.Builder
			for _, c := range row[i:min(i+per, len(row))] {
				l.WriteString(fit(c, 40))
			}
			lines = append(lines, l.String())
		}
	}
	return block(lines, m.width, h)
}

// replView is the replication view: the ASA's "Stateful Failover Logical
// Update Statistics" of the active unit, with each table's entries on both
// units, then the tables that stay on each unit and why. It reads the
// statuses the header already polls, so it is live and costs no fetch.
func (m *Model) replView(h int) string {
	ai := m.activeIdx()
	this, other := m.units[ai].status, m.units[1-ai].status
	lines := []string{styleTitle.Render("Replication") + styleDim.Render("  (any key closes)")}
	if !m.units[ai].ok {
		this = api.Status{Unit: m.units[ai].name}
	}
	if !m.units[1-ai].ok {
		other = api.Status{Unit: m.units[1-ai].name}
	}
	var b strings.Builder
	if this.PID == 0 {
		b.WriteString("no unit answers\n")
	} else if err := render.ReplicationTables(&b, this, other); err != nil {
		b.WriteString(err.Error())
	}
	for _, l := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		lines = append(lines, expandTabs(strings.TrimPrefix(l, "\t")))
	}
	return block(lines, m.width, h)
}

// expandTabs replaces tabs with spaces to the next multiple of 8 columns,
// as a terminal would, so the view fits the width it measures.
func expandTabs(s string) string {
	var b strings.Builder
	col := 0
	for _, r := range s {
		if r == '\t' {
			n := 8 - col%8
			b.WriteString(strings.Repeat(" ", n))
			col += n
			continue
		}
		b.WriteRune(r)
		col++
	}
	return b.String()
}

func (m *Model) linksView(h int) string {
	lines := []string{styleTitle.Render("Set a link down or up") + styleDim.Render("  ↑↓ choose · enter toggles · esc cancels")}
	first := max(m.pick-(h-2), 0)
	for i := first; i < len(m.info.Links) && len(lines) < h; i++ {
		end := m.info.Links[i]
		state := styleOK.Render("up")
		if m.linksDown[end] {
			state = styleErr.Render("down")
		}
		l := fmt.Sprintf("  %-24s ", end) + state
		if i == m.pick {
			l = styleSelected.Render(fmt.Sprintf("▸ %-24s ", end)) + state
		}
		lines = append(lines, l)
	}
	return block(lines, m.width, h)
}

// footer is two lines: the current tab's keys (or a message, or the
// filter being typed), then the keys that act on the lab.
func (m *Model) footer() [2]string {
	var first string
	switch {
	case m.mode == modeFilter:
		first = styleKey.Render("/") + m.draft + "▏" + styleDim.Render("  enter keeps · esc clears")
	case m.mode == modeConfirm && m.confirm != nil:
		first = styleErr.Render(m.confirm.what+"?") + " " + styleKey.Render("y") + styleDim.Render(" yes · any other key: no")
	case m.msg != "" && m.now.Sub(m.msgAt) < messageFor:
		if m.msgErr {
			first = styleErr.Render(m.msg)
		} else {
			first = styleOK.Render(m.msg)
		}
	default:
		var bs []key.Binding
		switch {
		case m.cur < len(m.tables):
			bs = m.tables[m.cur].ShortHelp(m.keys)
		case m.cur == tabIndexHosts:
			bs = m.hosts.ShortHelp(m.keys)
		case m.cur == tabIndexTimeline:
			bs = m.timeline.ShortHelp(m.keys)
		default:
			bs = m.traffic.ShortHelp(m.keys)
		}
		first = helpLine(bs, m.width)
	}
	return [2]string{first, helpLine(m.keys.actionKeys(), m.width)}
}
