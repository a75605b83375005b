package tui

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/falab/falab/api"
)

// Table tab ids.
const (
	tabConns  = "conns"
	tabXlate  = "xlate"
	tabARP    = "arp"
	tabBridge = "bridge"
	tabRoutes = "routes"
	tabIfaces = "interfaces"
	tabDrops  = "drops"
)

// wholeLimit is the largest table fetched whole, so that filter and sort
// see every entry and marks are exact. A bigger table is fetched a page at
// a time: only what is on screen.
const wholeLimit = 5000

func newTableTabs() []*tableTab {
	return []*tableTab{
		{id: tabConns, title: "Connections", short: "Conns", replicated: true, pageable: true, sortCol: -1, cols: []column{
			{title: "Proto", width: 5}, {title: "In", width: 8, wide: true}, {title: "Source", width: 21},
			{title: "Out", width: 8, wide: true}, {title: "Destination", width: 21},
			{title: "State", width: 11}, {title: "Standby", width: 11},
			{title: "Pkts", width: 9, right: true, wide: true}, {title: "Bytes", width: 11, right: true, wide: true},
			{title: "Idle", width: 8, wide: true},
		}},
		{id: tabXlate, title: "Xlate", short: "Xlate", replicated: true, pageable: true, sortCol: -1, cols: []column{
			{title: "Kind", width: 7}, {title: "Proto", width: 5}, {title: "Real if", width: 8, wide: true},
			{title: "Real", width: 21}, {title: "Mapped if", width: 9, wide: true}, {title: "Mapped", width: 21},
			{title: "Conns", width: 5, right: true}, {title: "Standby", width: 7, right: true},
			{title: "Age", width: 8, wide: true},
		}},
		{id: tabARP, title: "ARP", short: "ARP", replicated: true, sortCol: -1, cols: []column{
			{title: "Interface", width: 10}, {title: "IP", width: 15}, {title: "MAC", width: 17},
			{title: "Standby MAC", width: 17}, {title: "Age", width: 8, wide: true},
		}},
		{id: tabBridge, title: "Bridge", short: "Bridge", replicated: true, sortCol: -1,
			note: "transparent mode's MAC address table (empty in routed mode)", cols: []column{
				{title: "MAC", width: 17}, {title: "Interface", width: 10}, {title: "Standby if", width: 10},
				{title: "Age", width: 8, wide: true},
			}},
		{id: tabRoutes, title: "Routes", short: "Routes", sortCol: -1,
			note: "not replicated: each unit builds its own", cols: []column{
				{title: "Interface", width: 10}, {title: "Prefix", width: 18}, {title: "Via", width: 15},
				{title: "Type", width: 9}, {title: "Standby", width: 15},
			}},
		{id: tabIfaces, title: "Interfaces", short: "Ifaces", sortCol: -1,
			note: "counters are each unit's own", cols: []column{
				{title: "Name", width: 9}, {title: "Address", width: 18, wide: true}, {title: "MAC", width: 17},
				{title: "Rx pkts", width: 9, right: true}, {title: "Tx pkts", width: 9, right: true},
				{title: "Drops", width: 7, right: true},
				{title: "Sb rx", width: 9, right: true}, {title: "Sb tx", width: 9, right: true},
			}},
		{id: tabDrops, title: "Drops", short: "Drops", sortCol: -1,
			note: "drop counters are each unit's own", cols: []column{
				{title: "Reason", width: 32}, {title: "Active", width: 12, right: true},
				{title: "Standby", width: 12, right: true},
			}},
	}
}

// tableReq is what one table fetch asks for.
type tableReq struct {
	tab     string
	active  string
	standby string // "" when the lab has only one unit answering
	paged   bool
	offset  int
	limit   int
}

// standbyWindow is how far around the active's page the standby's copy is
// read when a table is paged. Both units order a table by the same hash
// shards, so an entry sits near the same offset on both; entries further
// away are marked "?" (not checked), never "✗".
func standbyWindow(total, limit int) int {
	return min(max(2*total/256, limit), 4000)
}

// fetchTable reads one table of both units and merges it. It runs in a
// tea.Cmd.
func fetchTable(ctx context.Context, src Source, r tableReq) tableData {
	d := tableData{active: r.active, standby: r.standby, paged: r.paged, offset: r.offset, standbyTotal: -1}
	errText := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	switch r.tab {
	case tabConns, tabXlate:
		off, lim := 0, wholeLimit
		soff, slim := 0, wholeLimit
		if r.paged {
			off, lim = r.offset, r.limit
			w := standbyWindow(r.offset+r.limit, r.limit)
			soff, slim = max(r.offset-w, 0), r.limit+2*w
		}
		if r.tab == tabConns {
			a, aerr := src.Conns(ctx, r.active, off, lim)
			var s api.Page[api.Conn]
			var serr error
			if r.standby != "" {
				s, serr = src.Conns(ctx, r.standby, soff, slim)
			}
			d.total, d.activeErr, d.standbyErr = a.Total, errText(aerr), errText(serr)
			if serr == nil && r.standby != "" {
				d.standbyTotal = s.Total
			}
			d.rows = merge(a.Entries, s.Entries, d.standbyTotal >= 0, r.paged, connKey, connCells)
		} else {
			a, aerr := src.Xlates(ctx, r.active, off, lim)
			var s api.Page[api.Xlate]
			var serr error
			if r.standby != "" {
				s, serr = src.Xlates(ctx, r.standby, soff, slim)
			}
			d.total, d.activeErr, d.standbyErr = a.Total, errText(aerr), errText(serr)
			if serr == nil && r.standby != "" {
				d.standbyTotal = s.Total
			}
			d.rows = merge(a.Entries, s.Entries, d.standbyTotal >= 0, r.paged, xlateKey, xlateCells)
		}
		// Paged with the table shrunk under us: the caller moves back.
		if !r.paged && (d.total > wholeLimit || d.standbyTotal > wholeLimit) {
			d.paged = true
		}
	case tabARP:
		a, aerr := src.ARP(ctx, r.active)
		s, serr := fetchStandby(ctx, r.standby, src.ARP)
		d.fill(len(a), len(s), aerr, serr, r.standby)
		d.rows = merge(a, s, d.standbyTotal >= 0, false, arpKey, arpCells)
	case tabBridge:
		a, aerr := src.Bridge(ctx, r.active)
		s, serr := fetchStandby(ctx, r.standby, src.Bridge)
		d.fill(len(a), len(s), aerr, serr, r.standby)
		d.rows = merge(a, s, d.standbyTotal >= 0, false, bridgeKey, bridgeCells)
	case tabRoutes:
		a, aerr := src.Routes(ctx, r.active)
		s, serr := fetchStandby(ctx, r.standby, src.Routes)
		d.fill(len(a), len(s), aerr, serr, r.standby)
		d.rows = merge(a, s, d.standbyTotal >= 0, false, routeKey, routeCells)
		for i := range d.rows {
			d.rows[i].mark = markNone
		}
	case tabIfaces:
		a, aerr := src.Interfaces(ctx, r.active)
		s, serr := fetchStandby(ctx, r.standby, src.Interfaces)
		d.fill(len(a), len(s), aerr, serr, r.standby)
		d.rows = merge(a, s, d.standbyTotal >= 0, false, ifaceKey, ifaceCells)
		for i := range d.rows {
			d.rows[i].mark = markNone
		}
	case tabDrops:
		a, aerr := src.Drops(ctx, r.active)
		s, serr := fetchStandby(ctx, r.standby, src.Drops)
		d.fill(len(a), len(s), aerr, serr, r.standby)
		reasons := make([]string, 0, len(a)+len(s))
		for k := range a {
			reasons = append(reasons, k)
		}
		for k := range s {
			if _, ok := a[k]; !ok {
				reasons = append(reasons, k)
			}
		}
		slices.Sort(reasons)
		for _, k := range reasons {
			sb := "—"
			if d.standbyTotal >= 0 {
				sb = strconv.FormatUint(s[k], 10)
			}
			cells := []string{k, strconv.FormatUint(a[k], 10), sb}
			d.rows = append(d.rows, row{key: k, cells: cells, hay: strings.ToLower(strings.Join(cells, " "))})
		}
	}
	return d
}

func (d *tableData) fill(na, ns int, aerr, serr error, standby string) {
	if aerr != nil {
		d.activeErr = aerr.Error()
	}
	d.total = na
	if standby == "" {
		return
	}
	if serr != nil {
		d.standbyErr = serr.Error()
		return
	}
	d.standbyTotal = ns
}

// fetchStandby reads the standby's copy, or nothing when there is no
// standby to read.
func fetchStandby[T any](ctx context.Context, standby string, get func(context.Context, string) (T, error)) (T, error) {
	var zero T
	if standby == "" {
		return zero, nil
	}
	return get(ctx, standby)
}

// merge joins the active's entries with the standby's by key. window says
// the standby's entries are only a window around the active's page: an
// entry not found there is unknown, not missing, and the standby's own
// entries are not listed.
func merge[T any](active, standby []T, standbyOK, window bool, key func(*T) string, cells func(a, s *T) []string) []row {
	idx := make(map[string]int, len(standby))
	for i := range standby {
		idx[key(&standby[i])] = i
	}
	seen := make([]bool, len(standby))
	rows := make([]row, 0, len(active)+len(standby))
	add := func(k string, m mark, c []string) {
		rows = append(rows, row{key: k, mark: m, cells: c, hay: strings.ToLower(strings.Join(c, " "))})
	}
	for i := range active {
		a := &active[i]
		k := key(a)
		j, ok := idx[k]
		var s *T
		m := markBoth
		switch {
		case !standbyOK:
			m = markUnknown
		case ok:
			s = &standby[j]
			seen[j] = true
		case window:
			m = markUnknown
		default:
			m = markMissing
		}
		add(k, m, cells(a, s))
	}
	if standbyOK && !window {
		for j := range standby {
			if !seen[j] {
				s := &standby[j]
				add(key(s), markExtra, cells(nil, s))
			}
		}
	}
	return rows
}

func connKey(c *api.Conn) string {
	return c.Protocol + " " + c.OrigSrc + " " + c.OrigDst + " " + c.ReplySrc + " " + c.ReplyDst
}

func connCells(a, s *api.Conn) []string {
	e, state, sb := a, "—", "—"
	if a != nil {
		state = a.State
	} else {
		e = s
	}
	if s != nil {
		sb = s.State
	}
	return []string{e.Protocol, e.InInterface, e.OrigSrc, e.OutInterface, e.OrigDst, state, sb,
		strconv.FormatUint(e.Packets, 10), strconv.FormatUint(e.Bytes, 10), shortDur(e.Idle)}
}

func xlateKey(x *api.Xlate) string {
	return x.Kind + " " + x.Protocol + " " + x.Real.String() + " " + x.Mapped.String()
}

func xlateCells(a, s *api.Xlate) []string {
	e, conns, sb := a, "—", "—"
	if a != nil {
		conns = strconv.Itoa(a.Conns)
	} else {
		e = s
	}
	if s != nil {
		sb = strconv.Itoa(s.Conns)
	}
	real, mapped := e.Real.String(), e.Mapped.String()
	if e.Real.Port() == 0 {
		real = e.Real.Addr().String()
	}
	if e.Mapped.Port() == 0 {
		mapped = e.Mapped.Addr().String()
	}
	return []string{e.Kind, orDash(e.Protocol), e.RealInterface, real, e.MappedInterface, mapped, conns, sb, shortDur(e.Age)}
}

func bridgeKey(b *api.BridgeEntry) string { return b.MAC }

func bridgeCells(a, s *api.BridgeEntry) []string {
	e, iface, sb := a, "—", "—"
	if a != nil {
		iface = a.Interface
	} else {
		e = s
	}
	if s != nil {
		sb = s.Interface
	}
	return []string{e.MAC, iface, sb, shortDur(e.Age)}
}

func arpKey(a *api.ARPEntry) string { return a.Interface + " " + a.IP.String() }

func arpCells(a, s *api.ARPEntry) []string {
	e, mac, sb := a, "—", "—"
	if a != nil {
		mac = a.MAC
	} else {
		e = s
	}
	if s != nil {
		sb = s.MAC
	}
	return []string{e.Interface, e.IP.String(), mac, sb, shortDur(e.Age)}
}

func routeKey(r *api.Route) string {
	return r.Interface + " " + r.Prefix.String() + " " + r.NextHop.String()
}

func routeCells(a, s *api.Route) []string {
	e, sb := a, "missing"
	if a == nil {
		e, sb = s, "only there"
	} else if s != nil {
		sb = "same"
	}
	via, typ := "—", "static"
	if e.Connected {
		typ = "connected"
	} else {
		via = e.NextHop.String()
	}
	return []string{e.Interface, e.Prefix.String(), via, typ, sb}
}

func ifaceKey(i *api.Interface) string { return i.Name }

func ifaceCells(a, s *api.Interface) []string {
	e, rx, tx, drops := a, "—", "—", "—"
	if a != nil {
		rx, tx, drops = u64(a.RxPackets), u64(a.TxPackets), u64(a.Drops)
	} else {
		e = s
	}
	srx, stx := "—", "—"
	if s != nil {
		srx, stx = u64(s.RxPackets), u64(s.TxPackets)
	}
	addr := "—"
	if e.Address.IsValid() {
		addr = e.Address.String()
	}
	return []string{e.Name, addr, e.MAC, rx, tx, drops, srx, stx}
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// shortDur prints a duration in at most a few characters: 850ms, 12s,
// 3m04s, 2h05m.
func shortDur(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}
