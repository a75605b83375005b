package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	htmlreport "github.com/falab/falab/report"
	"github.com/falab/falab/scenario"
)

// newRunCmd plays a scenario headless: builds its lab, runs the steps, tears
// the lab down, prints the timeline and a verdict. Exit 0 pass, 1 fail,
// 2 error.
func newRunCmd(e *env) *cobra.Command {
	var quiet bool
	var reportDir string
	cmd := &cobra.Command{
		Use:   "run SCENARIO [--json] [--quiet] [--report DIR]",
		Short: "play a scenario headless: lab up, traffic, faults, checks, lab down; exit 0 pass, 1 fail",
		Long: "Build the scenario's lab, play its steps, tear the lab down (also on failure and Ctrl-C), print the\n" +
			"timeline, the figures and a verdict. SCENARIO is a built-in name (" + strings.Join(scenario.ScenarioNames(), ", ") + ") or a file.\n" +
			"Exit 0 pass, 1 fail, 2 error.",
		ValidArgs:   scenario.ScenarioNames(),
		Args:        exactArgs(1, "a scenario: a built-in name ("+strings.Join(scenario.ScenarioNames(), ", ")+") or a file"),
		Annotations: rootNeeded(),
		RunE:        func(cmd *cobra.Command, args []string) error { return e.run(cmd.Context(), args[0], quiet, reportDir) },
	}
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no timeline, only steps, figures and verdict")
	cmd.Flags().StringVar(&reportDir, "report", "", "also write a self-contained HTML report (verdict, timeline, a chart per fault, figures) into this directory")
	e.jsonFlag(cmd, "the report")
	return cmd
}

func (e *env) run(ctx context.Context, file string, quiet bool, reportDir string) error {
	sc, err := scenario.LoadScenario(file)
	if err != nil {
		return err
	}
	opt := scenario.RunOptions{Logger: e.log}
	if !e.json {
		opt.Progress = e.stdout
		fmt.Fprintf(e.stdout, "scenario %s on lab %s: %s\n", sc.Spec.Name, sc.Lab.Name, sc.Spec.Description)
	}
	rep, err := scenario.RunScenario(ctx, sc, opt)
	if reportDir != "" && rep != nil {
		path, rerr := htmlreport.WriteRun(reportDir, rep)
		if rerr != nil {
			return rerr
		}
		fmt.Fprintf(e.stderr, "report: %s\n", path)
	}
	if e.json {
		if perr := printJSON(e.stdout, rep); perr != nil {
			return perr
		}
	} else {
		printRun(e, rep, quiet)
	}
	if err != nil {
		return err
	}
	if !rep.Pass {
		return failError{errors.New(strings.Join(rep.Failures, "; "))}
	}
	return nil
}

func printRun(e *env, rep *scenario.RunReport, quiet bool) {
	w := e.stdout
	if !quiet && len(rep.Timeline) > 0 {
		fmt.Fprintln(w, "\ntimeline:")
		for _, ev := range rep.Timeline {
			fmt.Fprintf(w, "  %s  +%7.3fs  %-5s %-10s %s\n", ev.Time.Format("15:04:05.000"), ev.Time.Sub(rep.Started).Seconds(), ev.Unit, ev.Kind, ev.Msg)
		}
	}
	if len(rep.Traffic) > 0 {
		fmt.Fprintln(w, "\nfigures:")
		for _, t := range rep.Traffic {
			fmt.Fprintf(w, "  %s\n", scenario.TrafficSummary(t))
		}
	}
	printFaultFigures(w, rep.Faults)
	verdict := "PASS"
	if !rep.Pass {
		verdict = "FAIL"
	}
	if rep.Error != "" {
		verdict = "ERROR: " + rep.Error
	}
	fmt.Fprintf(w, "\n%s: scenario %s (lab %s) in %v\n", verdict, rep.Scenario, rep.Lab, rep.Took.Round(time.Millisecond))
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "  failed: %s\n", f)
	}
	if rep.KeptLogs != "" {
		fmt.Fprintf(w, "  the units' logs are kept in %s\n", rep.KeptLogs)
	}
}
