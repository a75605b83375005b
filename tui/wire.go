package tui

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/falab/falab/lab"
)

// The wire check: every host ARPs for its gateway from its namespace and
// counts who answers ([Source.GatewayAnswers]). The units' own status
// cannot show two actives answering at once (each sees only itself); the
// wire can, so the header carries the wire's word next to the units'.
const (
	// wireEvery is the pace of the check when nothing happens: each check
	// sends a few ARP requests per host and takes ~150ms a host, so it
	// runs far less often than the status reads.
	wireEvery = 2 * time.Second
	// wireMinGap spaces checks asked for by faults and role changes: one
	// failover is seen as several changes (each unit's state, then its
	// answering again) within a few hundred milliseconds.
	wireMinGap = 500 * time.Millisecond
	// wireTimeout bounds one check (all hosts, one after the other).
	wireTimeout = 5 * time.Second
	// wireKey is the check's entry in Model.inflight and Model.lastFetch.
	wireKey = "wire"
)

// wireMsg is the result of one wire check.
type wireMsg struct {
	answers []lab.WireAnswer
	err     error
	at      time.Time // when the check started (the model's clock)
}

// wireState is what the last wire check said. Not safe for concurrent use:
// the model owns it and the Hosts tab reads it.
type wireState struct {
	enabled bool // the lab has a host with a gateway to ask for
	checked bool // a check has answered
	answers []lab.WireAnswer
	err     string
	at      time.Time
	// due asks for a check as soon as none is running: a fault or role
	// change was seen, and the wire is most worth reading right then.
	due bool
}

func newWireState(info LabInfo) *wireState {
	w := &wireState{}
	for _, h := range info.Hosts {
		w.enabled = w.enabled || h.Gateway.IsValid()
	}
	return w
}

// set takes a check's result.
func (w *wireState) set(msg wireMsg) {
	w.checked, w.answers, w.at, w.err = true, msg.answers, msg.at, ""
	if msg.err != nil {
		w.err = msg.err.Error()
	}
}

// wireSoon asks for a check now, or as soon as the one running has
// answered and wireMinGap has passed since it started.
func (m *Model) wireSoon() tea.Cmd {
	m.wire.due = true
	return m.wireIfDue()
}

// wireIfDue starts a check when one is due and none is running: never two
// at once, so a slow check (a host namespace that hangs) never piles up.
func (m *Model) wireIfDue() tea.Cmd {
	w := m.wire
	if !w.enabled || m.inflight[wireKey] {
		return nil
	}
	since := m.now.Sub(m.lastFetch[wireKey])
	if w.checked && (since < wireMinGap || !w.due && since < wireEvery) {
		return nil
	}
	w.due = false
	m.inflight[wireKey], m.lastFetch[wireKey] = true, m.now
	src, at := m.src, m.now
	return func() tea.Msg {
		ctx, cancel := m.ctx(wireTimeout)
		defer cancel()
		a, err := src.GatewayAnswers(ctx)
		return wireMsg{answers: a, err: err, at: at}
	}
}

// onWire takes a check's result and starts the next one at once if a
// fault or role change came while it ran.
func (m *Model) onWire(msg wireMsg) tea.Cmd {
	delete(m.inflight, wireKey)
	m.wire.set(msg)
	if m.wire.due {
		return m.wireIfDue()
	}
	return nil
}

// wireShort says in a few words what the wire showed for one host, for
// the header: the answering MAC when one unit answers, else the trouble.
// It follows arpcheck's Result.Verdict, without the MAC list.
func wireShort(a lab.WireAnswer) string {
	switch n := len(a.MACs); {
	case a.OK():
		return a.MACs[0].MAC
	case a.Replies == 0 || n == 0:
		return "no reply: no unit answers"
	case n == 1:
		return "every request answered twice: two units answer with the virtual MAC"
	case n == 2:
		return "2 MACs answer: two units answer"
	default:
		return fmt.Sprintf("%d MACs answer: %d units answer", n, n)
	}
}

// wireLine is the header's line for the wire check: the hosts where other
// than exactly one unit answers first, in red, so that a cut line still
// shows them; then the others with a tick and the MAC that answers, or
// when that does not fit, one tick before the names of all of them.
func (m *Model) wireLine() string {
	w := m.wire
	label := styleDim.Render("wire: ")
	if !w.checked {
		return label + styleDim.Render("asking each host's gateway by ARP…")
	}
	var bad, good, goodHosts []string
	for _, a := range w.answers {
		if a.OK() {
			good = append(good, a.Host+" "+styleOK.Render("✓")+" "+styleDim.Render(wireShort(a)))
			goodHosts = append(goodHosts, a.Host)
			continue
		}
		bad = append(bad, styleErr.Render(a.Host+" ✗ "+wireShort(a)))
	}
	if w.err != "" {
		bad = append(bad, styleWarn.Render("check failed: "+w.err))
	}
	if len(bad) == 0 && len(good) == 0 {
		return label + styleDim.Render("no host has a gateway to ask")
	}
	sep := styleDim.Render(" · ")
	line := label + strings.Join(append(bad, good...), sep)
	if ansi.StringWidth(line) > m.width && len(good) > 0 {
		line = label + strings.Join(append(bad, styleOK.Render("✓")+" "+strings.Join(goodHosts, " ")), sep)
	}
	return line
}

// hostLines are the full verdicts for one host on the Hosts tab, wrapped
// to width.
func (w *wireState) hostLines(host string, width int) []string {
	var out []string
	for _, a := range w.answers {
		if a.Host != host {
			continue
		}
		mark, style := "✓", styleOK
		if !a.OK() {
			mark, style = "✗", styleErr
		}
		text := "wire " + mark + " " + a.Verdict()
		for i, l := range strings.Split(ansi.Wordwrap(text, max(width-4, 20), ""), "\n") {
			indent := "  "
			if i > 0 {
				indent = "    "
			}
			out = append(out, indent+style.Render(l))
		}
	}
	return out
}

// hostsNote is the Hosts tab's line about the wire check: when it last
// answered, or why it failed.
func (w *wireState) hostsNote(now time.Time) string {
	switch {
	case !w.enabled:
		return ""
	case !w.checked:
		return styleDim.Render("wire: asking each host's gateway by ARP…")
	case w.err != "":
		return styleWarn.Render(fmt.Sprintf("wire check failed %s ago: %s", shortDur(now.Sub(w.at)), w.err))
	}
	return styleDim.Render(fmt.Sprintf("wire: each host ARPs for its gateway every %s; last check %s ago", shortDur(wireEvery), shortDur(now.Sub(w.at))))
}
