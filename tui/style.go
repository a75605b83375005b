package tui

import (
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// Styles. Colours are the 16 ANSI ones so that the terminal's theme decides
// the exact shade and the UI reads on dark and light backgrounds alike.
var (
	styleTitle    = lipgloss.NewStyle().Bold(true)
	styleDim      = lipgloss.NewStyle().Foreground(lipgloss.BrightBlack)
	styleKey      = lipgloss.NewStyle().Bold(true)
	styleHelp     = lipgloss.NewStyle().Foreground(lipgloss.BrightBlack)
	styleErr      = lipgloss.NewStyle().Foreground(lipgloss.Red)
	styleOK       = lipgloss.NewStyle().Foreground(lipgloss.Green)
	styleWarn     = lipgloss.NewStyle().Foreground(lipgloss.Yellow)
	styleTabOn    = lipgloss.NewStyle().Bold(true).Reverse(true)
	styleTabOff   = lipgloss.NewStyle().Foreground(lipgloss.BrightBlack)
	styleColHead  = lipgloss.NewStyle().Bold(true).Underline(true)
	styleBanner   = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Black).Background(lipgloss.Yellow)
	styleFlash    = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Black).Background(lipgloss.Yellow)
	styleGateway  = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Cyan)
	styleMissing  = lipgloss.NewStyle().Foreground(lipgloss.Red)
	styleExtra    = lipgloss.NewStyle().Foreground(lipgloss.Yellow)
	styleSelected = lipgloss.NewStyle().Reverse(true)
)

// badge renders a unit state as a coloured block: Active green, Standby
// Ready blue, Bulk Sync yellow, Failed and unreachable red.
func badge(state string) string {
	bg := lipgloss.BrightBlack
	switch state {
	case "Active":
		bg = lipgloss.Green
	case "Just Active":
		bg = lipgloss.BrightGreen
	case "Standby Ready":
		bg = lipgloss.Blue
	case "Bulk Sync":
		bg = lipgloss.Yellow
	case "Failed", stateNoAnswer, stateFrozen:
		bg = lipgloss.Red
	case "Negotiation":
		bg = lipgloss.Magenta
	}
	return lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Black).Background(bg).Padding(0, 1).Render(state)
}

// stateNoAnswer is the badge of a unit whose API does not answer: killed,
// frozen, or not started.
const stateNoAnswer = "no answer"

// stateFrozen is the badge of a unit this TUI froze (z) that does not
// answer: the lab stopped it, it did not fail on its own.
const stateFrozen = "frozen (SIGSTOP)"

// fit cuts s (which may hold ANSI styles) to width cells and pads it with
// spaces to exactly width, so that every line of a view is one row.
func fit(s string, width int) string {
	if width <= 0 {
		return ""
	}
	w := ansi.StringWidth(s)
	if w > width {
		s = ansi.Truncate(s, width, "…")
		w = ansi.StringWidth(s)
	}
	return s + strings.Repeat(" ", width-w)
}

// cell cuts plain text to width (with an ellipsis) and pads it; right
// aligns numbers.
func cell(s string, width int, right bool) string {
	w := ansi.StringWidth(s)
	if w > width {
		return ansi.Truncate(s, width, "…")
	}
	if right {
		return strings.Repeat(" ", width-w) + s
	}
	return s + strings.Repeat(" ", width-w)
}

// block makes text exactly height lines of width cells.
func block(lines []string, width, height int) string {
	var sb strings.Builder
	for i := range height {
		if i > 0 {
			sb.WriteByte('\n')
		}
		l := ""
		if i < len(lines) {
			l = lines[i]
		}
		sb.WriteString(fit(l, width))
	}
	return sb.String()
}
