package render

// ASA-format text: the lines an ASA's show commands print, for `falab
// show` (an operator compares them with a real ASA's). The TUI keeps the
// column tables of tables.go; both read the same api values.

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/falab/falab/api"
)

// ShowConn writes `show conn`: a count line, then one line per connection,
// the outside end first as an ASA does.
func ShowConn(w io.Writer, p api.Page[api.Conn]) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d in use\n", p.Total)
	for _, c := range p.Entries {
		http := ""
		if c.HTTP {
			http = ", http"
		}
		if c.NotReplicated {
			http += ", not replicated (policy)"
		}
		fmt.Fprintf(&b, "%s %s  %s %s  %s, state %s, idle %s, age %s, packets %d, bytes %d%s\n",
			strings.ToUpper(c.Protocol), c.OutInterface, c.OrigDst, c.InInterface, c.OrigSrc,
			c.State, HMS(c.Idle), HMS(c.Age), c.Packets, c.Bytes, http)
	}
	more(&b, p.Total, p.Offset, len(p.Entries))
	_, err := io.WriteString(w, b.String())
	return err
}

// ShowXlate writes `show xlate`: ports after a slash, as an ASA writes
// them; a static translation has none.
func ShowXlate(w io.Writer, p api.Page[api.Xlate]) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d in use\n", p.Total)
	for _, x := range p.Entries {
		proto := ""
		if x.Protocol != "" {
			proto = strings.ToUpper(x.Protocol) + " "
		}
		fmt.Fprintf(&b, "%s%s from %s:%s to %s:%s, conns %d, age %s\n", proto, strings.ToUpper(x.Kind),
			x.RealInterface, slashPort(x.Real), x.MappedInterface, slashPort(x.Mapped), x.Conns, HMS(x.Age))
	}
	more(&b, p.Total, p.Offset, len(p.Entries))
	_, err := io.WriteString(w, b.String())
	return err
}

// ShowARP writes `show arp`: interface, address, MAC, age in seconds.
func ShowARP(w io.Writer, as []api.ARPEntry) error {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "\t%s %s %s %d\n", a.Interface, a.IP, a.MAC, int(a.Age.Seconds()))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ShowRoute writes `show route`: prefixes as address and netmask.
func ShowRoute(w io.Writer, rs []api.Route) error {
	var b strings.Builder
	b.WriteString("Codes: C - connected, S - static, * - candidate default\n\n")
	for _, r := range rs {
		code := "C"
		if !r.Connected {
			code = "S"
			if r.Prefix.Bits() == 0 {
				code = "S*"
			}
		}
		fmt.Fprintf(&b, "%-8s %s ", code, addrMask(r.Prefix))
		if r.Connected {
			fmt.Fprintf(&b, "is directly connected, %s\n", r.Interface)
		} else {
			fmt.Fprintf(&b, "[1/0] via %s, %s\n", r.NextHop, r.Interface)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ShowInterface writes `show interface`. An interface without an address
// (a transparent-mode bridge member) is "IP address unassigned", as on an
// ASA.
//
// The interface is "administratively down" when the kernel says so, and
// its line protocol is up when the data plane holds it and it has carrier.
// Failover adds its lines: each role's MAC (virtual or the unit's own),
// the NIC's burned-in MAC, and whether failover monitors the interface,
// in the words of `show failover`.
func ShowInterface(w io.Writer, is []api.Interface) error {
	var b strings.Builder
	for _, i := range is {
		status, line := "up", "up"
		if i.LinkKnown && !i.AdminUp {
			status = "administratively down"
		}
		if !i.Attached || (i.LinkKnown && !i.Carrier) {
			line = "down"
		}
		fmt.Fprintf(&b, "Interface %s, is %s, line protocol is %s\n", i.Name, status, line)
		fmt.Fprintf(&b, "\tMAC address %s, security-level %d\n", i.MAC, i.SecurityLevel)
		failoverMACs(&b, &i)
		if i.Address.IsValid() {
			fmt.Fprintf(&b, "\tIP address %s, subnet mask %s", i.Address.Addr(), netmask(i.Address))
			if i.StandbyAddr.IsValid() {
				fmt.Fprintf(&b, ", standby %s", i.StandbyAddr)
			}
			b.WriteByte('\n')
		} else {
			b.WriteString("\tIP address unassigned\n")
		}
		fmt.Fprintf(&b, "\t%d packets input, %d bytes\n\t%d packets output, %d bytes\n\t%d drops\n",
			i.RxPackets, i.RxBytes, i.TxPackets, i.TxBytes, i.Drops)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// failoverMACs writes the MACs of each role and the burned-in MAC, and
// failover's monitoring of the interface; nothing for a unit that does
// not report them.
func failoverMACs(b *strings.Builder, i *api.Interface) {
	if i.ActiveMAC != "" {
		kind := "burned-in"
		if i.VirtualMAC {
			kind = "virtual"
		}
		fmt.Fprintf(b, "\tFailover MAC address: active %s, standby %s (%s)\n", i.ActiveMAC, i.StandbyMAC, kind)
	}
	if i.BurnedInMAC != "" {
		fmt.Fprintf(b, "\tBurned-in MAC address %s\n", i.BurnedInMAC)
	}
	if i.ActiveMAC != "" || i.Monitored {
		fmt.Fprintf(b, "\tFailover monitoring: %s\n", MonitorState(i))
	}
}

// MonitorState is failover's word for an interface: Normal (Monitored),
// Link Down (Monitored) or Not Monitored, as `show failover` says it.
func MonitorState(i *api.Interface) string {
	switch {
	case !i.Monitored:
		return "Not Monitored"
	case i.MonitorUp:
		return "Normal (Monitored)"
	}
	return "Link Down (Monitored)"
}

// HMS formats a duration like an ASA: 0:01:02.
func HMS(d time.Duration) string {
	s := max(int(d.Seconds()), 0)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

func more(b *strings.Builder, total, offset, n int) {
	if offset+n < total {
		fmt.Fprintf(b, "... %d more (use --offset %d)\n", total-offset-n, offset+n)
	}
}

func slashPort(a netip.AddrPort) string {
	if a.Port() == 0 {
		return a.Addr().String()
	}
	return fmt.Sprintf("%s/%d", a.Addr(), a.Port())
}

// addrMask writes a prefix as an ASA does: the network address, then a
// dotted netmask (IPv6 keeps the /bits form).
func addrMask(p netip.Prefix) string {
	if !p.Addr().Is4() {
		return p.Masked().String()
	}
	return p.Masked().Addr().String() + " " + netmask(p)
}

// netmask is a prefix's IPv4 netmask, dotted (IPv6: /bits).
func netmask(p netip.Prefix) string {
	if !p.Addr().Is4() {
		return fmt.Sprintf("/%d", p.Bits())
	}
	m := net.CIDRMask(p.Bits(), 32)
	return fmt.Sprintf("%d.%d.%d.%d", m[0], m[1], m[2], m[3])
}
