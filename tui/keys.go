package tui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/lipgloss/v2"
)

// keyMap is every key the TUI answers, with its help text. j/k and the
// arrows move, as in vi, k9s and lazygit; the keys that act on the lab are
// other letters (kill is K, shift-k), and those that take a unit or a link
// away ask y/n in the status line first (input.go), so that neither a
// habit nor a slip reaches the lab.
type keyMap struct {
	NextTab, PrevTab          key.Binding
	Up, Down, PageUp, PageDn  key.Binding
	Home, End                 key.Binding
	Filter, Sort              key.Binding
	Failover, Kill, Freeze    key.Binding
	Thaw, Restart, Link, Cut  key.Binding
	PowerOff                  key.Binding
	Reset, Dismiss, Help      key.Binding
	Quit, Enter, Cancel, Tabs key.Binding
	Repl, Reasons             key.Binding
}

func defaultKeys() keyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return keyMap{
		NextTab:  b([]string{"tab", "right"}, "tab/→", "next tab"),
		PrevTab:  b([]string{"shift+tab", "left"}, "⇧tab/←", "previous tab"),
		Tabs:     b([]string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "0"}, "1-9,0", "go to tab (0 is the tenth)"),
		Up:       b([]string{"up", "k"}, "↑/k", "up"),
		Down:     b([]string{"down", "j"}, "↓/j", "down"),
		PageUp:   b([]string{"pgup"}, "pgup", "page up"),
		PageDn:   b([]string{"pgdown", "space"}, "pgdn", "page down"),
		Home:     b([]string{"home"}, "home", "first row"),
		End:      b([]string{"end"}, "end", "last row"),
		Filter:   b([]string{"/"}, "/", "filter"),
		Sort:     b([]string{"s"}, "s", "cycle sort"),
		Failover: b([]string{"f"}, "f", "failover"),
		Kill:     b([]string{"K"}, "K", "kill"),
		PowerOff: b([]string{"P"}, "P", "power off"),
		Freeze:   b([]string{"z"}, "z", "freeze"),
		Thaw:     b([]string{"t"}, "t", "thaw"),
		Restart:  b([]string{"r"}, "r", "restart"),
		Link:     b([]string{"l"}, "l", "link"),
		Cut:      b([]string{"c"}, "c", "cut"),
		Reset:    b([]string{"x"}, "x", "failover reset"),
		Dismiss:  b([]string{"esc"}, "esc", "dismiss"),
		Help:     b([]string{"?"}, "?", "help"),
		Repl:     b([]string{"v"}, "v", "replication view"),
		Reasons:  b([]string{"i"}, "i", "reasons in full"),
		Quit:     b([]string{"q", "ctrl+c"}, "q", "quit"),
		Enter:    b([]string{"enter"}, "enter", "choose"),
		Cancel:   b([]string{"esc"}, "esc", "cancel"),
	}
}

// longHelp is the `?` screen's fuller description of a key, where the
// footer's word is too short to say it.
var longHelp = map[string]string{
	"f":   "make the standby active (y/n)",
	"K":   "kill the active: SIGKILL (y/n)",
	"z":   "freeze active: SIGSTOP (y/n)",
	"P":   "power off the active (y/n)",
	"t":   "thaw a frozen unit (SIGCONT)",
	"r":   "restart a dead unit",
	"l":   "set a link down (y/n) or up",
	"c":   "cut failover link (y/n), heal",
	"x":   "failover reset a Failed unit",
	"q":   "quit; the lab keeps running",
	"esc": "dismiss banner, clear filter",
	"v":   "replication: what is, what is not",
	"i":   "reasons in full, both units",
}

// actionKeys are the keys that act on the lab, shown on every screen.
func (k keyMap) actionKeys() []key.Binding {
	return []key.Binding{k.Failover, k.Kill, k.Freeze, k.Thaw, k.Restart, k.Link, k.Cut, k.Help, k.Quit}
}

// helpLine renders bindings as "k desc  k desc", dropping whole bindings
// that do not fit in width.
func helpLine(bs []key.Binding, width int) string {
	var sb strings.Builder
	used := 0
	for _, b := range bs {
		h := b.Help()
		w := lipgloss.Width(h.Key) + 1 + lipgloss.Width(h.Desc)
		sep := 0
		if used > 0 {
			sep = 2
		}
		if used+sep+w > width {
			break
		}
		if sep > 0 {
			sb.WriteString("  ")
		}
		sb.WriteString(styleKey.Render(h.Key))
		sb.WriteString(" ")
		sb.WriteString(styleHelp.Render(h.Desc))
		used += sep + w
	}
	return sb.String()
}

// helpSections is the `?` screen: every key, by what it is for.
func (k keyMap) helpSections() []struct {
	title string
	keys  []key.Binding
} {
	return []struct {
		title string
		keys  []key.Binding
	}{
		{"Act on the lab (y confirms, any other key cancels)", []key.Binding{k.Failover, k.Kill, k.Freeze, k.PowerOff, k.Thaw, k.Restart, k.Link, k.Cut, k.Reset}},
		{"Move", []key.Binding{
			b2("tab/⇧tab", "next/previous tab"), k.Tabs, b2("↑↓/k j", "move the row cursor"),
			b2("pgup/pgdn", "scroll a page"), b2("home/end", "first/last row"),
			b2("enter", "row detail, both units"),
		}},
		{"Tables and program", []key.Binding{k.Filter, k.Sort, k.Repl, k.Reasons, k.Dismiss, k.Help, k.Quit}},
	}
}

// b2 is a binding shown on the help screen only (its keys are bound
// elsewhere, one by one).
func b2(k, desc string) key.Binding { return key.NewBinding(key.WithHelp(k, desc)) }
