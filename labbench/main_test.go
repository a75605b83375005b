package labbench

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/falab/falab/traffic"
	"github.com/falab/falab/unit"
)

// TestMain lets the test binary stand in for falab: the labs the smoke
// test brings up start their units and traffic agents from this very
// binary (`<test binary> unit ...`, `<test binary> agent ...`), as `falab
// bench` does from falab.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "unit", "agent":
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			var err error
			if os.Args[1] == "unit" {
				err = unit.Main(ctx, os.Args[2:], os.Stderr)
			} else {
				err = traffic.RunAgent(ctx, os.Args[2:], os.Stdout)
			}
			stop()
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", os.Args[1], err)
				os.Exit(2)
			}
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}
