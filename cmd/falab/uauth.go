package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/render"
	"github.com/falab/falab/uauth"
)

// showUAuth prints `show uauth` of each unit (or the one asked): the table
// is never replicated, so the two units' tables differ, and seeing both is
// the point.
func (e *env) showUAuth(ctx context.Context, name, asked string) error {
	units, err := pickUnits(name, asked)
	if err != nil {
		return err
	}
	var us []api.UAuthInfo
	for _, n := range units {
		c, err := lab.UnitClient(name, n)
		var u api.UAuthInfo
		if err == nil {
			u, err = c.UAuth(ctx)
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", n, err)
			continue
		}
		us = append(us, u)
	}
	if len(us) == 0 {
		return fmt.Errorf("no unit of lab %s answered with a uauth table", name)
	}
	return e.print(us, nil, func(w io.Writer) error { return render.ShowUAuth(w, us) })
}

// pickUnits is every unit of the lab, or only asked (checked).
func pickUnits(name, asked string) ([]string, error) {
	units, err := lab.UnitNames(name)
	if err != nil || asked == "" {
		return units, err
	}
	if !slices.Contains(units, asked) {
		return nil, usageError{fmt.Sprintf("lab %s has no unit %q (units: %s)", name, asked, strings.Join(units, ", "))}
	}
	return []string{asked}, nil
}

func newClearCmd(e *env) *cobra.Command {
	var labName, unitName, addr string
	cmd := &cobra.Command{
		Use:   "clear uauth [USER] [--addr A] [--unit U] [--lab LAB]",
		Short: "clear authenticated users from a unit's uauth table (ASA clear uauth)",
		Long: "clear uauth removes every authenticated user of the active unit (or --unit's), or one USER, or the\n" +
			"entry of one source address (--addr). Their next new connection must authenticate again.",
		ValidArgs:   []string{"uauth"},
		Args:        func(_ *cobra.Command, args []string) error { return clearArgs(args) },
		Annotations: rootNeeded(),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := ""
			if len(args) == 2 {
				user = args[1]
			}
			return e.clearUAuth(cmd.Context(), labName, unitName, user, addr)
		},
	}
	labFlag(cmd, &labName)
	cmd.Flags().StringVar(&unitName, "unit", "", "the unit (default: the active one)")
	cmd.Flags().StringVar(&addr, "addr", "", "clear the entry of this source address only")
	return cmd
}

func clearArgs(args []string) error {
	if len(args) == 0 || args[0] != "uauth" || len(args) > 2 {
		return usageError{"expected: clear uauth [USER]"}
	}
	return nil
}

// clearUAuth is `clear uauth` on one unit.
func (e *env) clearUAuth(ctx context.Context, labName, unitName, user, addr string) error {
	name, err := pickLab(labName, "")
	if err != nil {
		return err
	}
	if unitName == "" {
		if unitName, err = lab.ActiveUnit(ctx, name); err != nil {
			return err
		}
	}
	c, err := lab.UnitClient(name, unitName)
	if err != nil {
		return err
	}
	n, err := c.ClearUAuth(ctx, user, addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: %d uauth entries cleared\n", unitName, n)
	return nil
}

func newHashPasswordCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "hash-password",
		Short: "read a password on stdin and print its argon2id hash for a lab file's firewall.aaa.users",
		Long: "A lab file never holds a password: firewall.aaa.users[].hash takes the argon2id hash (PHC string)\n" +
			"this prints, with RFC 9106's second recommended parameters (64 MiB, 3 passes).",
		Args: maxArgs(0, "arguments"),
		RunE: func(*cobra.Command, []string) error {
			line, err := bufio.NewReader(os.Stdin).ReadString('\n')
			if err != nil && err != io.EOF {
				return err
			}
			line = strings.TrimRight(line, "\r\n")
			if line == "" {
				return usageError{"no password on stdin"}
			}
			h, err := uauth.HashPassword(line, uauth.DefaultParams)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, h.String())
			return nil
		},
	}
}
