// Command falab builds and runs stateful-failover labs: two firewall units
// in Linux network namespaces, switches and hosts, real traffic, real faults.
// It must not import the data plane (firewall, afpacket, failover,
// replicate): it reaches a running unit only through the unit API's client
// and types.
//
// The command is thin: it parses flags (with cobra, which also gives every
// verb its --help and the shell completions) and calls packages lab,
// labfile, scenario, api, render, tui, labbench and capture; everything it
// prints it gets from there.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exit codes: 0 ok, 1 failure (a check failed), 2 usage or environment error.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError is a mistake in the command line: exit status 2, and the
// verb's usage line is printed after it.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// failError is a check that failed (exit status 1), as opposed to an error
// in use or environment (2).
type failError struct{ error }

// env is what every command gets: where to write, how to log.
type env struct {
	stdout, stderr io.Writer
	log            *slog.Logger
	json           bool
	verbose        bool
}

// needsRoot marks a verb that creates or enters namespaces.
const needsRoot = "falab/needs-root"

func rootNeeded() map[string]string { return map[string]string{needsRoot: "yes"} }

// newRoot builds the command tree. Each call builds a fresh one: cobra
// keeps parsed flags in its commands.
func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "falab",
		Short: "a stateful-failover lab (ASA-style active/standby firewall pair in Linux namespaces)",
		Long: "falab: a stateful-failover lab (ASA-style active/standby firewall pair in Linux namespaces).\n\n" +
			"Every command prints human text; --json prints JSON on stdout instead. Logs go to stderr.\n" +
			"Exit status: 0 success, 1 a check failed, 2 a usage or environment error.\n" +
			"With several labs running, say which with --lab NAME or FALAB_LAB=NAME.\n" +
			"See README.md for the lab-file reference.",
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return e.prepare(cmd) },
	}
	root.PersistentFlags().BoolVarP(&e.verbose, "verbose", "v", false, "debug logs on stderr")
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.AddCommand(
		newUpCmd(e), newTUICmd(e), newDownCmd(e), newStatusCmd(e), newLabsCmd(e), newValidateCmd(e),
		newExecCmd(e), newShellCmd(e), newShowCmd(e), newFailoverCmd(e), newTrafficCmd(e), newFaultCmd(e),
		newCaptureCmd(e), newRunCmd(e), newBenchCmd(e), newVersionCmd(e), newAgentCmd(e), newUnitCmd(e),
	)
	for _, c := range root.Commands() {
		c.DisableFlagsInUseLine = true // each Use line names its flags
	}
	return root
}

// prepare runs before every verb: the logger at the asked level, and the
// root check for the verbs that need it.
func (e *env) prepare(cmd *cobra.Command) error {
	level := slog.LevelInfo
	if e.verbose {
		level = slog.LevelDebug
	}
	e.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	if cmd.Annotations[needsRoot] != "" && os.Geteuid() != 0 {
		return errors.New("needs root (sudo): it creates network namespaces, veth links and raw packet sockets")
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns its exit status.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdout: stdout, stderr: stderr, log: slog.New(slog.DiscardHandler)}
	root := newRoot(e)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	return report(cmd, err, stderr)
}

// report prints err (if any) for the verb that ran and maps it to an exit
// status.
func report(cmd *cobra.Command, err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	name := "falab"
	if cmd != nil && cmd.HasParent() {
		name = "falab " + cmd.Name()
	}
	var ue usageError
	var fe failError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %v\nusage: %s\n", name, err, cmd.UseLine())
		return exitUsage
	case errors.As(err, &fe):
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitFail
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitUsage
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonFlag adds --json to a verb.
func (e *env) jsonFlag(cmd *cobra.Command, what string) {
	cmd.Flags().BoolVar(&e.json, "json", false, "print "+what+" as JSON on stdout")
}

// maxArgs is cobra.MaximumNArgs with falab's usage error (exit 2, usage line).
func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > n {
			return usageError{fmt.Sprintf("takes at most %d %s, got %q", n, what, args)}
		}
		return nil
	}
}

// exactArgs is cobra.ExactArgs with falab's usage error.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{"expected " + what}
		}
		return nil
	}
}
