package tui

import (
	"context"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/falab/falab/lab"
)

// confirmation is a destructive action asked about in the status line:
// y runs it, any other key cancels it. A kill pressed by a habit from vi
// (k moves up there) or a stray key never reaches the lab.
type confirmation struct {
	what string         // "kill fw-a (SIGKILL)": the prompt and the cancel message
	do   func() tea.Cmd // runs the action (and its bookkeeping)
}

// ask puts a destructive action to the user; nothing happens until y.
func (m *Model) ask(what string, do func() tea.Cmd) tea.Cmd {
	m.confirm = &confirmation{what: what, do: do}
	m.mode = modeConfirm
	return nil
}

// onKey handles a key press in the current mode.
func (m *Model) onKey(msg tea.KeyPressMsg) tea.Cmd {
	switch m.mode {
	case modeFilter:
		m.onFilterKey(msg)
		return nil
	case modeHelp, modeRepl, modeReasons:
		if msg.String() == "ctrl+c" {
			return m.quit()
		}
		m.mode = modeNormal
		return nil
	case modeLinks:
		return m.onLinksKey(msg)
	case modeConfirm:
		return m.onConfirmKey(msg)
	case modeDetail:
		return m.onDetailKey(msg)
	}
	if cmd, done := m.onViewKey(msg); done {
		return cmd
	}
	return m.onActionKey(msg)
}

// onConfirmKey answers the pending confirmation: y runs the action, any
// other key cancels it (ctrl+c still quits).
func (m *Model) onConfirmKey(msg tea.KeyPressMsg) tea.Cmd {
	c := m.confirm
	m.mode, m.confirm = modeNormal, nil
	switch {
	case c == nil:
		return nil
	case msg.String() == "y" || msg.String() == "Y":
		return c.do()
	case msg.String() == "ctrl+c":
		return m.quit()
	}
	m.say("cancelled: "+c.what, false)
	return nil
}

func (m *Model) onFilterKey(msg tea.KeyPressMsg) {
	switch msg.String() {
	case "enter":
		m.mode = modeNormal
	case "esc":
		m.mode, m.draft = modeNormal, ""
		m.applyFilter("")
	case "backspace":
		if r := []rune(m.draft); len(r) > 0 {
			m.draft = string(r[:len(r)-1])
			m.applyFilter(m.draft)
		}
	default:
		if msg.Text != "" {
			m.draft += msg.Text
			m.applyFilter(m.draft)
		}
	}
}

// onLinksKey drives the link picker; setting a link down asks first.
func (m *Model) onLinksKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Up):
		m.pick = max(m.pick-1, 0)
	case key.Matches(msg, k.Down):
		m.pick = min(m.pick+1, len(m.info.Links)-1)
	case key.Matches(msg, k.Enter):
		m.mode = modeNormal
		if m.pick >= len(m.info.Links) {
			return nil
		}
		end := m.info.Links[m.pick]
		if m.linksDown[end] {
			m.linksDown[end] = false
			return m.inject(lab.Fault{Kind: lab.FaultLinkUp, Target: end})
		}
		return m.ask("set link "+end+" down", func() tea.Cmd {
			m.linksDown[end] = true
			return m.inject(lab.Fault{Kind: lab.FaultLinkDown, Target: end})
		})
	case key.Matches(msg, k.Cancel), key.Matches(msg, k.Link):
		m.mode = modeNormal
	}
	return nil
}

// onViewKey handles the keys that change only what is shown: quit, help,
// tabs, filter, sort and moving. done is false for any other key.
func (m *Model) onViewKey(msg tea.KeyPressMsg) (cmd tea.Cmd, done bool) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		return m.quit(), true
	case key.Matches(msg, k.Help):
		m.mode = modeHelp
	case key.Matches(msg, k.Repl):
		m.mode = modeRepl
	case key.Matches(msg, k.Reasons):
		m.mode = modeReasons
	case key.Matches(msg, k.Dismiss):
		m.dismiss()
	case key.Matches(msg, k.NextTab):
		m.cur = (m.cur + 1) % numTabs
		return m.refreshTab(), true
	case key.Matches(msg, k.PrevTab):
		m.cur = (m.cur + numTabs - 1) % numTabs
		return m.refreshTab(), true
	case key.Matches(msg, k.Tabs):
		m.cur = (int(msg.Text[0]-'0') + 9) % 10 // "1" is the first tab, "0" the tenth; the eleventh by tab only
		return m.refreshTab(), true
	case key.Matches(msg, k.Filter):
		if m.cur < len(m.tables) || m.cur == tabIndexTimeline {
			m.mode, m.draft = modeFilter, m.currentFilter()
		}
	case key.Matches(msg, k.Sort):
		if m.cur < len(m.tables) {
			m.tables[m.cur].CycleSort()
		}
	case key.Matches(msg, k.Up, k.Down, k.PageUp, k.PageDn, k.Home, k.End):
		return m.move(msg), true
	case key.Matches(msg, k.Enter):
		return m.openDetail(), true
	default:
		return nil, false
	}
	return nil, true
}

// dismiss closes the banner, else the message, else the filter.
func (m *Model) dismiss() {
	switch {
	case m.banner != nil:
		m.dismissed[m.banner.key] = true
		m.banner = nil
	case m.msg != "":
		m.msg = ""
	default:
		m.applyFilter("")
	}
}

// move scrolls the current tab.
func (m *Model) move(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch {
	case m.cur < len(m.tables):
		if t := m.tables[m.cur]; t.HandleKey(msg, k) {
			return m.fetchTab(t)
		}
	case m.cur == tabIndexHosts:
		m.hosts.HandleKey(msg, k)
	case m.cur == tabIndexTimeline:
		m.timeline.HandleKey(msg, k)
	}
	return nil
}

// onActionKey handles the keys that act on the lab. Those that take a
// unit or a link away (failover, kill, freeze, power-off, cut) ask y/n
// first; those that bring one back (thaw, restart, heal, reset) do not.
func (m *Model) onActionKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	ai := m.activeIdx()
	active, standby := m.units[ai].name, m.units[1-ai].name
	switch {
	case key.Matches(msg, k.Failover):
		if !m.units[1-ai].ok {
			m.say(standby+" does not answer: no unit to fail over to", true)
			return nil
		}
		return m.ask("fail over: make "+standby+" active", func() tea.Cmd {
			return m.inject(lab.Fault{Kind: lab.FaultManual, Target: standby})
		})
	case key.Matches(msg, k.Kill):
		return m.ask("kill "+active+" (SIGKILL)", func() tea.Cmd {
			return m.inject(lab.Fault{Kind: lab.FaultKill, Target: active})
		})
	case key.Matches(msg, k.Freeze):
		return m.ask("freeze "+active+" (SIGSTOP)", func() tea.Cmd {
			m.frozen[active] = true
			return m.inject(lab.Fault{Kind: lab.FaultFreeze, Target: active})
		})
	case key.Matches(msg, k.PowerOff):
		return m.ask("power off "+active+" (kill, all its links down)", func() tea.Cmd {
			return m.inject(lab.Fault{Kind: lab.FaultPowerOff, Target: active})
		})
	case key.Matches(msg, k.Cut):
		if m.foCut {
			m.foCut = false
			return m.inject(lab.Fault{Kind: lab.FaultHeal})
		}
		return m.ask("cut the failover link", func() tea.Cmd {
			m.foCut = true
			return m.inject(lab.Fault{Kind: lab.FaultCutFailover})
		})
	case key.Matches(msg, k.Thaw):
		return m.thaw()
	case key.Matches(msg, k.Restart):
		return m.restart()
	case key.Matches(msg, k.Link):
		if len(m.info.Links) == 0 {
			m.say("this lab has no links to toggle", true)
			return nil
		}
		m.mode, m.pick = modeLinks, min(m.pick, len(m.info.Links)-1)
	case key.Matches(msg, k.Reset):
		return m.reset()
	}
	return nil
}

// thaw continues every unit this TUI froze or that does not answer.
func (m *Model) thaw() tea.Cmd {
	var targets []string
	for _, u := range m.units {
		if m.frozen[u.name] || !u.ok {
			targets = append(targets, u.name)
		}
	}
	if len(targets) == 0 {
		m.say("nothing to thaw: both units answer", false)
		return nil
	}
	src := m.src
	return m.action("thaw "+strings.Join(targets, ", ")+"…", func(ctx context.Context) (string, error) {
		var done []string
		var firstErr error
		for _, t := range targets {
			r, err := src.Inject(ctx, lab.Fault{Kind: lab.FaultThaw, Target: t})
			if err != nil {
				firstErr = fmt.Errorf("thaw %s: %w", t, err)
				continue
			}
			done = append(done, r)
		}
		if len(done) == 0 {
			return "", firstErr
		}
		return strings.Join(done, "; "), nil
	})
}

// restart starts a dead unit again: one that answered once and is not
// frozen first, else any that does not answer.
func (m *Model) restart() tea.Cmd {
	for _, u := range m.units {
		if u.seen && !u.ok && !m.frozen[u.name] {
			return m.inject(lab.Fault{Kind: lab.FaultRestart, Target: u.name})
		}
	}
	for _, u := range m.units {
		if !u.ok {
			return m.inject(lab.Fault{Kind: lab.FaultRestart, Target: u.name})
		}
	}
	m.say("both units answer: nothing to restart", false)
	return nil
}

// reset runs failover reset on a Failed unit.
func (m *Model) reset() tea.Cmd {
	for _, u := range m.units {
		if u.ok && u.status.State == "Failed" {
			src, name := m.src, u.name
			return m.action("failover reset on "+name+"…", func(ctx context.Context) (string, error) {
				return src.Failover(ctx, name, "reset")
			})
		}
	}
	m.say("no unit is Failed: nothing to reset", false)
	return nil
}
