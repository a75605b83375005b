package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"text/tabwriter"
	"time"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/labfile"
	"github.com/falab/falab/labs"
	"github.com/falab/falab/scenario"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func cmdUp(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	detach := fs.Bool("detach", false, "build the lab and return, leaving it running")
	fs.BoolVar(&e.json, "json", false, "print the result as JSON")
	pos, _, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	arg, err := oneArg(pos, "lab")
	if err != nil {
		return err
	}
	l, data, err := lab.Resolve(arg)
	if err != nil {
		return err
	}
	start := time.Now()
	st, err := lab.Up(ctx, l, data, lab.UpOptions{Logger: e.log})
	if err != nil {
		return err
	}
	took := time.Since(start)
	if !*detach && !e.json && isTerminal() {
		return runTUI(ctx, e, st.Name)
	}
	if e.json {
		return printJSON(e.stdout, map[string]any{"lab": st.Name, "namespaces": st.Namespaces, "units": st.Units, "took_ms": took.Milliseconds()})
	}
	fmt.Fprintf(e.stdout, "lab %s is up (%d nodes, %v)\n", l.Name, len(st.Namespaces), took.Round(time.Millisecond))
	for _, u := range l.Units {
		if p, ok := st.Units[u.Name]; ok {
			fmt.Fprintf(e.stdout, "  unit %s (%s) pid %d\n", u.Name, u.Role, p.PID)
		}
	}
	gw := l.Firewall.Interfaces[0].Addr.Addr()
	if !gw.IsValid() {
		gw = l.Firewall.ManagementAddr.Addr()
	}
	fmt.Fprintf(e.stdout, "try:  falab exec %s -- ping -c3 %s\n", firstHost(l), gw)
	fmt.Fprintf(e.stdout, "stop: falab down %s\n", l.Name)
	return nil
}

func firstHost(l *labfile.Lab) string {
	if len(l.Hosts) == 0 {
		return l.Units[0].Name
	}
	return l.Hosts[0].Name
}

func cmdDown(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	all := fs.Bool("all", false, "remove every falab lab and any namespace left with the falab- prefix")
	fs.BoolVar(&e.json, "json", false, "print what was removed as JSON")
	pos, _, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	name, err := oneArg(pos, "lab")
	if err != nil {
		return err
	}
	var reps []lab.DownReport
	switch {
	case *all && name != "":
		return usageError{"give a lab or --all, not both"}
	case *all:
		reps, err = lab.DownAll(e.log)
	default:
		if name == "" {
			name, err = lab.Pick("")
			if err != nil {
				if errors.Is(err, lab.ErrNoLab) {
					fmt.Fprintln(e.stdout, "no lab is running")
					return nil
				}
				return err
			}
		}
		var rep lab.DownReport
		rep, err = lab.Down(name, e.log)
		reps = append(reps, rep)
	}
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(e.stdout, reps)
	}
	if len(reps) == 0 {
		fmt.Fprintln(e.stdout, "no lab is running")
	}
	for _, r := range reps {
		fmt.Fprintf(e.stdout, "lab %s is down (%d namespaces removed, %d processes killed)\n", r.Lab, len(r.Namespaces), len(r.Killed))
	}
	return nil
}

func cmdStatus(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.BoolVar(&e.json, "json", false, "print status as JSON")
	pos, _, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	name, err := oneArg(pos, "lab")
	if err != nil {
		return err
	}
	names := []string{name}
	if name == "" {
		if names, err = lab.Running(); err != nil {
			return err
		}
	}
	var all []*lab.Status
	for _, n := range names {
		s, err := lab.GetStatus(n)
		if err != nil {
			return err
		}
		all = append(all, s)
	}
	if e.json {
		if all == nil {
			all = []*lab.Status{}
		}
		return printJSON(e.stdout, all)
	}
	if len(all) == 0 {
		fmt.Fprintln(e.stdout, "no lab is running (falab up starts the default lab)")
		return nil
	}
	for _, s := range all {
		fmt.Fprintf(e.stdout, "lab %s  (%s, %s, up %v)\n", s.Name, s.Source, s.Phase, time.Since(s.CreatedAt).Round(time.Second))
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  NODE\tKIND\tNAMESPACE\tSTATE")
		for _, n := range s.Nodes {
			state := "ok"
			if !n.Present {
				state = "MISSING"
			}
			for _, u := range s.Units {
				if u.Name == n.Name {
					switch {
					case u.PID == 0:
						state += ", " + u.Role + ", no process"
					case u.Alive:
						state += fmt.Sprintf(", %s, pid %d", u.Role, u.PID)
					default:
						state += fmt.Sprintf(", %s, pid %d DEAD", u.Role, u.PID)
					}
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n.Name, n.Kind, n.Namespace, state)
		}
		tw.Flush()
		for _, p := range s.Problems {
			fmt.Fprintf(e.stdout, "  problem: %s\n", p)
		}
	}
	return nil
}

func cmdLabs(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("labs", flag.ContinueOnError)
	fs.BoolVar(&e.json, "json", false, "print as JSON")
	if _, _, err := parseFlags(fs, args); err != nil {
		return err
	}
	type entry struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Default     bool   `json:"default"`
	}
	var out []entry
	for _, n := range labs.Names() {
		l, _, err := lab.Resolve(n)
		if err != nil {
			return fmt.Errorf("built-in lab %s: %w", n, err)
		}
		out = append(out, entry{n, l.Description, n == labs.Default})
	}
	var scenarios []entry
	for _, n := range scenario.ScenarioNames() {
		sc, err := scenario.LoadScenario(n)
		if err != nil {
			return fmt.Errorf("built-in scenario %s: %w", n, err)
		}
		scenarios = append(scenarios, entry{Name: n, Description: sc.Spec.Description})
	}
	if e.json {
		return printJSON(e.stdout, map[string]any{"labs": out, "scenarios": scenarios})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "labs (falab up NAME):")
	for _, x := range out {
		mark := ""
		if x.Default {
			mark = " (default)"
		}
		fmt.Fprintf(tw, "  %s%s\t%s\n", x.Name, mark, x.Description)
	}
	fmt.Fprintln(tw, "scenarios (falab run NAME):")
	for _, x := range scenarios {
		fmt.Fprintf(tw, "  %s\t%s\n", x.Name, x.Description)
	}
	return tw.Flush()
}

func cmdValidate(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.BoolVar(&e.json, "json", false, "print problems as JSON")
	pos, _, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"takes one lab file"}
	}
	l, _, err := lab.Resolve(pos[0])
	var probs labfile.Problems
	if errors.As(err, &probs) {
		if e.json {
			_ = printJSON(e.stdout, probs)
		} else {
			fmt.Fprintln(e.stdout, probs.Error())
		}
		return failError{fmt.Errorf("%s: %d problem(s)", pos[0], len(probs))}
	}
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(e.stdout, map[string]any{"file": l.File, "lab": l.Name, "ok": true})
	}
	fmt.Fprintf(e.stdout, "%s: lab %s is valid (%d hosts, %d switches, 2 units, %s mode)\n", l.File, l.Name, len(l.Hosts), len(l.Switches), l.Mode)
	return nil
}

func cmdExec(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	labName := fs.String("lab", "", "the lab (default: the only running lab)")
	pos, cmdline, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || len(cmdline) == 0 {
		return usageError{"expected a node, --, and a command"}
	}
	return execNode(*labName, pos[0], cmdline)
}

func cmdShell(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("shell", flag.ContinueOnError)
	labName := fs.String("lab", "", "the lab (default: the only running lab)")
	pos, _, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"expected a node"}
	}
	sh := os.Getenv("SHELL")
	if sh == "" {
		sh = "/bin/sh"
	}
	return execNode(*labName, pos[0], []string{sh})
}

func execNode(labName, node string, argv []string) error {
	name, err := lab.Pick(labName)
	if err != nil {
		return err
	}
	ns, err := lab.NodeNamespace(name, node)
	if err != nil {
		return err
	}
	return lab.ExecIn(ns, argv, "FALAB_LAB="+name, "FALAB_NODE="+node)
}

func cmdVersion(ctx context.Context, e *env, args []string) error {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(e.stdout, "falab %s\n", v)
	return nil
}
