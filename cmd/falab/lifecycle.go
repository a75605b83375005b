package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/labfile"
	"github.com/falab/falab/labs"
	"github.com/falab/falab/scenario"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func newUpCmd(e *env) *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "up [LAB|FILE] [--detach] [--json]",
		Short: "build a lab and start its firewall units",
		Long: "Validate the lab file (a built-in lab's name or a path; default: the default lab), build its\n" +
			"namespaces, switches and links, start both firewall units, and open the TUI (unless --detach,\n" +
			"--json, or stdout is not a terminal). A bad file changes nothing on the machine.",
		Args:        maxArgs(1, "lab"),
		Annotations: rootNeeded(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.up(cmd.Context(), firstOr(args, ""), detach)
		},
	}
	cmd.Flags().BoolVar(&detach, "detach", false, "build the lab and return, leaving it running")
	e.jsonFlag(cmd, "the result")
	return cmd
}

// firstOr is args[0], or def when there is none.
func firstOr(args []string, def string) string {
	if len(args) == 0 {
		return def
	}
	return args[0]
}

func (e *env) up(ctx context.Context, arg string, detach bool) error {
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
	if !detach && !e.json && isTerminal() {
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

func newDownCmd(e *env) *cobra.Command {
	var all bool
	var labName string
	cmd := &cobra.Command{
		Use:   "down [LAB] [--lab LAB] | --all",
		Short: "remove a lab: processes, namespaces, state (also after a crash)",
		Long: "Kill the lab's processes (by recorded PID, and any process still inside its namespaces), delete\n" +
			"its namespaces and its state directory. Idempotent; also cleans a lab whose up crashed.\n" +
			"The lab: LAB, else --lab, else $FALAB_LAB, else the only running lab. --all removes every\n" +
			"recorded lab and any namespace left with the falab- prefix, other people's labs included.",
		Args:        maxArgs(1, "lab"),
		Annotations: rootNeeded(),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := firstOr(args, labName)
			if all && name != "" {
				return usageError{"give a lab or --all, not both"}
			}
			return e.down(name, all)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "remove every falab lab and any namespace left with the falab- prefix")
	labFlag(cmd, &labName)
	e.jsonFlag(cmd, "what was removed")
	return cmd
}

func (e *env) down(name string, all bool) error {
	var reps []lab.DownReport
	var err error
	if all {
		reps, err = lab.DownAll(e.log)
	} else {
		if name == "" {
			name = os.Getenv(labEnv)
		}
		if name == "" {
			name, err = pickLab("", "")
			if errors.Is(err, lab.ErrNoLab) {
				fmt.Fprintln(e.stdout, "no lab is running")
				return nil
			}
			if err != nil {
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

func newStatusCmd(e *env) *cobra.Command {
	var labName string
	cmd := &cobra.Command{
		Use:   "status [LAB] [--lab LAB] [--json]",
		Short: "show running labs, their nodes and unit processes",
		Long: "Running labs (LAB, --lab or $FALAB_LAB: that one only), their nodes and namespaces, the unit\n" +
			"processes (alive or dead) with each unit's failover state when its API answers, and anything missing.",
		Args:        maxArgs(1, "lab"),
		Annotations: rootNeeded(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.status(cmd.Context(), firstOr(args, labName))
		},
	}
	labFlag(cmd, &labName)
	e.jsonFlag(cmd, "status")
	return cmd
}

func (e *env) status(ctx context.Context, name string) error {
	if name == "" {
		name = os.Getenv(labEnv)
	}
	names := []string{name}
	if name == "" {
		var err error
		if names, err = lab.Running(); err != nil {
			return err
		}
	}
	var all []labStatus
	for _, n := range names {
		s, err := lab.GetStatus(n)
		if err != nil {
			return err
		}
		all = append(all, withFailover(ctx, s))
	}
	if e.json {
		if all == nil {
			all = []labStatus{}
		}
		return printJSON(e.stdout, all)
	}
	if len(all) == 0 {
		fmt.Fprintln(e.stdout, "no lab is running (falab up starts the default lab)")
		return nil
	}
	for _, s := range all {
		printStatus(e.stdout, s)
	}
	return nil
}

func newLabsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "labs [--json]",
		Short: "list the built-in labs and scenarios",
		Args:  maxArgs(0, "arguments"),
		RunE:  func(*cobra.Command, []string) error { return e.labs() },
	}
	e.jsonFlag(cmd, "the list")
	return cmd
}

func (e *env) labs() error {
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

func newValidateCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate FILE [--json]",
		Short: "check a lab file without touching the machine",
		Long:  "Check a lab file without touching the machine: every problem with file, line and field.\nExit 1 when there are problems.",
		Args:  exactArgs(1, "one lab file"),
		RunE:  func(_ *cobra.Command, args []string) error { return e.validate(args[0]) },
	}
	e.jsonFlag(cmd, "the problems")
	return cmd
}

func (e *env) validate(file string) error {
	l, _, err := lab.Resolve(file)
	var probs labfile.Problems
	if errors.As(err, &probs) {
		if e.json {
			_ = printJSON(e.stdout, probs)
		} else {
			fmt.Fprintln(e.stdout, probs.Error())
		}
		return failError{fmt.Errorf("%s: %d problem(s)", file, len(probs))}
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

func newExecCmd(e *env) *cobra.Command {
	var labName string
	cmd := &cobra.Command{
		Use:   "exec [--lab LAB] NODE -- CMD...",
		Short: "run a command inside a node's namespace",
		Long:  "Run a command inside a node's namespace (FALAB_LAB and FALAB_NODE are set in it).",
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return usageError{"expected a node, --, and a command"}
			}
			return nil
		},
		Annotations: rootNeeded(),
		RunE: func(_ *cobra.Command, args []string) error {
			return execNode(labName, args[0], args[1:])
		},
	}
	labFlag(cmd, &labName)
	return cmd
}

func newShellCmd(e *env) *cobra.Command {
	var labName string
	cmd := &cobra.Command{
		Use:         "shell [--lab LAB] NODE",
		Short:       "open a shell ($SHELL) inside a node's namespace",
		Args:        exactArgs(1, "a node"),
		Annotations: rootNeeded(),
		RunE: func(_ *cobra.Command, args []string) error {
			sh := os.Getenv("SHELL")
			if sh == "" {
				sh = "/bin/sh"
			}
			return execNode(labName, args[0], []string{sh})
		},
	}
	labFlag(cmd, &labName)
	return cmd
}

func execNode(labName, node string, argv []string) error {
	name, err := pickLab(labName, "")
	if err != nil {
		return err
	}
	return lab.ExecCommand(name, node, argv)
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  maxArgs(0, "arguments"),
		RunE:  func(*cobra.Command, []string) error { return e.version() },
	}
}

func (e *env) version() error {
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
