package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/falab/falab/api"
)

// ShowPDPContexts writes `show service-policy inspect gtp pdp-context
// [detail]` in the ASA's format, the same text as package gtp's
// WritePDPContexts (a unit test holds the two together): a summary line,
// a header and one line per context; detail adds each context's block,
// with the ASA's internal flow handles printed as 0.
func ShowPDPContexts(w io.Writer, p api.PDPContexts, detail bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d in use, %d most used, timeout %s\n", p.InUse, p.MostUsed, HMS(p.Timeout))
	if len(p.Contexts) > 0 {
		fmt.Fprintf(&b, "%-7s %-16s %-15s %-15s %-8s %s\n", "Version", "TID", "MS Addr", "SGSN Addr", "Idle", "APN")
	}
	for _, c := range p.Contexts {
		fmt.Fprintf(&b, "%-7s %-16s %-15s %-15s %-8s %s\n", "v1", c.TID, c.MS, c.SGSNControl, HMS(c.Idle), c.APN)
		if detail {
			pdpDetail(&b, c)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func pdpDetail(b *strings.Builder, c api.PDPContext) {
	primary := "N"
	if c.Primary {
		primary = "Y"
	}
	fmt.Fprintf(b, "  user_name (IMSI): %s MS address: %s\n", c.IMSI, c.MS)
	fmt.Fprintf(b, "  primary pdp: %s nsapi: %d\n", primary, c.NSAPI)
	fmt.Fprintf(b, "  sgsn_addr_signal: %s sgsn_addr_data: %s\n", c.SGSNControl, c.SGSNData)
	fmt.Fprintf(b, "  ggsn_addr_signal: %s ggsn_addr_data: %s\n", c.GGSNControl, c.GGSNData)
	fmt.Fprintf(b, "  sgsn control teid: 0x%08x sgsn data teid: 0x%08x\n", c.SGSNControlTEID, c.SGSNDataTEID)
	fmt.Fprintf(b, "  ggsn control teid: 0x%08x ggsn data teid: 0x%08x\n", c.GGSNControlTEID, c.GGSNDataTEID)
	b.WriteString("  seq_tpdu_up: 0 seq_tpdu_down: 0\n  signal_sequence: 0\n" +
		"  upstream_signal_flow: 0 upstream_data_flow: 0\n  downstream_signal_flow: 0 downstream_data_flow: 0\n" +
		"  RAupdate_flow: 0\n")
	fmt.Fprintf(b, "  upstream_tpdu: %d downstream_tpdu: %d upstream_signal: %d downstream_signal: %d\n",
		c.Upstream, c.Downstream, c.SignalUpstream, c.SignalDownstream)
}

// PDPContexts is the GTP PDP context database as a table: one context a
// row, keyed by TID; the TEIDs are the replicated part the standby must
// hold (shown side by side), the counters and idle time each unit's own.
var PDPContexts = Spec[api.PDPContext]{
	Columns: []Column{
		{Title: "TID", Width: 16}, {Title: "MS Addr", Width: 15}, {Title: "SGSN", Width: 15},
		{Title: "GGSN", Width: 15, Wide: true}, {Title: "APN", Width: 10, Wide: true},
		{Title: "TEIDs sgsn c/d ggsn c/d", Width: 23},
		{Title: "Up", Width: 8, Right: true, PerUnit: true}, {Title: "Down", Width: 8, Right: true, PerUnit: true},
		{Title: "Idle", Width: 8, Wide: true, PerUnit: true},
	},
	Key: func(c *api.PDPContext) string { return c.TID },
	Cells: func(c *api.PDPContext) []string {
		return []string{c.TID, c.MS, c.SGSNControl, c.GGSNControl, c.APN, pdpTEIDs(c),
			u64(c.Upstream), u64(c.Downstream), Duration(c.Idle)}
	},
	Standby: []StandbyColumn{{Column: Column{Title: "Standby TEIDs", Width: 23}, From: 5, After: 5}},
}

// pdpTEIDs writes a context's four TEIDs compactly, SGSN's then GGSN's.
func pdpTEIDs(c *api.PDPContext) string {
	return fmt.Sprintf("%x/%x %x/%x", c.SGSNControlTEID, c.SGSNDataTEID, c.GGSNControlTEID, c.GGSNDataTEID)
}
