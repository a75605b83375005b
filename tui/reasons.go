package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// reasonsShown is how many of a unit's latest transitions the reasons view
// lists under its last change.
const reasonsShown = 4

// reasonsView shows whole what the header cuts to fit: the takeover
// banner's reason and each unit's last change with its reason, then the
// unit's latest transitions, every reason word-wrapped to the width. It
// reads the statuses the header already polls; any key closes it.
func (m *Model) reasonsView(h int) string {
	w := m.width
	lines := []string{styleTitle.Render("Reasons in full") + styleDim.Render("  (any key closes)")}
	wrap := func(indent, s string) {
		for _, l := range strings.Split(ansi.Wrap(s, w-len(indent), ""), "\n") {
			lines = append(lines, indent+l)
		}
	}
	if b := m.banner; b != nil {
		lines = append(lines, "", styleTitle.Render("Takeover"))
		what := "is taking over"
		if !b.activeAt.IsZero() {
			what = "took over"
		}
		wrap("  ", fmt.Sprintf("%s %s at %s: %s", b.unit, what, b.startAt.In(m.loc).Format("15:04:05.000"), b.reason))
	}
	for i := range m.units {
		u := &m.units[i]
		lines = append(lines, "", styleTitle.Render(u.name))
		if !u.seen {
			wrap("  ", "has not answered yet "+u.err)
			continue
		}
		st := &u.status
		if !u.ok {
			wrap("  ", fmt.Sprintf("does not answer (%s); what it said last:", u.err))
		}
		wrap("  ", fmt.Sprintf("%s since %s: %s", st.State, st.LastChange.In(m.loc).Format("15:04:05.000"), st.LastReason))
		hist := st.History[max(len(st.History)-reasonsShown, 0):]
		for j := len(hist) - 1; j >= 0; j-- {
			t := hist[j]
			if t.At.Equal(st.LastChange) && t.Reason == st.LastReason {
				continue // the last change, said above
			}
			wrap("    ", fmt.Sprintf("%s %s -> %s: %s", t.At.In(m.loc).Format("15:04:05.000"), t.From, t.To, t.Reason))
		}
	}
	return block(lines, w, h)
}
