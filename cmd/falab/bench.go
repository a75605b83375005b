package main

import (
	"context"
	"flag"
	"strconv"
	"strings"

	"github.com/falab/falab/labbench"
)

// cmdBench measures the lab-level figures and prints each beside its
// target (and the kernel's, where one exists).
func cmdBench(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "fewer repetitions, shorter runs (rougher figures)")
	only := fs.String("only", "", "comma-separated item numbers to run (1-11; 11 is the transparent pair)")
	fs.BoolVar(&e.json, "json", false, "print the report as JSON")
	if _, _, err := parseFlags(fs, args); err != nil {
		return err
	}
	opt := labbench.Options{Quick: *quick, JSON: e.json, Logger: e.log}
	if *only != "" {
		for _, f := range strings.Split(*only, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 11 {
				return usageError{"--only takes item numbers 1 to 11, e.g. --only 2,6"}
			}
			opt.Only = append(opt.Only, n)
		}
	}
	_, err := labbench.Run(ctx, opt, e.stdout)
	return err
}
