package render

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/falab/falab/api"
)

// Conns is `show conn`: one connection a row, as the initiator sees it.
var Conns = Spec[api.Conn]{
	Columns: []Column{
		{Title: "Proto", Width: 5}, {Title: "In", Width: 8, Wide: true}, {Title: "Source", Width: 21},
		{Title: "Out", Width: 8, Wide: true}, {Title: "Destination", Width: 21},
		{Title: "State", Width: 11, PerUnit: true},
		{Title: "Pkts", Width: 9, Right: true, Wide: true}, {Title: "Bytes", Width: 11, Right: true, Wide: true},
		{Title: "Idle", Width: 8, Wide: true},
	},
	Key: func(c *api.Conn) string {
		return c.Protocol + " " + c.OrigSrc + " " + c.OrigDst + " " + c.ReplySrc + " " + c.ReplyDst
	},
	Cells: func(c *api.Conn) []string {
		return []string{c.Protocol, c.InInterface, c.OrigSrc, c.OutInterface, c.OrigDst, c.State,
			u64(c.Packets), u64(c.Bytes), Duration(c.Idle)}
	},
	Standby: []StandbyColumn{{Column: Column{Title: "Standby", Width: 11}, From: 5, After: 5}},
}

// Xlates is `show xlate`: one translation a row.
var Xlates = Spec[api.Xlate]{
	Columns: []Column{
		{Title: "Kind", Width: 7}, {Title: "Proto", Width: 5}, {Title: "Real if", Width: 8, Wide: true},
		{Title: "Real", Width: 21}, {Title: "Mapped if", Width: 9, Wide: true}, {Title: "Mapped", Width: 21},
		{Title: "Conns", Width: 5, Right: true, PerUnit: true},
		{Title: "Age", Width: 8, Wide: true},
	},
	Key: func(x *api.Xlate) string {
		return x.Kind + " " + x.Protocol + " " + x.Real.String() + " " + x.Mapped.String()
	},
	Cells: func(x *api.Xlate) []string {
		real, mapped := x.Real.String(), x.Mapped.String()
		if x.Real.Port() == 0 {
			real = x.Real.Addr().String()
		}
		if x.Mapped.Port() == 0 {
			mapped = x.Mapped.Addr().String()
		}
		return []string{x.Kind, orNone(x.Protocol), x.RealInterface, real, x.MappedInterface, mapped,
			strconv.Itoa(x.Conns), Duration(x.Age)}
	},
	Standby: []StandbyColumn{{Column: Column{Title: "Standby", Width: 7, Right: true}, From: 6, After: 6}},
}

// ARP is `show arp`.
var ARP = Spec[api.ARPEntry]{
	Columns: []Column{
		{Title: "Interface", Width: 10}, {Title: "IP", Width: 15}, {Title: "MAC", Width: 17, PerUnit: true},
		{Title: "Age", Width: 8, Wide: true},
	},
	Key: func(a *api.ARPEntry) string { return a.Interface + " " + a.IP.String() },
	Cells: func(a *api.ARPEntry) []string {
		return []string{a.Interface, a.IP.String(), a.MAC, Duration(a.Age)}
	},
	Standby: []StandbyColumn{{Column: Column{Title: "Standby MAC", Width: 17}, From: 2, After: 2}},
}

// Bridge is `show mac-address-table`: the transparent mode's stations.
var Bridge = Spec[api.BridgeEntry]{
	Columns: []Column{
		{Title: "MAC", Width: 17}, {Title: "Interface", Width: 10, PerUnit: true},
		{Title: "Age", Width: 8, Wide: true},
	},
	Key: func(b *api.BridgeEntry) string { return b.MAC },
	Cells: func(b *api.BridgeEntry) []string {
		return []string{b.MAC, b.Interface, Duration(b.Age)}
	},
	Standby: []StandbyColumn{{Column: Column{Title: "Standby if", Width: 10}, From: 1, After: 1}},
}

// Routes is `show route`. Routes are not replicated: the standby column
// says whether the standby built the same route.
var Routes = Spec[api.Route]{
	Columns: []Column{
		{Title: "Interface", Width: 10}, {Title: "Prefix", Width: 18}, {Title: "Via", Width: 15},
		{Title: "Type", Width: 9},
	},
	Key: func(r *api.Route) string {
		return r.Interface + " " + r.Prefix.String() + " " + r.NextHop.String()
	},
	Cells: func(r *api.Route) []string {
		via, typ := None, "static"
		if r.Connected {
			typ = "connected"
		} else {
			via = r.NextHop.String()
		}
		return []string{r.Interface, r.Prefix.String(), via, typ}
	},
	Standby: []StandbyColumn{{Column: Column{Title: "Standby", Width: 15}, From: -1, After: 3}},
}

// Interfaces is `show interface`: the data interfaces, the MAC each unit
// answers with (the virtual MAC, under mac_mode virtual, moves with the
// role), the kernel's link state, failover's monitoring and the counters.
// A two-unit view shows each unit's MAC and link side by side.
var Interfaces = Spec[api.Interface]{
	Columns: []Column{
		{Title: "Name", Width: 9}, {Title: "Standby IP", Width: 15, Wide: true},
		{Title: "MAC", Width: 17, PerUnit: true}, {Title: "Virtual MAC", Width: 17, Wide: true},
		{Title: "Link", Width: 6, PerUnit: true}, {Title: "Monitor", Width: 9, PerUnit: true},
		{Title: "Sec", Width: 3, Right: true, Wide: true}, {Title: "Address", Width: 18, Wide: true},
		{Title: "Rx pkts", Width: 9, Right: true, PerUnit: true, Wide: true}, {Title: "Tx pkts", Width: 9, Right: true, PerUnit: true, Wide: true},
		{Title: "Drops", Width: 7, Right: true, PerUnit: true, Wide: true},
	},
	Key: func(i *api.Interface) string { return i.Name },
	Cells: func(i *api.Interface) []string {
		addr, sb := None, None
		if i.Address.IsValid() {
			addr = i.Address.String()
		}
		if i.StandbyAddr.IsValid() {
			sb = i.StandbyAddr.String()
		}
		return []string{i.Name, sb, i.MAC, virtualMAC(i), LinkState(i), monitorWord(i),
			strconv.Itoa(i.SecurityLevel), addr, u64(i.RxPackets), u64(i.TxPackets), u64(i.Drops)}
	},
	Standby: []StandbyColumn{
		{Column: Column{Title: "Standby MAC", Width: 17}, From: 2, After: 2},
		{Column: Column{Title: "Sb link", Width: 7}, From: 4, After: 4},
		{Column: Column{Title: "Sb rx", Width: 9, Right: true, Wide: true}, From: 8, After: 10},
		{Column: Column{Title: "Sb tx", Width: 9, Right: true, Wide: true}, From: 9, After: 10},
	},
}

// virtualMAC is the interface's active virtual MAC, "burned-in" when the
// pair uses each unit's own MACs, None from a unit that does not say.
func virtualMAC(i *api.Interface) string {
	switch {
	case i.VirtualMAC:
		return i.ActiveMAC
	case i.ActiveMAC != "":
		return "burned-in"
	}
	return None
}

// LinkState is an interface's link in a word: up, "no car" (no carrier),
// "adm dn" (administratively down), or "?" when the unit does not know.
func LinkState(i *api.Interface) string {
	switch {
	case !i.LinkKnown:
		return "?"
	case !i.AdminUp:
		return "adm dn"
	case !i.Carrier:
		return "no car"
	}
	return "up"
}

// monitorWord is failover's state of a monitored interface: Normal or
// Link Down; "no" when failover does not monitor it.
func monitorWord(i *api.Interface) string {
	switch {
	case !i.Monitored:
		return "no"
	case i.MonitorUp:
		return "Normal"
	}
	return "Link Down"
}

// Drop is one drop counter.
type Drop struct {
	Reason string
	Count  uint64
}

// DropList returns the drop counters sorted by reason.
func DropList(d api.Drops) []Drop {
	out := make([]Drop, 0, len(d))
	for r, n := range d {
		out = append(out, Drop{Reason: r, Count: n})
	}
	slices.SortFunc(out, func(a, b Drop) int {
		if a.Reason < b.Reason {
			return -1
		}
		if a.Reason > b.Reason {
			return 1
		}
		return 0
	})
	return out
}

// Drops is `show asp-drop`: frames dropped, by reason.
var Drops = Spec[Drop]{
	Columns: []Column{{Title: "Reason", Width: 32}, {Title: "Count", Width: 12, Right: true, PerUnit: true}},
	Key:     func(d *Drop) string { return d.Reason },
	Cells:   func(d *Drop) []string { return []string{d.Reason, u64(d.Count)} },
	Standby: []StandbyColumn{{Column: Column{Title: "Standby", Width: 12, Right: true}, From: 1, After: 1}},
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

func orNone(s string) string {
	if s == "" {
		return None
	}
	return s
}

// Duration prints a duration in at most a few characters: 850ms, 12s,
// 3m04s, 2h05m.
func Duration(d time.Duration) string {
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

// IKESAs is the VPN tab: one IKE SA a row with its child SAs' SPIs and the
// message ID the peer's next request must carry, which the standby's
// replicated copy must match for a takeover to go unnoticed.
var IKESAs = Spec[api.IKESA]{
	Columns: []Column{
		{Title: "Peer", Width: 21}, {Title: "IKE SPI i/r", Width: 33}, {Title: "Suite", Width: 28, Wide: true},
		{Title: "Child SPIs in/out", Width: 17},
		{Title: "Next msg", Width: 8, Right: true, PerUnit: true},
	},
	Key: func(s *api.IKESA) string { return s.SPIi + "/" + s.SPIr },
	Cells: func(s *api.IKESA) []string {
		var ch []string
		for _, c := range s.Children {
			ch = append(ch, c.InSPI+"/"+c.OutSPI)
		}
		return []string{s.Remote.String(), s.SPIi + "/" + s.SPIr, s.Suite, strings.Join(ch, " "), strconv.FormatUint(uint64(s.NextMessageID), 10)}
	},
	Standby: []StandbyColumn{{Column: Column{Title: "Standby", Width: 8, Right: true}, From: 4, After: 4}},
}
