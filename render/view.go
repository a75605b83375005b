package render

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/falab/falab/api"
)

// asaRowNames are the ASA's "Stateful Obj" row names for falab's
// replicated tables, where the ASA has one. falab keeps TCP, UDP and ICMP
// connections in one table, so its row says both ASA names; the bridge
// table is the transparent mode's "L2BRIDGE Tbl". A table not listed
// (a new engine's) shows its own name.
var asaRowNames = map[string]string{
	"conn":        "TCP/UDP conn",
	"xlate":       "Xlate",
	"arp":         "ARP tbl",
	"bridge":      "L2BRIDGE Tbl",
	"gtp-pdp":     "GTP PDP",
	"ike-sa":      "VPN IKEv2 SA",
	"ikev2-sa":    "VPN IKEv2 SA",
	"ipsec-sa":    "VPN IPSEC SA",
	"child-sa":    "VPN IPSEC SA",
	"sip":         "SIP Session",
	"sip-session": "SIP Session",
	"sip-tx":      "SIP Tx",
	"sip-pinhole": "SIP Pinhole",
}

// localRowNames name the local-only tables.
var localRowNames = map[string]string{
	"route":  "Route",
	"http":   "HTTP conn",
	"uauth":  "uauth",
	"module": "Module flows",
	"ctiqbe": "CTIQBE session",
}

// RowName is the replication view's name for a table.
func RowName(table string) string {
	if n, ok := asaRowNames[table]; ok {
		return n
	}
	if n, ok := localRowNames[table]; ok {
		return n
	}
	return table
}

// ReplicationRow is one replicated table in the view: the stream counters
// of the unit asked (xmit and xerr while it sends, rcv and rerr while it
// receives) and the table's live entries on each unit (-1: unknown).
type ReplicationRow struct {
	Table                    string
	Xmit, Xerr, Rcv, Rerr    uint64
	ThisEntries, PeerEntries int
}

// LocalRow is one local-only table in the view with its entries on each
// unit (-1: unknown) and why it is local.
type LocalRow struct {
	Table                    string
	ThisEntries, PeerEntries int
	Reason                   string
}

// ReplicationView joins two units' lists: rows in the order of the unit
// asked, then any table only its peer has. A unit that did not answer
// (PID 0) has entries -1.
func ReplicationView(this, other api.Status) ([]ReplicationRow, []LocalRow) {
	var rows []ReplicationRow
	names := tableNames(this.Stateful, other.Stateful, func(t api.StatefulTable) string { return t.Table })
	for _, n := range names {
		r := ReplicationRow{Table: n, ThisEntries: entries(this, this.Stateful, n), PeerEntries: entries(other, other.Stateful, n)}
		for _, t := range this.Replication.Tables {
			if t.Table != n {
				continue
			}
			if this.Replication.Role == "receiver" {
				r.Rcv, r.Rerr = t.Received, t.Errors
			} else {
				r.Xmit, r.Xerr = t.Sent, t.Errors
			}
		}
		rows = append(rows, r)
	}
	var local []LocalRow
	lnames := tableNames(this.Local, other.Local, func(t api.LocalTable) string { return t.Table })
	for _, n := range lnames {
		r := LocalRow{Table: n, ThisEntries: entries(this, this.Local, n), PeerEntries: entries(other, other.Local, n)}
		for _, l := range append(slices.Clone(this.Local), other.Local...) {
			if l.Table == n && r.Reason == "" {
				r.Reason = l.Reason
			}
		}
		local = append(local, r)
	}
	return rows, local
}

func tableNames[T any](a, b []T, name func(T) string) []string {
	var out []string
	for _, t := range append(slices.Clone(a), b...) {
		if n := name(t); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// entries finds table n's count in a unit's list: -1 when the unit did not
// answer, did not list it, or could not count it.
func entries[T api.StatefulTable | api.LocalTable](s api.Status, list []T, n string) int {
	if s.PID == 0 {
		return -1
	}
	for _, t := range list {
		switch v := any(t).(type) {
		case api.StatefulTable:
			if v.Table == n {
				return v.Entries
			}
		case api.LocalTable:
			if v.Table == n {
				return v.Entries
			}
		}
	}
	return -1
}

// FailoverStats writes the ASA's "Stateful Failover Logical Update
// Statistics" for the unit asked, with each table's live entries on both
// units beside the counters, the update queues, then the tables that are
// not replicated.
func FailoverStats(w io.Writer, this, other api.Status) error {
	return replicationText(w, this, other, true)
}

// ReplicationTables is FailoverStats without the queue information, for
// the TUI's view, where height is short.
func ReplicationTables(w io.Writer, this, other api.Status) error {
	return replicationText(w, this, other, false)
}

func replicationText(w io.Writer, this, other api.Status, queues bool) error {
	var b strings.Builder
	rows, local := ReplicationView(this, other)
	link := "up"
	if !this.FailoverLinkUp {
		link = "down"
	}
	line(&b, "\tStateful Failover Logical Update Statistics (%s)", this.Unit)
	line(&b, "\tLink : failover (%s)", link)
	line(&b, "\tStateful Obj    %-10s %-10s %-10s %-10s %-8s %-8s", "xmit", "xerr", "rcv", "rerr", orDash(this.Unit), orDash(other.Unit))
	var g ReplicationRow
	for _, x := range rows {
		g.Xmit, g.Xerr, g.Rcv, g.Rerr = g.Xmit+x.Xmit, g.Xerr+x.Xerr, g.Rcv+x.Rcv, g.Rerr+x.Rerr
	}
	line(&b, "\t%-15s %-10d %-10d %-10d %-10d", "General", g.Xmit, g.Xerr, g.Rcv, g.Rerr)
	for _, x := range rows {
		line(&b, "\t%-15s %-10d %-10d %-10d %-10d %-8s %-8s", RowName(x.Table), x.Xmit, x.Xerr, x.Rcv, x.Rerr, count(x.ThisEntries), count(x.PeerEntries))
	}
	if queues {
		r := this.Replication
		b.WriteString("\n\tLogical Update Queue Information\n\t\t\tCur\tMax\tTotal\n")
		if r.Role == "receiver" {
			line(&b, "\tRecv Q:\t\t%d\t%d\t%d\n\tXmit Q:\t\t0\t0\t0", 0, 0, r.RecordSeq)
		} else {
			line(&b, "\tRecv Q:\t\t0\t0\t0\n\tXmit Q:\t\t%d\t%d\t%d", r.QueueDepth, r.QueueHigh, r.RecordSeq)
		}
	}
	line(&b, "\n\tNot replicated (each unit's own)\n\tLocal Obj       %-8s %-8s why", orDash(this.Unit), orDash(other.Unit))
	for _, l := range local {
		line(&b, "\t%-15s %-8s %-8s %s", RowName(l.Table), count(l.ThisEntries), count(l.PeerEntries), l.Reason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// line writes one formatted line without the padding its last column
// leaves.
func line(b *strings.Builder, format string, args ...any) {
	b.WriteString(strings.TrimRight(fmt.Sprintf(format, args...), " ") + "\n")
}

func count(n int) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// moduleLine writes a unit's service module in its `show failover` block,
// as an ASA lists its slot ("slot 1: ... status (Up/Up)"), with the
// counters that show what a failover cost it.
func moduleLine(b *strings.Builder, m *api.ModuleInfo) {
	if m == nil {
		return
	}
	fmt.Fprintf(b, "  slot 1: %s falab Inspection Module status (Up/%s), ips inline %s, %d signatures\n", m.Slot, m.Status, m.FailMode, m.Signatures)
	fmt.Fprintf(b, "    flows %d, detected %d (drops %d), uninspected flows %d (packets %d, fail-close drops %d)\n",
		m.Flows, m.Detected, m.DetectedDrops, m.UninspectedFlows, m.UninspectedPackets, m.FailCloseDrops)
}

// ShowModule writes `show module` of each unit that has one, the ASA's
// text under the unit's name.
func ShowModule(w io.Writer, ms []api.ModuleInfo) error {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s:\n%s", m.Unit, m.Text)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ShowUAuth writes `show uauth` of each unit, the ASA's text under the
// unit's name with where its listener is.
func ShowUAuth(w io.Writer, us []api.UAuthInfo) error {
	var b strings.Builder
	for i, u := range us {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s: (not replicated) listener %s, %d flows steered to it now\n%s", u.Unit, u.Listener, u.Steered, u.Text)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
