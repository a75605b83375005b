package scenario

import (
	"context"
	"fmt"
	"sort"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
)

// standbyHasPDP is the standby_has value that compares GTP PDP contexts.
const standbyHasPDP = "gtp-pdp-contexts"

// checkStandbyPDP compares the active's and the standby's GTP PDP
// contexts: every context of the active must be on the standby with the
// same four TEIDs and GSN addresses (what the standby needs to pass the
// tunnel's traffic after a takeover).
func (r *runner) checkStandbyPDP(ctx context.Context) string {
	active, err := lab.ActiveUnit(ctx, r.name)
	if err != nil {
		return err.Error()
	}
	standby := r.l.Peer(active).Name
	tunnels := func(u string) (map[string]string, error) {
		c, err := lab.UnitClient(r.name, u)
		if err != nil {
			return nil, err
		}
		p, err := c.PDPContexts(ctx)
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, x := range p.Contexts {
			out[x.TID] = pdpTunnel(x)
		}
		return out, nil
	}
	a, err := tunnels(active)
	if err != nil {
		return err.Error()
	}
	if len(a) == 0 {
		return "the active has no PDP contexts to compare"
	}
	s, err := tunnels(standby)
	if err != nil {
		return err.Error()
	}
	var bad []string
	for tid, want := range a {
		if got := s[tid]; got != want {
			bad = append(bad, fmt.Sprintf("TID %s: active %s, standby %q", tid, want, got))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Sprintf("standby %s differs on %d of the active's %d PDP contexts (e.g. %s)", standby, len(bad), len(a), bad[0])
	}
	return ""
}

// pdpTunnel is a context's GSN addresses and TEIDs as one comparable string.
func pdpTunnel(x api.PDPContext) string {
	return fmt.Sprintf("sgsn %s/%s teid %#x/%#x ggsn %s/%s teid %#x/%#x", x.SGSNControl, x.SGSNData,
		x.SGSNControlTEID, x.SGSNDataTEID, x.GGSNControl, x.GGSNData, x.GGSNControlTEID, x.GGSNDataTEID)
}
