package main

// This is the only file of cmd/falab that imports a data-plane package:
// the internal `falab unit` verb runs the unit process itself. Every other
// verb talks to units through package api (see deps_test.go).

import (
	"context"

	"github.com/falab/falab/unit"
)

// cmdUnit is the unit process itself (started by `falab up`).
func cmdUnit(ctx context.Context, e *env, args []string) error {
	return unit.Main(ctx, args, e.stderr)
}
