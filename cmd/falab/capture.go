package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/falab/falab/capture"
	"github.com/falab/falab/lab"
)

// cmdCapture captures a lab link to pcapng: to a file with -w, else to
// stdout for `| wireshark -k -i -`.
func cmdCapture(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	labName := fs.String("lab", "", "the lab (default: the only running lab)")
	file := fs.String("w", "", "write pcapng to this file (default: stdout)")
	count := fs.Int("c", 0, "stop after this many packets")
	dur := fs.Duration("duration", 0, "stop after this long")
	promisc := fs.Bool("promisc", false, "promiscuous mode")
	pos, _, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError{"expected NODE and IFACE, e.g. falab capture fw-b outside -w takeover.pcapng"}
	}
	name, err := lab.Pick(*labName)
	if err != nil {
		return err
	}
	ns, err := lab.NodeNamespace(name, pos[0])
	if err != nil {
		return err
	}
	var w io.Writer = e.stdout
	if *file != "" {
		f, err := os.Create(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		// Unbuffered: the capture writes a block per call and flushes when
		// idle, so a file being read live (tail -f | tshark) stays current.
		w = f
	} else if isTerminal() {
		return usageError{"pcapng is binary: give -w FILE, or pipe it (falab capture NODE IFACE | wireshark -k -i -)"}
	}
	start := time.Now()
	st, err := capture.Run(ctx, ns, pos[1], w, capture.Options{Count: *count, Duration: *dur, Promisc: *promisc, Log: e.log})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "captured %d packets (%d bytes, %d dropped by the kernel) on %s:%s in %v\n", st.Packets, st.Bytes, st.Drops, pos[0], pos[1], time.Since(start).Round(time.Millisecond))
	return nil
}
