package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/traffic"
)

// cmdAgent is a traffic generator's process (started by falab traffic).
func cmdAgent(ctx context.Context, e *env, args []string) error {
	return traffic.RunAgentLogger(ctx, args, e.stdout, e.log)
}

// cmdTraffic starts, stops and shows traffic generators.
func cmdTraffic(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("traffic", flag.ContinueOnError)
	labName := fs.String("lab", "", "the lab (default: the only running lab)")
	var t lab.Traffic
	fs.StringVar(&t.Name, "name", "", "name of the generator (default: its kind)")
	fs.StringVar(&t.Kind, "kind", "tcp-stream", "tcp-stream, udp-probe, http or ping")
	fs.StringVar(&t.Client, "client", "client1", "client host")
	fs.StringVar(&t.Server, "server", "server1", "server host")
	fs.IntVar(&t.Flows, "flows", 0, "connections (tcp-stream, http)")
	fs.StringVar(&t.Direction, "direction", "", "c2s, s2c or both (tcp-stream)")
	fs.Int64Var(&t.Rate, "rate", 0, "bytes/s per flow")
	fs.DurationVar(&t.Interval, "interval", 0, "probe interval (udp-probe, ping)")
	fs.IntVar(&t.Port, "port", 0, "server port")
	fs.StringVar(&t.Target, "target", "", "address the client connects to (default: the server's)")
	fs.BoolVar(&e.json, "json", false, "print as JSON")
	pos, _, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{"expected start, stop or show"}
	}
	name, err := lab.Pick(*labName)
	if err != nil {
		return err
	}
	switch pos[0] {
	case "start":
		if err := lab.StartTraffic(ctx, name, t); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "traffic %s started (%s %s -> %s); falab traffic show\n", orDefault(t.Name, t.Kind), t.Kind, t.Client, t.Server)
		return nil
	case "stop":
		return lab.StopTraffic(name, pos[1:]...)
	case "show":
		reps, err := lab.TrafficReports(name)
		if err != nil {
			return err
		}
		if e.json {
			return printJSON(e.stdout, reps)
		}
		printTraffic(e, reps)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown traffic verb %q (expected start, stop or show)", pos[0])}
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

// cmdFault injects a fault into a running lab.
func cmdFault(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("fault", flag.ContinueOnError)
	labName := fs.String("lab", "", "the lab (default: the only running lab)")
	fs.BoolVar(&e.json, "json", false, "print as JSON")
	pos, _, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{"expected a fault: " + strings.Join(lab.FaultKinds, ", ")}
	}
	f := lab.Fault{Kind: pos[0]}
	if len(pos) > 1 {
		f.Target = pos[1]
	}
	switch f.Kind {
	case lab.FaultLoss:
		if len(pos) != 3 {
			return usageError{"loss takes NODE:IFACE PERCENT, e.g. loss client1:eth0 5"}
		}
		p, err := strconv.ParseFloat(strings.TrimSuffix(pos[2], "%"), 64)
		if err != nil {
			return usageError{fmt.Sprintf("loss: %q is not a percentage", pos[2])}
		}
		f.Percent = p
	case lab.FaultDelay:
		if len(pos) != 3 {
			return usageError{"delay takes NODE:IFACE DURATION, e.g. delay client1:eth0 10ms"}
		}
		d, err := time.ParseDuration(pos[2])
		if err != nil {
			return usageError{fmt.Sprintf("delay: %q is not a duration", pos[2])}
		}
		f.Delay = d
	default:
		if len(pos) > 2 {
			return usageError{"too many arguments"}
		}
	}
	name, err := lab.Pick(*labName)
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
