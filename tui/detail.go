package tui

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/falab/falab/api"
	"github.com/falab/falab/render"
)

// The detail view (enter on a table row) shows one entry of both units
// side by side: every field of the active's entry and of the standby's
// copy. A connection gets more: its two tuples (real and mapped), its NAT
// mapping with the xlate entries that hold it on each unit, where it is
// (on both units, not on the standby, local only by policy) and what is
// known of when it was replicated. The view follows the row as the table
// is read again; esc or enter closes it.

// detail is the row opened with enter.
type detail struct {
	tab  *tableTab
	key  string // the row's key: found again in each new read
	snap row    // the row when opened, shown once it leaves the table
	// nat is the connection's xlates, read once when it was opened; nil
	// while being read (and for other tables).
	nat    *natFound
	natErr string
}

// natFound is the xlate entries of a connection's translation on each
// unit, from the first wholeLimit xlates read of each.
type natFound struct {
	active, standby         []api.Xlate
	readActive, totalActive int
	readStandby, totalSb    int
	standbyErr              string
}

// detailMsg answers the xlate read of an opened connection.
type detailMsg struct {
	key string
	nat natFound
	err error
}

// openDetail opens the row under the cursor of the current table tab. A
// connection's xlates are read in a command, off the UI loop.
func (m *Model) openDetail() tea.Cmd {
	if m.cur >= len(m.tables) {
		return nil
	}
	t := m.tables[m.cur]
	r := t.selected()
	if r == nil {
		return nil
	}
	m.detail, m.mode = &detail{tab: t, key: r.key, snap: *r}, modeDetail
	c, ok := r.active.(*api.Conn)
	if !ok {
		c, ok = r.standby.(*api.Conn)
	}
	if !ok {
		return nil
	}
	src, active, standby, conn, k := m.src, t.data.active, t.data.standby, *c, r.key
	return func() tea.Msg {
		ctx, cancel := m.ctx(fetchTimeout)
		defer cancel()
		var out natFound
		a, err := src.Xlates(ctx, active, 0, wholeLimit)
		if err != nil {
			return detailMsg{key: k, err: err}
		}
		out.active, out.readActive, out.totalActive = xlatesOf(&conn, a.Entries), len(a.Entries), a.Total
		if standby != "" {
			s, err := src.Xlates(ctx, standby, 0, wholeLimit)
			if err != nil {
				out.standbyErr = err.Error()
			}
			out.standby, out.readStandby, out.totalSb = xlatesOf(&conn, s.Entries), len(s.Entries), s.Total
		}
		return detailMsg{key: k, nat: out}
	}
}

// onDetailMsg takes the xlates of the connection still open.
func (m *Model) onDetailMsg(msg detailMsg) {
	if m.detail == nil || m.detail.key != msg.key {
		return
	}
	if msg.err != nil {
		m.detail.natErr = msg.err.Error()
		return
	}
	m.detail.nat = &msg.nat
}

// onDetailKey: esc or enter closes the view (ctrl+c quits); other keys do
// nothing here, so none reaches the lab by a slip.
func (m *Model) onDetailKey(msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "ctrl+c":
		return m.quit()
	case "esc", "enter":
		m.mode, m.detail = modeNormal, nil
	}
	return nil
}

// xlatesOf are the xlates that translate connection c: its source (the
// real source is the real side, or the reply's destination the mapped
// side) or its destination (the reply's source is the real side). An
// address-only xlate (static) matches on addresses.
func xlatesOf(c *api.Conn, xs []api.Xlate) []api.Xlate {
	origSrc, _ := netip.ParseAddrPort(c.OrigSrc)
	origDst, _ := netip.ParseAddrPort(c.OrigDst)
	replySrc, _ := netip.ParseAddrPort(c.ReplySrc)
	replyDst, _ := netip.ParseAddrPort(c.ReplyDst)
	same := func(x, a netip.AddrPort) bool {
		if x.Port() == 0 {
			return x.Addr() == a.Addr()
		}
		return x == a
	}
	var out []api.Xlate
	for _, x := range xs {
		if x.Protocol != "" && x.Protocol != c.Protocol {
			continue
		}
		src := origSrc != replyDst && (same(x.Real, origSrc) || same(x.Mapped, replyDst))
		dst := origDst != replySrc && same(x.Real, replySrc) && same(x.Mapped, origDst)
		if src || dst {
			out = append(out, x)
		}
	}
	return out
}

// detailRow is the opened row as last read, and whether it is gone.
func (d *detail) row() (r *row, gone bool) {
	for i := range d.tab.data.rows {
		if d.tab.data.rows[i].key == d.key {
			return &d.tab.data.rows[i], false
		}
	}
	return &d.snap, true
}

// markText says in words where a row is.
func (m *Model) markText(mk mark) string {
	switch mk {
	case markBoth:
		return "on both units"
	case markMissing:
		return "not on the standby"
	case markExtra:
		return "only on the standby"
	case markUnknown:
		return "the standby's copy was not checked (it does not answer, or the entry is beyond the window read around this page)"
	case markLocal:
		return "local only (" + m.localReason() + ")"
	}
	return "not replicated: each unit's own"
}

// localReason is why policy keeps a connection on the active alone.
func (m *Model) localReason() string {
	if u := &m.units[m.activeIdx()]; u.ok && u.status.HTTPReplication {
		return "replication policy"
	}
	return "http_replication off"
}

// detailView draws the opened row.
func (m *Model) detailView(h int) string {
	d := m.detail
	if d == nil {
		return block(nil, m.width, h)
	}
	r, gone := d.row()
	lines := []string{styleTitle.Render(d.tab.title+" detail") + styleDim.Render("  (esc or enter closes)")}
	where := m.markText(r.mark)
	if d.tab.staleLines() > 0 && r.mark != markNone {
		where = "one unit does not answer: its side is stale"
	}
	if gone {
		where = styleWarn.Render("no longer in the table (as last read; closed or aged out?)")
	}
	lines = append(lines, ansi.Wrap(styleDim.Render("where: ")+where, m.width, ""))
	names := [2]string{d.tab.data.active + " (active)", d.tab.data.standby + " (standby)"}
	a, _ := r.active.(*api.Conn)
	s, _ := r.standby.(*api.Conn)
	var skip map[string]bool
	if a != nil || s != nil {
		lines = append(lines, m.connDetail(a, s)...)
		if a != nil {
			lines = append(lines, m.replicatedLines(r, s)...)
		}
		// The tuples are above; the table is what each unit has of its own.
		skip = connTupleFields
	} else {
		lines = append(lines, "")
	}
	lines = append(lines, m.sideBySide(names, r, skip)...)
	return block(lines, m.width, h)
}

// connDetail is a connection's two tuples and its NAT mapping. a or s may
// be nil (not both).
func (m *Model) connDetail(a, s *api.Conn) []string {
	c := a
	if c == nil {
		c = s
	}
	label := func(s string) string { return styleDim.Render(fmt.Sprintf("%-8s", s)) }
	lines := []string{
		label("real") + fmt.Sprintf("%s %s %s → %s", c.Protocol, c.InInterface, c.OrigSrc, c.OrigDst),
		label("mapped") + fmt.Sprintf("%s %s %s → %s", c.Protocol, c.OutInterface, c.ReplyDst, c.ReplySrc),
	}
	var nat []string
	if c.OrigSrc != c.ReplyDst {
		nat = append(nat, "source "+c.OrigSrc+" → "+c.ReplyDst)
	}
	if c.OrigDst != c.ReplySrc {
		nat = append(nat, "destination "+c.OrigDst+" → "+c.ReplySrc)
	}
	if len(nat) == 0 {
		nat = append(nat, "none (addresses not translated)")
	}
	lines = append(lines, label("NAT")+strings.Join(nat, "; "))
	d := m.detail
	switch {
	case d.natErr != "":
		lines = append(lines, label("xlate")+styleErr.Render(d.natErr))
	case d.nat == nil:
		lines = append(lines, label("xlate")+styleDim.Render("reading…"))
	case len(nat) == 1 && strings.HasPrefix(nat[0], "none"):
	default:
		lines = append(lines, m.xlateLines(label("xlate"), d.nat)...)
	}
	return lines
}

// xlateLines says which xlate holds the translation on each unit.
func (m *Model) xlateLines(label string, n *natFound) []string {
	d := m.detail
	one := func(unit string, xs []api.Xlate, read, total int) string {
		if len(xs) == 0 {
			s := unit + ": none found"
			if read < total {
				s += fmt.Sprintf(" in the first %d of %d xlates", read, total)
			}
			return s
		}
		var parts []string
		for _, x := range xs {
			c := render.Xlates.Cells(&x)
			parts = append(parts, fmt.Sprintf("%s %s %s → %s %s (%s conns, age %s)", c[0], c[2], c[3], c[4], c[5], c[6], c[7]))
		}
		return unit + ": " + strings.Join(parts, "; ")
	}
	out := []string{label + one(d.tab.data.active, n.active, n.readActive, n.totalActive)}
	switch {
	case d.tab.data.standby == "":
	case n.standbyErr != "":
		out = append(out, strings.Repeat(" ", 8)+d.tab.data.standby+": "+styleErr.Render(n.standbyErr))
	default:
		out = append(out, strings.Repeat(" ", 8)+one(d.tab.data.standby, n.standby, n.readStandby, n.totalSb))
	}
	return out
}

// replicatedLines is what is known of when a connection was replicated.
// The data plane keeps no time of applying an entry; a record carries the
// connection's creation and last-seen times, which the standby's copy
// keeps, and the state stream measures its lag.
func (m *Model) replicatedLines(r *row, s *api.Conn) []string {
	at := func(d time.Duration) string { return m.now.Add(-d).In(m.loc).Format("15:04:05.000") }
	var b strings.Builder
	switch {
	case s == nil:
		b.WriteString("no: " + m.markText(r.mark))
	default:
		fmt.Fprintf(&b, "created %s, carried to the standby; its last record stamped %s (last seen)", at(s.Age), at(s.Idle))
		if u := &m.units[m.activeIdx()]; u.ok && u.status.Replication.LagSamples > 0 {
			fmt.Fprintf(&b, "; stream lag p99 %s", u.status.Replication.LagP99.Round(time.Microsecond))
		}
		b.WriteString("; the standby's apply time is not recorded")
	}
	var out []string
	for i, l := range strings.Split(ansi.Wrap(b.String(), m.width-8, ""), "\n") {
		p := strings.Repeat(" ", 8)
		if i == 0 {
			p = styleDim.Render(fmt.Sprintf("%-8s", "repl"))
		}
		out = append(out, p+l)
	}
	return out
}

// connTupleFields are a connection's fields its tuples show.
var connTupleFields = map[string]bool{"protocol": true, "in interface": true, "out interface": true,
	"orig src": true, "orig dst": true, "reply src": true, "reply dst": true}

// sideBySide lists every field of the row's entry on both units but those
// in skip; ≠ marks a field whose values differ.
func (m *Model) sideBySide(names [2]string, r *row, skip map[string]bool) []string {
	const nameW = 16
	colW := max((m.width-nameW-2)/2, 10)
	head := styleColHead.Render(cell("", nameW, false) + "  " + cell(names[0], colW, false) + cell(names[1], colW, false))
	lines := []string{head}
	missing := "—"
	switch {
	case r.standby == nil && r.mark == markLocal:
		missing = "local only (" + m.localReason() + ")"
	case r.standby == nil && r.mark == markMissing:
		missing = "not on the standby"
	case r.standby == nil && r.mark == markUnknown:
		missing = "not checked"
	}
	af, sf := fields(r.active), fields(r.standby)
	if af == nil && sf == nil {
		// Rows built from cells only: show the columns.
		for i, c := range r.cells {
			if i < len(m.detail.tab.cols) {
				lines = append(lines, cell(m.detail.tab.cols[i].title, nameW, false)+"  "+c)
			}
		}
		return lines
	}
	base := af
	if base == nil {
		base = sf
	}
	for i, f := range base {
		if skip[f.name] {
			continue
		}
		av, sv := "not on the active", missing
		if af != nil {
			av = af[i].value
		}
		if sf != nil {
			sv = sf[i].value
		}
		diff := "  "
		if af != nil && sf != nil && av != sv {
			diff = styleWarn.Render("≠ ")
		}
		lines = append(lines, cell(f.name, nameW, false)+diff+cell(av, colW, false)+cell(sv, colW, false))
	}
	return lines
}

// field is one field of an entry, named as its JSON is.
type field struct{ name, value string }

// fields lists a struct's (or a pointer to one's) exported fields, nil for
// nil.
func fields(x any) []field {
	if x == nil {
		return nil
	}
	v := reflect.ValueOf(x)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return []field{{name: "value", value: fmt.Sprint(v.Interface())}}
	}
	t := v.Type()
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			name = f.Name
		}
		name = strings.ReplaceAll(strings.TrimSuffix(name, "_ns"), "_", " ")
		out = append(out, field{name: name, value: fieldValue(v.Field(i).Interface())})
	}
	return out
}

// fieldValue prints one field: durations short, booleans as yes/no, an
// unset address or empty text as —.
func fieldValue(x any) string {
	switch v := x.(type) {
	case time.Duration:
		return shortDur(v)
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case string:
		if v == "" {
			return render.None
		}
		return v
	case netip.Addr:
		if !v.IsValid() {
			return render.None
		}
	case netip.Prefix:
		if !v.IsValid() {
			return render.None
		}
	case netip.AddrPort:
		if !v.IsValid() {
			return render.None
		}
	}
	return fmt.Sprint(x)
}
