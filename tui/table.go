package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// mark says where a row of a replicated table is.
type mark uint8

const (
	markNone    mark = iota // the table is not replicated: no mark
	markBoth                // on the active and on the standby
	markMissing             // on the active, missing on the standby
	markExtra               // only on the standby
	markUnknown             // the standby's copy could not be checked
	markLocal               // not replicated by policy: no standby copy, by design
)

func (m mark) String() string {
	switch m {
	case markBoth:
		return "✓"
	case markMissing:
		return "✗"
	case markExtra:
		return "+"
	case markUnknown:
		return "?"
	case markLocal:
		return "L"
	}
	return " "
}

func (m mark) render() string {
	switch m {
	case markBoth:
		return styleOK.Render(m.String())
	case markMissing:
		return styleMissing.Render(m.String())
	case markExtra:
		return styleExtra.Render(m.String())
	case markUnknown, markLocal:
		return styleDim.Render(m.String())
	}
	return " "
}

// column is one column of a table tab.
type column struct {
	title string
	width int
	right bool // numbers
	wide  bool // shown only when the terminal has room
}

// row is one merged row: an entry of the active, of the standby, or of both.
type row struct {
	key   string
	mark  mark
	cells []string // one per column
	hay   string   // lower-case text the filter searches
	// active and standby are the units' own entries (*api.Conn, ...),
	// nil where a unit has none: what the detail view (enter) shows.
	active, standby any
}

// tableData is one fetched and merged table, built in a tea.Cmd (off the
// UI loop) and handed to the tab whole.
type tableData struct {
	rows         []row
	total        int // entries on the active
	standbyTotal int // entries on the standby (-1: it did not answer)
	paged        bool
	offset       int // paged: the active's offset of rows[0]
	active       string
	standby      string
	activeErr    string
	standbyErr   string
}

// tableTab shows one of a unit's tables with the standby's copy beside it.
// It is a component: SetSize, ShortHelp, key handling and Render. Not safe
// for concurrent use; the Bubble Tea loop owns it.
type tableTab struct {
	id, title, short string
	cols             []column
	replicated       bool   // rows carry ✓ ✗ + marks
	note             string // shown above the rows
	pageable         bool   // conns and xlates: fetched by pages when huge

	// staleActive and staleStandby are the notes of a side whose unit no
	// longer answers (stale.go); "" while it answers.
	staleActive, staleStandby string

	data   tableData
	loaded bool
	shown  []int // indexes into data.rows after filter and sort
	scroll int   // first shown row on screen (whole tables)
	cursor int   // the row cursor: an index into shown, on screen
	offset int   // paged tables: the active's offset wanted

	filter  string
	sortCol int // -1: table order
	sortAsc bool

	width, height int
}

// SetSize sets the area the tab draws in.
func (t *tableTab) SetSize(w, h int) { t.width, t.height = w, h }

// ShortHelp is the tab's own keys.
func (t *tableTab) ShortHelp(k keyMap) []key.Binding {
	return []key.Binding{k.Filter, k.Sort, b2("enter", "detail"), k.PageDn, k.PageUp, k.NextTab}
}

// pageRows is how many rows fit under the note, column heads and summary.
func (t *tableTab) pageRows() int {
	n := t.height - 2 - t.staleLines()
	if t.note != "" {
		n--
	}
	return max(n, 1)
}

// setData takes a new fetch result, keeping filter, sort and scroll.
func (t *tableTab) setData(d tableData) {
	t.data = d
	t.loaded = true
	t.refilter()
}

// refilter recomputes the shown rows from filter and sort.
func (t *tableTab) refilter() {
	t.shown = t.shown[:0]
	f := strings.ToLower(t.filter)
	for i := range t.data.rows {
		if f == "" || strings.Contains(t.data.rows[i].hay, f) {
			t.shown = append(t.shown, i)
		}
	}
	if t.sortCol >= 0 && t.sortCol < len(t.cols) {
		c, asc := t.sortCol, t.sortAsc
		rows := t.data.rows
		slices.SortStableFunc(t.shown, func(a, b int) int {
			r := compareCells(rows[a].cells[c], rows[b].cells[c])
			if !asc {
				r = -r
			}
			return r
		})
	}
	t.clampScroll()
}

func (t *tableTab) clampScroll() {
	t.scroll = min(t.scroll, max(len(t.shown)-t.pageRows(), 0))
	t.scroll = max(t.scroll, 0)
	t.cursor = min(max(t.cursor, t.scroll), t.scroll+t.pageRows()-1, len(t.shown)-1)
	t.cursor = max(t.cursor, 0)
}

// selected is the row under the cursor, nil when no row is shown.
func (t *tableTab) selected() *row {
	if t.cursor < 0 || t.cursor >= len(t.shown) {
		return nil
	}
	return &t.data.rows[t.shown[t.cursor]]
}

// compareCells orders numbers as numbers and everything else as text.
func compareCells(a, b string) int {
	fa, ea := strconv.ParseFloat(a, 64)
	fb, eb := strconv.ParseFloat(b, 64)
	if ea == nil && eb == nil {
		return cmp.Compare(fa, fb)
	}
	return strings.Compare(a, b)
}

// SetFilter applies a filter (a case-insensitive substring of any cell).
func (t *tableTab) SetFilter(f string) {
	t.filter = f
	t.scroll = 0
	t.refilter()
}

// CycleSort moves to the next sort: table order, then each column
// ascending and descending.
func (t *tableTab) CycleSort() {
	switch {
	case t.sortCol < 0:
		t.sortCol, t.sortAsc = 0, true
	case t.sortAsc:
		t.sortAsc = false
	default:
		t.sortCol, t.sortAsc = t.sortCol+1, true
		if t.sortCol >= len(t.cols) {
			t.sortCol = -1
		}
	}
	t.refilter()
}

// HandleKey moves the row cursor, scrolling to keep it on screen. It
// reports whether a paged table needs another page fetched: a paged table
// holds one screen of rows, so the cursor moves within it and the page
// moves under it at its edges.
func (t *tableTab) HandleKey(msg tea.KeyPressMsg, k keyMap) (refetch bool) {
	n := t.pageRows()
	if t.data.paged {
		old := t.offset
		last := max(t.data.total-n, 0)
		switch {
		case key.Matches(msg, k.PageDn):
			t.offset = min(t.offset+n, last)
		case key.Matches(msg, k.PageUp):
			t.offset = max(t.offset-n, 0)
		case key.Matches(msg, k.Home):
			t.offset, t.cursor = 0, 0
		case key.Matches(msg, k.End):
			t.offset, t.cursor = last, n-1
		case key.Matches(msg, k.Down):
			if t.cursor < min(n, len(t.shown))-1 {
				t.cursor++
			} else {
				t.offset = min(t.offset+1, last)
			}
		case key.Matches(msg, k.Up):
			if t.cursor > 0 {
				t.cursor--
			} else {
				t.offset = max(t.offset-1, 0)
			}
		}
		t.clampScroll()
		return t.offset != old
	}
	switch {
	case key.Matches(msg, k.PageDn):
		t.scroll += n
		t.cursor += n
	case key.Matches(msg, k.PageUp):
		t.scroll -= n
		t.cursor -= n
	case key.Matches(msg, k.Home):
		t.scroll, t.cursor = 0, 0
	case key.Matches(msg, k.End):
		t.scroll, t.cursor = len(t.shown), len(t.shown)-1
	case key.Matches(msg, k.Down):
		t.cursor++
	case key.Matches(msg, k.Up):
		t.cursor--
	}
	// The screen follows the cursor.
	t.cursor = min(max(t.cursor, 0), max(len(t.shown)-1, 0))
	if t.cursor < t.scroll {
		t.scroll = t.cursor
	}
	if t.cursor >= t.scroll+n {
		t.scroll = t.cursor - n + 1
	}
	t.clampScroll()
	return false
}

// visibleCols chooses the columns that fit: every narrow column, then the
// wide ones in order while there is room.
func (t *tableTab) visibleCols() []int {
	used := 0
	var out []int
	for i, c := range t.cols {
		if !c.wide {
			out = append(out, i)
			used += c.width + 1
		}
	}
	for i, c := range t.cols {
		if c.wide && used+c.width+1 <= t.width-2 {
			out = append(out, i)
			used += c.width + 1
		}
	}
	slices.Sort(out)
	return out
}

// Render draws the tab in exactly its size.
func (t *tableTab) Render() string {
	lines := make([]string, 0, t.height)
	if t.note != "" {
		lines = append(lines, styleWarn.Render(t.note))
	}
	if !t.loaded {
		lines = append(lines, styleDim.Render("loading "+t.title+"…"))
		return block(lines, t.width, t.height)
	}
	for _, s := range []string{t.staleActive, t.staleStandby} {
		if s != "" {
			lines = append(lines, styleWarn.Render(s))
		}
	}
	d := &t.data
	cols := t.visibleCols()
	var head strings.Builder
	head.WriteString("  ")
	for _, i := range cols {
		c := t.cols[i]
		title := c.title
		if i == t.sortCol {
			title += map[bool]string{true: "↑", false: "↓"}[t.sortAsc]
		}
		head.WriteString(styleColHead.Render(cell(title, c.width, c.right)))
		head.WriteByte(' ')
	}
	lines = append(lines, head.String())
	n := t.pageRows()
	switch {
	case d.activeErr != "":
		lines = append(lines, styleErr.Render(d.active+": "+d.activeErr))
	case len(t.shown) == 0 && t.filter != "":
		lines = append(lines, styleDim.Render("no entry matches /"+t.filter))
	case len(t.shown) == 0:
		lines = append(lines, styleDim.Render("(empty)"))
	}
	end := min(t.scroll+n, len(t.shown))
	var sb strings.Builder
	for si, ri := range t.shown[t.scroll:end] {
		r := &d.rows[ri]
		mk := r.mark
		if t.staleLines() > 0 && mk != markNone {
			mk = markUnknown // one side is old: no verdict
		}
		sb.Reset()
		sb.WriteString(mk.render())
		sb.WriteByte(' ')
		for _, i := range cols {
			c := t.cols[i]
			sb.WriteString(cell(r.cells[i], c.width, c.right))
			sb.WriteByte(' ')
		}
		line := sb.String()
		switch {
		case t.staleActive != "":
			line = styleDim.Render(ansi.Strip(line))
		case mk == markMissing:
			line = styleMissing.Render(line)
		case mk == markExtra:
			line = styleExtra.Render(line)
		}
		if t.scroll+si == t.cursor {
			line = styleSelected.Render(ansi.Strip(line))
		}
		lines = append(lines, line)
	}
	for len(lines) < t.height-1 {
		lines = append(lines, "")
	}
	lines = append(lines[:t.height-1], t.summary(end))
	return block(lines, t.width, t.height)
}

// summary is the line under the rows: sizes on both units, what is
// missing, which rows are on screen, sort and filter.
func (t *tableTab) summary(end int) string {
	d := &t.data
	var parts []string
	side := fmt.Sprintf("%s %d", d.active, d.total)
	if d.standbyErr != "" {
		side += " · " + d.standby + " " + styleErr.Render(stateNoAnswer)
	} else if d.standby != "" {
		side += fmt.Sprintf(" · %s %d", d.standby, d.standbyTotal)
	}
	parts = append(parts, side)
	if t.staleActive != "" || t.staleStandby != "" {
		parts = append(parts, styleWarn.Render("stale"))
	}
	if t.replicated && !d.paged && d.standbyErr == "" && t.staleActive == "" && t.staleStandby == "" {
		var miss, extra, local int
		for i := range d.rows {
			switch d.rows[i].mark {
			case markMissing:
				miss++
			case markExtra:
				extra++
			case markLocal:
				local++
			}
		}
		if local > 0 {
			parts = append(parts, styleDim.Render(fmt.Sprintf("L %d not replicated (policy)", local)))
		}
		if miss > 0 {
			parts = append(parts, styleMissing.Render(fmt.Sprintf("✗ %d missing", miss)))
		}
		if extra > 0 {
			parts = append(parts, styleExtra.Render(fmt.Sprintf("+ %d extra", extra)))
		}
		if miss == 0 && extra == 0 && len(d.rows) > 0 {
			parts = append(parts, styleOK.Render("✓ in step"))
		}
	}
	first, last, of := t.scroll+1, end, len(t.shown)
	if d.paged {
		first, last, of = d.offset+t.scroll+1, d.offset+end, d.total
	}
	if of == 0 {
		first = 0
	}
	parts = append(parts, fmt.Sprintf("rows %d-%d of %d", first, last, of))
	if d.paged {
		parts = append(parts, styleDim.Render("/ s: this page"))
	}
	if t.filter != "" {
		parts = append(parts, "/"+t.filter)
	}
	return strings.Join(parts, " · ")
}
