package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/falab/falab/lab"
)

// Options tune Run. The zero value is ready to use.
type Options struct {
	// Log receives the TUI's own diagnostics (never the terminal, which
	// the TUI owns). Nil discards them.
	Log *slog.Logger
	// Refresh is the time between refreshes (default 100ms: 10 a second).
	Refresh time.Duration
	// Traffic reports the running traffic generators for the Traffic tab;
	// nil shows "no traffic running".
	Traffic func(ctx context.Context) ([]TrafficFlowSummary, error)
	// Source replaces the lab as the source of data (tests, demos).
	Source Source
	// Input and Output default to the terminal (stdin and stdout).
	Input  io.Reader
	Output io.Writer
	// Location is the time zone of the timestamps shown (default local).
	Location *time.Location
}

// Run shows the TUI for the running lab labName (or the only running lab
// when labName is empty) until the user quits or ctx ends. Quitting leaves
// the lab running; Run then prints how to come back and how to stop it.
func Run(ctx context.Context, labName string, opts Options) error {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src := opts.Source
	name := labName
	if src == nil {
		var err error
		if name, err = lab.Pick(labName); err != nil {
			return err
		}
		if src, err = NewLabSource(name, opts.Traffic); err != nil {
			return err
		}
	} else {
		name = src.Info().Name
	}
	out := opts.Output
	if out == nil {
		out = os.Stdout
	}
	m := New(ctx, src, time.Now(), opts)
	popts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithOutput(out)}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	log.Debug("tui starting", "lab", name)
	_, err := tea.NewProgram(m, popts...).Run()
	if err != nil && !(errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil) {
		return fmt.Errorf("tui: %w", err)
	}
	fmt.Fprintf(out, "The lab %s is still running.\n  come back: falab tui %s\n  stop it:   falab down %s\n", name, name, name)
	return nil
}
