package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/topo"
)

// Fault kinds: what `falab fault`, the TUI and scenarios can do to a lab.
const (
	FaultKill        = "kill"         // SIGKILL a unit: a crash
	FaultFreeze      = "freeze"       // SIGSTOP a unit: a silent failure
	FaultThaw        = "thaw"         // SIGCONT a frozen unit
	FaultRestart     = "restart"      // start a killed unit again (it rejoins)
	FaultPowerOff    = "power-off"    // kill a unit and set all its links down at once
	FaultLinkDown    = "link-down"    // set a link down (NODE:IFACE)
	FaultLinkUp      = "link-up"      // set it up again
	FaultCutFailover = "cut-failover" // the failover link down on both units
	FaultHeal        = "heal-failover"
	FaultLoss        = "loss" // PERCENT loss on a link (nftables; no netem needed)
	FaultDelay       = "delay"
	FaultClear       = "clear" // remove loss/delay from a link
	FaultManual      = "failover"
)

// FaultKinds lists every fault, for help texts and validation.
var FaultKinds = []string{FaultKill, FaultFreeze, FaultThaw, FaultRestart, FaultPowerOff, FaultLinkDown, FaultLinkUp, FaultCutFailover, FaultHeal, FaultLoss, FaultDelay, FaultClear, FaultManual}

// Fault is one fault to inject. Target is a unit (kill, freeze, thaw,
// restart, power-off, failover: the unit to make active) or a link end
// NODE:IFACE (link-down, link-up, loss, delay, clear).
type Fault struct {
	Kind    string        `json:"kind"`
	Target  string        `json:"target,omitempty"`
	Percent float64       `json:"percent,omitempty"`
	Delay   time.Duration `json:"delay,omitempty"`
}

func (f Fault) String() string {
	s := f.Kind
	if f.Target != "" {
		s += " " + f.Target
	}
	if f.Kind == FaultLoss {
		s += " " + strconv.FormatFloat(f.Percent, 'f', -1, 64) + "%"
	}
	if f.Kind == FaultDelay {
		s += " " + f.Delay.String()
	}
	return s
}

// Inject performs a fault on a running lab and records it in the lab's
// timeline (events.log in its state directory). It returns a one-line
// description of what was done.
func Inject(ctx context.Context, labName string, f Fault) (string, error) {
	st, l, err := LoadRunning(labName)
	if err != nil {
		return "", err
	}
	var msg string
	switch f.Kind {
	case FaultKill, FaultFreeze, FaultThaw, FaultPowerOff, FaultRestart:
		msg, err = injectUnit(ctx, labName, st, l, f)
	case FaultLinkDown, FaultLinkUp, FaultLoss, FaultDelay, FaultClear:
		msg, err = injectLink(labName, f)
	case FaultCutFailover, FaultHeal:
		msg, err = cutFailover(l, f.Kind == FaultHeal)
	case FaultManual:
		msg, err = manualFailover(ctx, labName, l, f.Target)
	default:
		return "", fmt.Errorf("unknown fault %q (expected one of: %s)", f.Kind, strings.Join(FaultKinds, ", "))
	}
	if err != nil {
		return "", err
	}
	RecordEvent(labName, "fault", msg)
	return msg, nil
}

// injectUnit performs a fault on unit process f.Target: kill, freeze, thaw,
// power-off or restart.
func injectUnit(ctx context.Context, labName string, st *State, l *labfile.Lab, f Fault) (string, error) {
	if _, ok := l.Unit(f.Target); !ok {
		return "", fmt.Errorf("%s: no unit %q (units: %s, %s)", f.Kind, f.Target, l.Units[0].Name, l.Units[1].Name)
	}
	p := st.Units[f.Target]
	switch f.Kind {
	case FaultKill:
		if err := p.Signal(syscall.SIGKILL); err != nil {
			return "", err
		}
		return fmt.Sprintf("killed %s (SIGKILL pid %d)", f.Target, p.PID), nil
	case FaultFreeze, FaultThaw:
		sig, verb := syscall.SIGSTOP, "froze"
		if f.Kind == FaultThaw {
			sig, verb = syscall.SIGCONT, "thawed"
		}
		if err := p.Signal(sig); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s %s (pid %d)", verb, f.Target, p.PID), nil
	case FaultPowerOff:
		return powerOff(l, p, f.Target)
	default: // FaultRestart
		return restartUnit(ctx, labName, st, l, p, f.Target)
	}
}

// powerOff takes unit's links down and at once after kills its process: to
// the peer and the switches it looks like power loss, not a clean exit.
func powerOff(l *labfile.Lab, p Proc, unit string) (string, error) {
	var down []string
	for _, lk := range l.Links {
		for _, e := range []labfile.Endpoint{lk.A, lk.B} {
			if e.Node == unit {
				if err := topo.SetLinkUp(l.Namespace(e.Node), e.Iface, false); err != nil {
					return "", err
				}
				down = append(down, e.Iface)
			}
		}
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return "", err
	}
	return fmt.Sprintf("powered off %s (links %s down, pid %d killed)", unit, strings.Join(down, ","), p.PID), nil
}

// restartUnit kills unit's process p if it lives, brings its links back up
// (a powered-off unit's links come back with it), starts it again from its
// config file and waits until its API answers.
func restartUnit(ctx context.Context, labName string, st *State, l *labfile.Lab, p Proc, unit string) (string, error) {
	if p.Alive() {
		if err := p.Kill(2 * time.Second); err != nil {
			return "", err
		}
	}
	for _, lk := range l.Links {
		for _, e := range []labfile.Endpoint{lk.A, lk.B} {
			if e.Node == unit {
				if err := topo.SetLinkUp(l.Namespace(e.Node), e.Iface, true); err != nil {
					return "", err
				}
			}
		}
	}
	cfgPath := filepath.Join(Dir(labName), unit+".json")
	exe, err := executable()
	if err != nil {
		return "", err
	}
	np, err := spawnIn(l.Namespace(unit), "unit "+unit, filepath.Join(Dir(labName), unit+".log"), exe, "unit", "--config", cfgPath)
	if err != nil {
		return "", err
	}
	st.Units[unit] = np
	if err := WriteState(st); err != nil {
		return "", err
	}
	if err := waitReady(ctx, np, filepath.Join(Dir(labName), unit+".sock"), filepath.Join(Dir(labName), unit+".log")); err != nil {
		return "", err
	}
	return fmt.Sprintf("restarted %s (pid %d)", unit, np.PID), nil
}

// injectLink performs a fault on one end of a link, f.Target = NODE:IFACE:
// down, up, loss, delay, or clearing loss and delay.
func injectLink(labName string, f Fault) (string, error) {
	node, iface, ok := strings.Cut(f.Target, ":")
	if !ok {
		return "", fmt.Errorf("%s: target %q is not NODE:IFACE", f.Kind, f.Target)
	}
	ns, err := NodeNamespace(labName, node)
	if err != nil {
		return "", err
	}
	switch f.Kind {
	case FaultLinkDown, FaultLinkUp:
		up := f.Kind == FaultLinkUp
		if err := topo.SetLinkUp(ns, iface, up); err != nil {
			return "", err
		}
		return fmt.Sprintf("link %s %s", f.Target, map[bool]string{true: "up", false: "down"}[up]), nil
	case FaultLoss:
		if f.Percent < 0 || f.Percent > 100 {
			return "", fmt.Errorf("loss: %v%% is out of range (expected 0 to 100)", f.Percent)
		}
		if err := topo.SetLoss(ns, iface, f.Percent); err != nil {
			return "", err
		}
		return fmt.Sprintf("loss %v%% on %s", f.Percent, f.Target), nil
	case FaultDelay:
		if err := topo.SetDelay(ns, iface, f.Delay); err != nil {
			return "", err
		}
		return fmt.Sprintf("delay %v on %s", f.Delay, f.Target), nil
	default: // FaultClear
		if err := topo.ClearLoss(ns, iface); err != nil {
			return "", err
		}
		_ = topo.SetDelay(ns, iface, 0) // no netem: nothing to clear
		return fmt.Sprintf("impairments cleared on %s", f.Target), nil
	}
}

// cutFailover takes both units' failover interfaces down, or up again
// (heal).
func cutFailover(l *labfile.Lab, heal bool) (string, error) {
	for _, u := range l.Units {
		if err := topo.SetLinkUp(l.Namespace(u.Name), l.Failover.Link.Interface, heal); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("failover link %s", map[bool]string{true: "healed", false: "cut"}[heal]), nil
}

// manualFailover makes target active (failover active on it); an empty
// target means the peer of the unit active now.
func manualFailover(ctx context.Context, labName string, l *labfile.Lab, target string) (string, error) {
	if target == "" {
		active, err := ActiveUnit(ctx, labName)
		if err != nil {
			return "", err
		}
		target = l.Peer(active).Name
	}
	c, err := UnitClient(labName, target)
	if err != nil {
		return "", err
	}
	r, err := c.Failover(ctx, "active")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("failover active on %s: %s", target, r), nil
}

// executable is the falab binary that restarts units and runs traffic
// agents: this very binary (a seam for tests).
var executable = os.Executable
