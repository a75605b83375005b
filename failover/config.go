package failover

import (
	"errors"
	"fmt"
	"time"
)

// Config is one unit's failover configuration. Both units of a pair should
// use the same timers and monitored interfaces, and different roles.
type Config struct {
	// Role is this unit's configured role (`failover lan unit primary`).
	Role Role
	// UnitPoll is the interval between hellos on the failover link
	// (`failover polltime unit`).
	UnitPoll time.Duration
	// UnitHold is how long the peer may be silent before the unit suspects
	// it and probes the data interfaces (`failover polltime unit ... holdtime`).
	// It must exceed UnitPoll.
	UnitHold time.Duration
	// InterfacePoll is the interval between interface hellos while probing;
	// the machine passes it on in ProbeDataInterfaces.
	InterfacePoll time.Duration
	// InterfaceHold is how long a data-interface probe waits for the peer
	// before the peer counts as dead there. It must be at least
	// InterfacePoll.
	InterfaceHold time.Duration
	// ProbeRounds is how many rounds of InterfaceHold a confirmation on the
	// data interfaces lasts; one answer in any of them proves the peer
	// alive. More than one tolerates a loaded data path that delays or
	// drops a round's frames. Zero means DefaultProbeRounds.
	ProbeRounds int
	// NegotiationWindow is how long a starting unit listens for its peer
	// before it takes the active role alone.
	NegotiationWindow time.Duration
	// Monitored names the monitored data interfaces (`monitor-interface`).
	Monitored []string
}

// DefaultProbeRounds is ProbeRounds when the config leaves it zero.
const DefaultProbeRounds = 4

// DefaultConfig returns lab-scale timers for role, keeping the ASA's ratios
// (hold = 3 polls): fast enough that a takeover shows within a second, slow
// enough for a loaded 2-core machine. No interfaces are monitored.
func DefaultConfig(role Role) Config {
	return Config{
		Role:              role,
		UnitPoll:          30 * time.Millisecond,
		UnitHold:          100 * time.Millisecond,
		InterfacePoll:     10 * time.Millisecond,
		InterfaceHold:     25 * time.Millisecond,
		ProbeRounds:       2,
		NegotiationWindow: 300 * time.Millisecond,
	}
}

// ErrConfig is wrapped by every error Config.Validate returns.
var ErrConfig = errors.New("invalid failover config")

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case !c.Role.Valid():
		return bad("role %d is neither Primary nor Secondary", c.Role)
	case c.UnitPoll <= 0:
		return bad("UnitPoll %v must be positive", c.UnitPoll)
	case c.UnitHold <= c.UnitPoll:
		return bad("UnitHold %v must exceed UnitPoll %v", c.UnitHold, c.UnitPoll)
	case c.InterfacePoll <= 0:
		return bad("InterfacePoll %v must be positive", c.InterfacePoll)
	case c.InterfaceHold < c.InterfacePoll:
		return bad("InterfaceHold %v must be at least InterfacePoll %v", c.InterfaceHold, c.InterfacePoll)
	case c.ProbeRounds < 0 || c.ProbeRounds > 10:
		return bad("ProbeRounds %d must be between 0 (default %d) and 10", c.ProbeRounds, DefaultProbeRounds)
	case c.NegotiationWindow <= 0:
		return bad("NegotiationWindow %v must be positive", c.NegotiationWindow)
	case len(c.Monitored) > MaxInterfaces:
		return bad("%d monitored interfaces, at most %d", len(c.Monitored), MaxInterfaces)
	}
	seen := make(map[string]bool, len(c.Monitored))
	for _, name := range c.Monitored {
		if err := checkInterfaceName(name); err != nil {
			return fmt.Errorf("%w: monitored interface: %w", ErrConfig, err)
		}
		if seen[name] {
			return bad("monitored interface %q listed twice", name)
		}
		seen[name] = true
	}
	return nil
}
