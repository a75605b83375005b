package main

// This is the only file of cmd/falab that imports a data-plane package:
// the internal `falab unit` verb runs the unit process itself. Every other
// verb talks to units through package api (see deps_test.go).

import (
	"github.com/spf13/cobra"

	"github.com/falab/falab/unit"
)

// newUnitCmd is the unit process itself (started by `falab up`); its flags
// are the unit's own (package unit parses them).
func newUnitCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:                "unit --config FILE",
		Short:              "(internal) the firewall unit process that falab up starts",
		Hidden:             true,
		DisableFlagParsing: true,
		Annotations:        rootNeeded(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unit.Main(cmd.Context(), args, e.stderr)
		},
	}
}
