package tui

import (
	"context"
	"maps"
	"strings"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/render"
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
	tabGTP    = "gtp"
	tabVPN    = "vpn"
	tabVoice  = "voice"
)

// wholeLimit is the largest table fetched whole, so that filter and sort
// see every entry and marks are exact. A bigger table is fetched a page at
// a time: only what is on screen.
const wholeLimit = 5000

func newTableTabs() []*tableTab {
	return []*tableTab{
		{id: tabConns, title: "Connections", short: "Conns", replicated: true, pageable: true, sortCol: -1, cols: columns(render.Conns.PairColumns())},
		{id: tabXlate, title: "Xlate", short: "Xlate", replicated: true, pageable: true, sortCol: -1, cols: columns(render.Xlates.PairColumns())},
		{id: tabARP, title: "ARP", short: "ARP", replicated: true, sortCol: -1, cols: columns(render.ARP.PairColumns())},
		{id: tabBridge, title: "Bridge", short: "Bridge", replicated: true, sortCol: -1,
			note: "transparent mode's MAC table (empty when routed); Host: its owner in the lab",
			cols: append(columns(render.Bridge.PairColumns()), column{title: "Host", width: 20})},
		{id: tabRoutes, title: "Routes", short: "Routes", sortCol: -1,
			note: "not replicated: each unit builds its own", cols: columns(render.Routes.PairColumns())},
		{id: tabIfaces, title: "Interfaces", short: "Ifaces", sortCol: -1,
			note: "counters are each unit's own", cols: columns(render.Interfaces.PairColumns())},
		{id: tabDrops, title: "Drops", short: "Drops", sortCol: -1,
			note: "drop counters are each unit's own", cols: columns(render.Drops.PairColumns())},
		{id: tabGTP, title: "GTP", short: "GTP", replicated: true, sortCol: -1,
			note: "inspect gtp's PDP contexts (empty unless the lab inspects GTP)", cols: columns(render.PDPContexts.PairColumns())},
		{id: tabVPN, title: "VPN", short: "VPN", replicated: true, sortCol: -1,
			note: "IKE SAs and their child SAs; the standby's are its replicated copy (show crypto ipsec sa for counters)", cols: columns(render.IKESAs.PairColumns())},
		{id: tabVoice, title: "Voice", short: "Voice", sortCol: -1,
			note: "SIP tables replicated; CTIQBE (a lab model, not wire-compatible): session table NOT replicated, as on an ASA",
			cols: columns(render.Voice.PairColumns())},
	}
}

// columns takes a table's columns from package render, the one definition
// that `falab show` prints too.
func columns(rc []render.Column) []column {
	out := make([]column, len(rc))
	for i, c := range rc {
		out[i] = column{title: c.Title, width: c.Width, right: c.Right, wide: c.Wide}
	}
	return out
}

// tableReq is what one table fetch asks for.
type tableReq struct {
	tab     string
	active  string
	standby string // "" when the lab has only one unit answering
	paged   bool
	offset  int
	limit   int
	macs    map[string]string // the lab's MACs by owner (LabInfo.MACs), for the Bridge tab
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
			d.rows = merge(a.Entries, s.Entries, d.standbyTotal >= 0, r.paged, render.Conns.Key, render.Conns.PairCells)
			markPolicy(d.rows, a.Entries)
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
			d.rows = merge(a.Entries, s.Entries, d.standbyTotal >= 0, r.paged, render.Xlates.Key, render.Xlates.PairCells)
		}
		// Paged with the table shrunk under us: the caller moves back.
		if !r.paged && (d.total > wholeLimit || d.standbyTotal > wholeLimit) {
			d.paged = true
		}
	case tabARP:
		a, aerr := src.ARP(ctx, r.active)
		s, serr := fetchStandby(ctx, r.standby, src.ARP)
		d.fill(len(a), len(s), aerr, serr, r.standby)
		d.rows = merge(a, s, d.standbyTotal >= 0, false, render.ARP.Key, render.ARP.PairCells)
	case tabBridge:
		a, aerr := src.Bridge(ctx, r.active)
		s, serr := fetchStandby(ctx, r.standby, src.Bridge)
		d.fill(len(a), len(s), aerr, serr, r.standby)
		// Each station's MAC resolved to its owner in the lab.
		cells := func(a, s *api.BridgeEntry) []string {
			e := a
			if e == nil {
				e = s
			}
			return append(render.Bridge.PairCells(a, s), macName(r.macs, e.MAC))
		}
		d.rows = merge(a, s, d.standbyTotal >= 0, false, render.Bridge.Key, cells)
	case tabRoutes:
		a, aerr := src.Routes(ctx, r.active)
		s, serr := fetchStandby(ctx, r.standby, src.Routes)
		d.fill(len(a), len(s), aerr, serr, r.standby)
		d.rows = merge(a, s, d.standbyTotal >= 0, false, render.Routes.Key, render.Routes.PairCells)
		for i := range d.rows {
			d.rows[i].mark = markNone
		}
	case tabIfaces:
		a, aerr := src.Interfaces(ctx, r.active)
		s, serr := fetchStandby(ctx, r.standby, src.Interfaces)
		d.fill(len(a), len(s), aerr, serr, r.standby)
		d.rows = merge(a, s, d.standbyTotal >= 0, false, render.Interfaces.Key, render.Interfaces.PairCells)
		for i := range d.rows {
			d.rows[i].mark = markNone
		}
	case tabGTP:
		a, aerr := src.PDPContexts(ctx, r.active)
		s, serr := fetchStandby(ctx, r.standby, src.PDPContexts)
		d.fill(len(a.Contexts), len(s.Contexts), aerr, serr, r.standby)
		d.rows = merge(a.Contexts, s.Contexts, d.standbyTotal >= 0, false, render.PDPContexts.Key, render.PDPContexts.PairCells)
	case tabVPN:
		a, aerr := src.Crypto(ctx, r.active)
		s, serr := fetchStandby(ctx, r.standby, src.Crypto)
		d.fill(len(a.IKE), len(s.IKE), aerr, serr, r.standby)
		d.rows = merge(a.IKE, s.IKE, d.standbyTotal >= 0, false, render.IKESAs.Key, render.IKESAs.PairCells)
	case tabDrops:
		a, aerr := src.Drops(ctx, r.active)
		s, serr := fetchStandby(ctx, r.standby, src.Drops)
		d.fill(len(a), len(s), aerr, serr, r.standby)
		// A reason one unit never counted is 0 there, not missing.
		aa, sb := map[string]uint64{}, map[string]uint64{}
		for k := range s {
			aa[k] = 0
		}
		maps.Copy(aa, a)
		if d.standbyTotal >= 0 {
			for k := range aa {
				sb[k] = 0
			}
			maps.Copy(sb, s)
		}
		d.rows = merge(render.DropList(aa), render.DropList(sb), true, false, render.Drops.Key, render.Drops.PairCells)
		for i := range d.rows {
			d.rows[i].mark = markNone
		}
	case tabVoice:
		d.rows = fetchVoice(ctx, src, r, &d)
	}
	return d
}

// markPolicy marks the active's connections that policy keeps off the
// state link (HTTP with HTTP replication off): their absence on the
// standby is by design, never a missing (✗) error. merge puts the active's
// entries first, in order.
func markPolicy(rows []row, active []api.Conn) {
	for i := range active {
		if active[i].NotReplicated && rows[i].mark != markBoth {
			rows[i].mark = markLocal
		}
	}
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
	add := func(k string, m mark, a, s *T) {
		c := cells(a, s)
		r := row{key: k, mark: m, cells: c, hay: strings.ToLower(strings.Join(c, " "))}
		if a != nil {
			r.active = a
		}
		if s != nil {
			r.standby = s
		}
		rows = append(rows, r)
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
		add(k, m, a, s)
	}
	if standbyOK && !window {
		for j := range standby {
			if !seen[j] {
				s := &standby[j]
				add(key(s), markExtra, nil, s)
			}
		}
	}
	return rows
}

// shortDur prints a duration in at most a few characters, as the tables
// do.
func shortDur(d time.Duration) string { return render.Duration(d) }
