package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/falab/falab/capture"
	"github.com/falab/falab/lab"
)

// captureOptions are the flags of `falab capture`.
type captureOptions struct {
	lab, file string
	count     int
	duration  time.Duration
	promisc   bool
	follow    string // --follow-active IFACE: both units' IFACE in one file
}

// newCaptureCmd captures a lab link to pcapng: to a file with -w, else to
// stdout for `| wireshark -k -i -`.
func newCaptureCmd(e *env) *cobra.Command {
	var o captureOptions
	cmd := &cobra.Command{
		Use:   "capture [--lab LAB] NODE IFACE [-w FILE.pcapng] [-c N] [--duration D] [--promisc]",
		Short: "capture a lab link to pcapng (stdout for | wireshark -k -i -)",
		Long: "Capture a lab link, both directions, to pcapng with nanosecond timestamps: to a file, or to stdout\n" +
			"for `falab capture fw-b outside | wireshark -k -i -`.",
		Args: func(_ *cobra.Command, args []string) error {
			if o.follow != "" {
				return maxArgs(0, "arguments with --follow-active (it captures IFACE on both units)")(nil, args)
			}
			return exactArgs(2, "NODE and IFACE, e.g. falab capture fw-b outside -w takeover.pcapng")(nil, args)
		},
		Annotations: rootNeeded(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.follow != "" {
				return e.captureFollow(cmd.Context(), o)
			}
			return e.capture(cmd.Context(), o, args[0], args[1])
		},
	}
	labFlag(cmd, &o.lab)
	cmd.Flags().StringVarP(&o.file, "write", "w", "", "write pcapng to this file (default: stdout)")
	cmd.Flags().IntVarP(&o.count, "count", "c", 0, "stop after this many packets")
	cmd.Flags().DurationVar(&o.duration, "duration", 0, "stop after this long (e.g. 30s)")
	cmd.Flags().BoolVar(&o.promisc, "promisc", false, "promiscuous mode")
	cmd.Flags().StringVar(&o.follow, "follow-active", "", "capture IFACE on both units into one pcapng (interfaces UNIT:IFACE), comments on role changes: follows the active across takeovers")
	return cmd
}

func (e *env) capture(ctx context.Context, o captureOptions, node, iface string) error {
	name, err := pickLab(o.lab, "")
	if err != nil {
		return err
	}
	ns, err := lab.NodeNamespace(name, node)
	if err != nil {
		return err
	}
	standbyHint(ctx, e.stderr, name, node)
	w, closeOut, err := e.captureOutput(o)
	if err != nil {
		return err
	}
	defer closeOut()
	start := time.Now()
	st, err := capture.Run(ctx, ns, iface, w, capture.Options{Count: o.count, Duration: o.duration, Promisc: o.promisc, Log: e.log})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "captured %d packets (%d bytes, %d dropped by the kernel) on %s:%s in %v\n", st.Packets, st.Bytes, st.Drops, node, iface, time.Since(start).Round(time.Millisecond))
	return nil
}

// captureOutput is the file of -w, or stdout when it is not a terminal.
func (e *env) captureOutput(o captureOptions) (io.Writer, func(), error) {
	var w io.Writer = e.stdout
	if o.file != "" {
		f, err := os.Create(o.file)
		if err != nil {
			return nil, nil, err
		}
		// Unbuffered: the capture writes a block per call and flushes when
		// idle, so a file being read live (tail -f | tshark) stays current.
		return f, func() { f.Close() }, nil
	} else if isTerminal() {
		return nil, nil, usageError{"pcapng is binary: give -w FILE, or pipe it (falab capture NODE IFACE | wireshark -k -i -)"}
	}
	return w, func() {}, nil
}
