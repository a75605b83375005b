package scenario

import (
	"context"
	"fmt"
	"slices"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
)

// moduleCounters are the service module counters an expectation can name.
var moduleCounters = map[string]func(m api.ModuleInfo) uint64{
	"flows":               func(m api.ModuleInfo) uint64 { return uint64(m.Flows) },
	"packets":             func(m api.ModuleInfo) uint64 { return m.Packets },
	"detected":            func(m api.ModuleInfo) uint64 { return m.Detected },
	"detected_drops":      func(m api.ModuleInfo) uint64 { return m.DetectedDrops },
	"uninspected_flows":   func(m api.ModuleInfo) uint64 { return m.UninspectedFlows },
	"uninspected_packets": func(m api.ModuleInfo) uint64 { return m.UninspectedPackets },
	"fail_close_drops":    func(m api.ModuleInfo) uint64 { return m.FailCloseDrops },
}

// moduleExpect validates an expectation's module counters at field f.
func (v *validator) moduleExpect(f string, m map[string]string) {
	for name, cond := range m {
		if moduleCounters[name] == nil {
			names := keys(moduleCounters)
			slices.Sort(names)
			v.errf(f+".module."+name, "%q is not a module counter (expected one of %v)", name, names)
		}
		if _, _, err := parseCount(cond); err != nil {
			v.errf(f+".module."+name, "%v", err)
		}
	}
}

// checkModule compares the active unit's service module counters with
// e.Module: the module is per unit, and after a takeover the new active's
// counters are what its module met.
func (r *runner) checkModule(ctx context.Context, e *ExpectSpec) []string {
	active, err := lab.ActiveUnit(ctx, r.name)
	var m api.ModuleInfo
	if err == nil {
		var c *api.Client
		if c, err = lab.UnitClient(r.name, active); err == nil {
			m, err = c.Module(ctx)
		}
	}
	if err != nil {
		return []string{"module: " + err.Error()}
	}
	var problems []string
	for _, name := range keys(e.Module) {
		op, n, _ := parseCount(e.Module[name])
		if got := moduleCounters[name](m); !compare(got, op, n) {
			problems = append(problems, fmt.Sprintf("module %s on %s: %d, expected %s%d", name, active, got, op, n))
		}
	}
	return problems
}
