package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/falab/falab/labbench"
	htmlreport "github.com/falab/falab/report"
)

// newBenchCmd measures the lab-level figures and prints each beside its
// target (and the kernel's, where one exists).
func newBenchCmd(e *env) *cobra.Command {
	var quick bool
	var only, reportDir string
	cmd := &cobra.Command{
		Use:   "bench [--quick] [--only N,...] [--json] [--report DIR]",
		Short: "measure forwarding, connection rate, failover gaps, bulk sync, lag, lab up/down; each beside its target and the kernel's",
		Long: "Measure the lab-level figures, each beside its target and, where one exists, beside the Linux kernel\n" +
			"doing the same job on the same topology, and the standard Linux HA pair (keepalived + conntrackd) measured\n" +
			"row for row like falab's pair. A few minutes; it says the machine's CPU count and load.",
		Args:        maxArgs(0, "arguments"),
		Annotations: rootNeeded(),
		RunE:        func(cmd *cobra.Command, _ []string) error { return e.bench(cmd.Context(), quick, only, reportDir) },
	}
	cmd.Flags().BoolVar(&quick, "quick", false, "fewer repetitions, shorter runs (rougher figures)")
	cmd.Flags().StringVar(&only, "only", "", "comma-separated item numbers to run (1-11; 6 and 7 failover gaps and TCP resume, 10 the Linux pair, 11 the transparent pair)")
	cmd.Flags().StringVar(&reportDir, "report", "", "also write a self-contained HTML report (each figure charted beside the kernel's and its target) into this directory")
	e.jsonFlag(cmd, "the report")
	return cmd
}

func (e *env) bench(ctx context.Context, quick bool, only, reportDir string) error {
	opt := labbench.Options{Quick: quick, JSON: e.json, Logger: e.log}
	if only != "" {
		for _, f := range strings.Split(only, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 11 {
				return usageError{"--only takes item numbers 1 to 11, e.g. --only 2,6"}
			}
			opt.Only = append(opt.Only, n)
		}
	}
	rep, err := labbench.Run(ctx, opt, e.stdout)
	if reportDir != "" && len(rep.Figures) > 0 {
		path, rerr := htmlreport.WriteBench(reportDir, rep)
		if rerr != nil {
			return rerr
		}
		fmt.Fprintf(e.stderr, "report: %s\n", path)
	}
	return err
}
