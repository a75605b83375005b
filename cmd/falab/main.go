// Command falab builds and runs stateful-failover labs: two firewall units
// in Linux network namespaces, switches and hosts, real traffic, real faults.
// It must not import the data plane (firewall, afpacket, failover,
// replicate): it reaches a running unit only through the unit API's client
// and types.
//
// The command is thin: it parses flags and calls package lab (and the
// unit's API client); everything it prints it gets from there.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// exit codes: 0 ok, 1 failure (a check failed), 2 usage or environment error.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// command is one falab verb.
type command struct {
	name     string
	args     string // synopsis of the arguments
	summary  string
	needRoot bool
	run      func(ctx context.Context, env *env, args []string) error
}

// env is what every command gets: where to write, how to log.
type env struct {
	stdout, stderr io.Writer
	log            *slog.Logger
	json           bool
}

func commands() []command {
	return []command{
		{"up", "[LAB|FILE] [--detach] [--json]", "build a lab and start its firewall units", true, cmdUp},
		{"tui", "[LAB]", "the live terminal UI over a running lab (q leaves the lab running)", true, cmdTUI},
		{"down", "[LAB] | --all", "remove a lab: processes, namespaces, state (also after a crash)", true, cmdDown},
		{"status", "[LAB] [--json]", "show running labs, their nodes and unit processes", true, cmdStatus},
		{"labs", "[--json]", "list the built-in labs", false, cmdLabs},
		{"validate", "FILE", "check a lab file without touching the machine", false, cmdValidate},
		{"exec", "[--lab LAB] NODE -- CMD...", "run a command inside a node's namespace", true, cmdExec},
		{"shell", "[--lab LAB] NODE", "open a shell inside a node's namespace", true, cmdShell},
		{"show", "conn|xlate|arp|mac-address-table|route|interface|asp-drop|failover [--unit U] [--json]", "show a unit's tables, like an ASA's show commands", true, cmdShow},
		{"failover", "[--to UNIT] | reset", "make the standby (or UNIT) active; reset a Failed unit", true, cmdFailover},
		{"traffic", "start|stop|show [--kind K --client H --server H ...]", "traffic generators between hosts, with live figures", true, cmdTraffic},
		{"fault", "KIND [TARGET] [ARG]", "inject a fault: kill|freeze|thaw|restart|power-off UNIT, link-down|link-up NODE:IFACE, cut-failover, heal-failover, loss NODE:IFACE PCT, clear NODE:IFACE, failover [UNIT]", true, cmdFault},
		{"capture", "[--lab LAB] NODE IFACE [-w FILE.pcapng] [-c N] [--duration D]", "capture a lab link to pcapng (stdout for | wireshark -k -i -)", true, cmdCapture},
		{"run", "SCENARIO [--json] [--quiet]", "play a scenario headless: lab up, traffic, faults, checks, lab down; exit 0 pass, 1 fail", true, cmdRun},
		{"bench", "[--quick] [--only N,...] [--json]", "measure forwarding, connection rate, failover gaps, bulk sync, lag, lab up/down; each beside its target and the kernel's", true, cmdBench},
		{"version", "", "print the version", false, cmdVersion},
		{"agent", "KIND --role server|client ...", "(internal) a traffic generator process", false, cmdAgent},
		{"unit", "--config FILE", "(internal) the firewall unit process that falab up starts", true, cmdUnit},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	level := slog.LevelInfo
	var rest []string
	for _, a := range args {
		switch a {
		case "-v", "--verbose":
			level = slog.LevelDebug
		default:
			rest = append(rest, a)
		}
	}
	args = rest
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return exitOK
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == args[0] {
			cmd = &c
			break
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "falab: unknown command %q (run falab help)\n", args[0])
		return exitUsage
	}
	if cmd.needRoot && os.Geteuid() != 0 {
		fmt.Fprintf(stderr, "falab %s: needs root (sudo): it creates network namespaces, veth links and raw packet sockets\n", cmd.name)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdout: stdout, stderr: stderr, log: log}
	err := cmd.run(ctx, e, args[1:])
	var ue usageError
	var fe failError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "falab %s: %v\nusage: falab %s %s\n", cmd.name, err, cmd.name, cmd.args)
		return exitUsage
	case errors.As(err, &fe):
		fmt.Fprintf(stderr, "falab %s: %v\n", cmd.name, err)
		return exitFail
	default:
		fmt.Fprintf(stderr, "falab %s: %v\n", cmd.name, err)
		return exitUsage
	}
}

// failError is a check that failed (exit status 1), as opposed to an error
// in use or environment (2).
type failError struct{ error }

func usage(w io.Writer) {
	fmt.Fprintln(w, "falab: a stateful-failover lab (ASA-style active/standby firewall pair in Linux namespaces)")
	fmt.Fprintln(w, "\nusage: falab [-v] COMMAND [ARGS]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %s %s\n      %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintln(w, "\nSee README.md for the lab-file reference.")
}

// parseFlags parses flags wherever they stand among the positional
// arguments (`falab up default --detach` and `falab up --detach default`
// both work), stopping at "--".
func parseFlags(fs *flag.FlagSet, args []string) (positional []string, afterDash []string, err error) {
	fs.SetOutput(io.Discard)
	for i, a := range args {
		if a == "--" {
			args, afterDash = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, afterDash, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func oneArg(pos []string, what string) (string, error) {
	switch len(pos) {
	case 0:
		return "", nil
	case 1:
		return pos[0], nil
	default:
		return "", usageError{fmt.Sprintf("takes one %s, got %s", what, strings.Join(pos, " "))}
	}
}
