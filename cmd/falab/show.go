package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/render"
)

var showWhat = []string{"conn", "xlate", "arp", "mac-address-table", "route", "interface", "asp-drop", "failover", "module", "uauth", "crypto", "sip", "ctiqbe"}

// cryptoWhat are the words after `show crypto`.
var cryptoWhat = []string{"ikev2 sa", "ipsec sa"}

// showOptions are the flags of `falab show`.
type showOptions struct {
	lab, unit     string
	limit, offset int
	crypto        string // after show crypto: ikev2 or ipsec
}

func newShowCmd(e *env) *cobra.Command {
	var o showOptions
	cmd := &cobra.Command{
		Use:   "show conn|xlate|arp|mac-address-table|route|interface|asp-drop|failover|module|uauth|crypto ikev2 sa|crypto ipsec sa|sip|ctiqbe|service-policy inspect sip|" + servicePolicyUsage + " [--unit U] [--lab LAB] [--json]",
		Short: "show a unit's tables, like an ASA's show commands",
		Long: "A unit's tables the way an ASA's show commands print them (default: the active unit; --unit fw-b\n" +
			"shows the standby's copy). Large tables (conn, xlate) are paged with --offset and --limit.\n" +
			"mac-address-table is the transparent mode's bridge table. failover shows the unit asked as\n" +
			"\"This host\" and its peer as \"Other host\". module shows each unit's service module (or --unit's);\n" +
			"uauth each unit's authenticated users (never replicated). service-policy inspect gtp pdp-context\n" +
			"[detail] lists the GTP PDP contexts (a lab with firewall.inspect.gtp). crypto ikev2 sa and crypto\n" +
			"ipsec sa list the IKE and IPsec SAs (a lab with firewall.crypto_maps). sip, ctiqbe and\n" +
			"service-policy inspect sip show the voice inspection tables (a lab with firewall.inspect.sip/ctiqbe).",
		ValidArgs: showWhat,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 && args[0] == "crypto" {
				if len(args) != 3 || !slices.Contains(cryptoWhat, args[1]+" "+args[2]) {
					return usageError{"show crypto takes: " + strings.Join(cryptoWhat, " | ")}
				}
				return nil
			}
			if isSIPServicePolicy(args) {
				return nil
			}
			return showArgs(args)
		},
		Annotations: rootNeeded(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "crypto" {
				o.crypto = args[1]
			}
			if isSIPServicePolicy(args) { // show_voice.go
				return e.showServicePolicy(cmd.Context(), o, args[1:])
			}
			return e.show(cmd.Context(), o, args)
		},
	}
	labFlag(cmd, &o.lab)
	cmd.Flags().StringVar(&o.unit, "unit", "", "the unit to ask (default: the active one)")
	cmd.Flags().IntVar(&o.limit, "limit", 1000, "at most this many entries of a large table (conn, xlate)")
	cmd.Flags().IntVar(&o.offset, "offset", 0, "skip this many entries first (conn, xlate)")
	e.jsonFlag(cmd, "the table")
	return cmd
}

// show prints a unit's table the way an ASA's show command does.
func (e *env) show(ctx context.Context, o showOptions, args []string) error {
	what := args[0]
	detail, err := pdpDetail(args)
	if what == "service-policy" && err != nil {
		return err
	}
	if !slices.Contains(showWhat, what) && what != "service-policy" {
		return usageError{fmt.Sprintf("unknown table %q (expected one of: %s)", what, strings.Join(showWhat, ", "))}
	}
	name, err := pickLab(o.lab, "")
	if err != nil {
		return err
	}
	if what == "failover" {
		return e.showFailover(ctx, name, o.unit)
	}
	if what == "module" {
		return e.showModule(ctx, name, o.unit)
	}
	if what == "uauth" {
		return e.showUAuth(ctx, name, o.unit)
	}
	u := o.unit
	if u == "" {
		if u, err = lab.ActiveUnit(ctx, name); err != nil {
			return err
		}
	}
	c, err := lab.UnitClient(name, u)
	if err != nil {
		return err
	}
	if what == "sip" || what == "ctiqbe" {
		return e.showVoice(ctx, c, u, what)
	}
	switch what {
	case "service-policy":
		return e.showPDPContexts(ctx, c, u, detail)
	case "conn":
		p, err := c.Conns(ctx, o.offset, o.limit)
		return e.print(p, err, func(w io.Writer) error {
			fmt.Fprintf(w, "%s: ", u)
			return render.ShowConn(w, p)
		})
	case "crypto":
		cr, err := c.Crypto(ctx)
		return e.print(cr, err, func(w io.Writer) error {
			if o.crypto == "ikev2" {
				return render.ShowCryptoIKEv2SA(w, cr)
			}
			return render.ShowCryptoIPsecSA(w, cr)
		})
	case "xlate":
		p, err := c.Xlates(ctx, o.offset, o.limit)
		return e.print(p, err, func(w io.Writer) error {
			fmt.Fprintf(w, "%s: ", u)
			return render.ShowXlate(w, p)
		})
	}
	return e.showSmall(ctx, c, u, what)
}

// print writes v as JSON with --json, else as text.
func (e *env) print(v any, err error, text func(io.Writer) error) error {
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(e.stdout, v)
	}
	return text(e.stdout)
}

// showSmall prints one of a unit's small tables (fetched whole).
func (e *env) showSmall(ctx context.Context, c *api.Client, u, what string) error {
	switch what {
	case "arp":
		a, err := c.ARP(ctx)
		return e.print(a, err, func(w io.Writer) error { return render.ShowARP(w, a) })
	case "mac-address-table":
		bt, err := c.Bridge(ctx)
		return e.print(bt, err, func(w io.Writer) error {
			fmt.Fprintf(w, "%s: %d entries (transparent mode bridge table; replicated to the standby)\n", u, len(bt))
			return render.Bridge.Table(bt).Text(w)
		})
	case "route":
		rs, err := c.Routes(ctx)
		return e.print(rs, err, func(w io.Writer) error {
			fmt.Fprintf(w, "%s: routes are not replicated: each unit builds its own\n", u)
			return render.ShowRoute(w, rs)
		})
	case "interface":
		is, err := c.Interfaces(ctx)
		return e.print(is, err, func(w io.Writer) error { return render.ShowInterface(w, is) })
	default: // asp-drop
		d, err := c.Drops(ctx)
		return e.print(d, err, func(w io.Writer) error {
			fmt.Fprintf(w, "%s: frame drops by reason\n", u)
			return render.Drops.Table(render.DropList(d)).Text(w)
		})
	}
}

// statusWait bounds how long `show failover` waits for a unit: a frozen
// unit never answers, and the operator must not wait with it.
const statusWait = time.Second

// unitStatuses asks every unit at once, each within statusWait. A unit that
// does not answer is named, with why when the process table says (frozen,
// not running).
func unitStatuses(ctx context.Context, labName string, units []string) ([]api.Status, []string) {
	sts := make([]api.Status, len(units))
	errs := make([]string, len(units))
	st, _ := lab.ReadState(labName)
	var wg sync.WaitGroup
	for i, n := range units {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, statusWait)
			defer cancel()
			c, err := lab.UnitClient(labName, n)
			if err == nil {
				sts[i], err = c.Status(sctx)
			}
			if err == nil {
				return
			}
			why := "not running"
			if st != nil {
				if p, ok := st.Units[n]; ok && p.Stopped() {
					why = fmt.Sprintf("not answering: process %d is stopped (frozen, SIGSTOP)", p.PID)
				} else if ok && p.Alive() {
					why = fmt.Sprintf("not answering within %v (process %d runs)", statusWait, p.PID)
				}
			}
			sts[i] = api.Status{Unit: n, State: why}
			errs[i] = fmt.Sprintf("%s: %s (%v)", n, why, err)
		})
	}
	wg.Wait()
	return sts, slices.DeleteFunc(errs, func(s string) bool { return s == "" })
}

// showFailover prints `show failover` as the unit asked answers it (the
// active one by default): it is "This host", its peer "Other host".
func (e *env) showFailover(ctx context.Context, name, asked string) error {
	units, err := lab.UnitNames(name)
	if err != nil {
		return err
	}
	if asked != "" && !slices.Contains(units, asked) {
		return usageError{fmt.Sprintf("lab %s has no unit %q (units: %s)", name, asked, strings.Join(units, ", "))}
	}
	sts, errs := unitStatuses(ctx, name, units)
	if e.json {
		return printJSON(e.stdout, sts)
	}
	if len(sts) != 2 {
		return fmt.Errorf("lab %s has %d units, not a failover pair", name, len(sts))
	}
	this := thisHost(sts, asked)
	if err := render.ShowFailover(e.stdout, name, sts[this], sts[1-this], time.Now()); err != nil {
		return err
	}
	for _, x := range errs {
		fmt.Fprintln(e.stderr, x)
	}
	return nil
}

// thisHost is the index of the unit that answers `show failover`: the one
// asked, else the active one, else one that answered (a frozen unit does
// not), else the first.
func thisHost(sts []api.Status, asked string) int {
	if i := slices.IndexFunc(sts, func(s api.Status) bool { return s.Unit == asked }); i >= 0 {
		return i
	}
	if i := slices.IndexFunc(sts, func(s api.Status) bool { return s.PID != 0 && s.Active }); i >= 0 {
		return i
	}
	return max(slices.IndexFunc(sts, func(s api.Status) bool { return s.PID != 0 }), 0)
}

func newFailoverCmd(e *env) *cobra.Command {
	var labName, to string
	cmd := &cobra.Command{
		Use:   "failover [--to UNIT] [--lab LAB] [--json] | reset",
		Short: "make the standby (or UNIT) active; reset a Failed unit",
		Long: "Make the standby (or --to UNIT) active, like `failover active` on the standby / `no failover active`\n" +
			"on the active. `falab failover reset` clears a Failed unit (`failover reset`).",
		ValidArgs:   []string{"reset"},
		Args:        maxArgs(1, "argument (reset)"),
		Annotations: rootNeeded(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && args[0] != "reset" {
				return usageError{"expected no argument, or reset"}
			}
			name, err := pickLab(labName, "")
			if err != nil {
				return err
			}
			if len(args) == 1 {
				return e.failoverReset(cmd.Context(), name)
			}
			return e.failoverActive(cmd.Context(), name, to)
		},
	}
	labFlag(cmd, &labName)
	cmd.Flags().StringVar(&to, "to", "", "make this unit active (default: the standby)")
	e.jsonFlag(cmd, "the result")
	return cmd
}

// failoverReset is `failover reset` on both units.
func (e *env) failoverReset(ctx context.Context, name string) error {
	units, err := lab.UnitNames(name)
	if err != nil {
		return err
	}
	var results []string
	for _, n := range units {
		c, err := lab.UnitClient(name, n)
		var r string
		if err == nil {
			r, err = c.Failover(ctx, "reset")
		}
		if err != nil {
			r = err.Error()
		}
		results = append(results, n+": "+r)
	}
	fmt.Fprintln(e.stdout, strings.Join(results, "\n"))
	return nil
}

// failoverActive makes target (default: the standby) active.
func (e *env) failoverActive(ctx context.Context, name, target string) error {
	units, err := lab.UnitNames(name)
	if err != nil {
		return err
	}
	if target == "" {
		active, err := lab.ActiveUnit(ctx, name)
		if err != nil {
			return err
		}
		target = units[0]
		if active == units[0] {
			target = units[1]
		}
	}
	c, err := lab.UnitClient(name, target)
	if err != nil {
		return err
	}
	start := time.Now()
	r, err := c.Failover(ctx, "active")
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(e.stdout, map[string]any{"unit": target, "result": r, "took_ms": time.Since(start).Milliseconds()})
	}
	fmt.Fprintf(e.stdout, "failover active on %s: %s\n", target, r)
	return nil
}

// showModule prints `show module` of each unit (or the one asked): the
// module is per unit, and what each one's module knows differs after a
// failover.
func (e *env) showModule(ctx context.Context, name, asked string) error {
	units, err := lab.UnitNames(name)
	if err != nil {
		return err
	}
	if asked != "" {
		if !slices.Contains(units, asked) {
			return usageError{fmt.Sprintf("lab %s has no unit %q (units: %s)", name, asked, strings.Join(units, ", "))}
		}
		units = []string{asked}
	}
	var ms []api.ModuleInfo
	for _, n := range units {
		c, err := lab.UnitClient(name, n)
		var m api.ModuleInfo
		if err == nil {
			m, err = c.Module(ctx)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", n, err)
			continue
		}
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		return fmt.Errorf("no unit of lab %s answered with a service module", name)
	}
	return e.print(ms, nil, func(w io.Writer) error { return render.ShowModule(w, ms) })
}
