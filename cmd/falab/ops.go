package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/traffic"
)

// newAgentCmd is a traffic generator's process (started by falab traffic);
// its flags are the agent's own (package traffic parses them).
func newAgentCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:                "agent KIND --role server|client ...",
		Short:              "(internal) a traffic generator process",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return traffic.RunAgentLogger(cmd.Context(), args, e.stdout, e.log)
		},
	}
}

func newTrafficCmd(e *env) *cobra.Command {
	var labName string
	var t lab.Traffic
	cmd := &cobra.Command{
		Use:   "traffic start|stop [NAME...]|show [--lab LAB] [--kind K --client H --server H ...] [--json]",
		Short: "traffic generators between hosts, with live figures",
		Long: "start a generator: tcp-stream (N long-lived connections carrying a sequence-checked byte stream),\n" +
			"udp-probe (a sequence-numbered probe every 1 ms, echoed), http (a long download), ping, iperf3.\n" +
			"stop [NAME...] stops generators (all by default); show prints flows alive, reset, stalled, gaps, lost probes.",
		ValidArgs:   []string{"start", "stop", "show"},
		Args:        func(_ *cobra.Command, args []string) error { return trafficArgs(args) },
		Annotations: rootNeeded(),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := pickLab(labName, "")
			if err != nil {
				return err
			}
			return e.traffic(cmd.Context(), name, args[0], args[1:], t)
		},
	}
	f := cmd.Flags()
	labFlag(cmd, &labName)
	f.StringVar(&t.Name, "name", "", "name of the generator (default: its kind)")
	f.StringVar(&t.Kind, "kind", "tcp-stream", "tcp-stream, udp-probe, http, ping or iperf3")
	f.StringVar(&t.Client, "client", "client1", "client host")
	f.StringVar(&t.Server, "server", "server1", "server host")
	f.IntVar(&t.Flows, "flows", 0, "connections (tcp-stream, http)")
	f.StringVar(&t.Direction, "direction", "", "c2s, s2c or both (tcp-stream)")
	f.Int64Var(&t.Rate, "rate", 0, "bytes/s per flow")
	f.DurationVar(&t.Interval, "interval", 0, "probe interval (udp-probe, ping)")
	f.IntVar(&t.Port, "port", 0, "server port")
	f.StringVar(&t.Target, "target", "", "address the client connects to (default: the server's)")
	e.jsonFlag(cmd, "the reports")
	return cmd
}

// trafficArgs checks the verb of `falab traffic` and its arguments.
func trafficArgs(args []string) error {
	if len(args) == 0 {
		return usageError{"expected start, stop or show"}
	}
	switch {
	case args[0] != "start" && args[0] != "stop" && args[0] != "show":
		return usageError{fmt.Sprintf("unknown traffic verb %q (expected start, stop or show)", args[0])}
	case args[0] != "stop" && len(args) > 1:
		return usageError{fmt.Sprintf("traffic %s takes no argument, got %q", args[0], args[1:])}
	}
	return nil
}

// traffic starts, stops and shows traffic generators.
func (e *env) traffic(ctx context.Context, name, verb string, names []string, t lab.Traffic) error {
	switch verb {
	case "start":
		if err := lab.StartTraffic(ctx, name, t); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "traffic %s started (%s %s -> %s); falab traffic show\n", orDefault(t.Name, t.Kind), t.Kind, t.Client, t.Server)
		return nil
	case "stop":
		return lab.StopTraffic(name, names...)
	default:
		reps, err := lab.TrafficReports(name)
		if err != nil {
			return err
		}
		figs := lab.FaultFigures(lab.Timeline(ctx, name), reps)
		lab.AttachFaults(reps, figs)
		if e.json {
			return printJSON(e.stdout, reps)
		}
		printTraffic(e, reps)
		printFaultFigures(e.stdout, figs)
		return nil
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func printTraffic(e *env, reps []lab.TrafficReport) {
	if len(reps) == 0 {
		fmt.Fprintln(e.stdout, "no traffic (falab traffic start)")
		return
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tPATH\tRUNNING\tFLOWS\tALIVE\tDONE\tRESET\tSTALLED\tCORRUPT\tLOST\tLONGEST GAP\tBYTES")
	for _, r := range reps {
		c := r.Client
		if c == nil {
			c = &traffic.Report{}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s->%s\t%v\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1fms\t%d\n", r.Traffic.Name, r.Traffic.Kind, r.Traffic.Client, r.Traffic.Server,
			r.Running, c.Flows, c.Alive, c.Completed, c.Reset, c.Stalled, c.Corrupt, c.Lost, c.LongestGapMs, c.BytesReceived+c.BytesSent)
	}
	tw.Flush()
}

func newFaultCmd(e *env) *cobra.Command {
	var labName string
	cmd := &cobra.Command{
		Use:   "fault KIND [TARGET] [ARG] [--lab LAB] [--json]",
		Short: "inject a fault into a running lab",
		Long: "Inject a fault: kill|freeze|thaw|restart|power-off UNIT, link-down|link-up NODE:IFACE,\n" +
			"cut-failover, heal-failover, loss NODE:IFACE PCT, delay NODE:IFACE DURATION, clear NODE:IFACE,\n" +
			"failover [UNIT]. Every fault is an event in the lab's timeline.",
		ValidArgs:   lab.FaultKinds,
		Args:        maxArgs(3, "arguments (KIND TARGET ARG)"),
		Annotations: rootNeeded(),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFault(args)
			if err != nil {
				return err
			}
			return e.fault(cmd.Context(), labName, f)
		},
	}
	labFlag(cmd, &labName)
	e.jsonFlag(cmd, "the result")
	return cmd
}

// parseFault reads KIND [TARGET] [ARG].
func parseFault(pos []string) (lab.Fault, error) {
	if len(pos) == 0 {
		return lab.Fault{}, usageError{"expected a fault: " + strings.Join(lab.FaultKinds, ", ")}
	}
	f := lab.Fault{Kind: pos[0]}
	if len(pos) > 1 {
		f.Target = pos[1]
	}
	switch f.Kind {
	case lab.FaultLoss:
		if len(pos) != 3 {
			return f, usageError{"loss takes NODE:IFACE PERCENT, e.g. loss client1:eth0 5"}
		}
		p, err := strconv.ParseFloat(strings.TrimSuffix(pos[2], "%"), 64)
		if err != nil {
			return f, usageError{fmt.Sprintf("loss: %q is not a percentage", pos[2])}
		}
		f.Percent = p
	case lab.FaultDelay:
		if len(pos) != 3 {
			return f, usageError{"delay takes NODE:IFACE DURATION, e.g. delay client1:eth0 10ms"}
		}
		d, err := time.ParseDuration(pos[2])
		if err != nil {
			return f, usageError{fmt.Sprintf("delay: %q is not a duration", pos[2])}
		}
		f.Delay = d
	default:
		if len(pos) > 2 {
			return f, usageError{"too many arguments"}
		}
	}
	return f, nil
}

// fault injects f into the lab.
func (e *env) fault(ctx context.Context, labName string, f lab.Fault) error {
	name, err := pickLab(labName, "")
	if err != nil {
		return err
	}
	msg, err := lab.Inject(ctx, name, f)
	if err != nil {
		return err
	}
	if e.json {
		return printJSON(e.stdout, map[string]string{"fault": f.String(), "result": msg})
	}
	fmt.Fprintln(e.stdout, msg)
	return nil
}
