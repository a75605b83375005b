package main

import (
	"context"
	"fmt"
	"io"

	"github.com/falab/falab/api"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/render"
)

// isSIPServicePolicy says whether args are `service-policy inspect sip`.
func isSIPServicePolicy(args []string) bool {
	return len(args) == 3 && args[0] == "service-policy" && args[1] == "inspect" && args[2] == "sip"
}

// showVoice prints `show sip` or `show ctiqbe` from unit u.
func (e *env) showVoice(ctx context.Context, c *api.Client, u, what string) error {
	v, err := c.Voice(ctx)
	return e.print(v, err, func(w io.Writer) error {
		fmt.Fprintf(w, "%s:\n", u)
		if what == "sip" {
			return render.ShowSIP(w, v)
		}
		return render.ShowCTIQBE(w, v)
	})
}

// showServicePolicy prints `show service-policy inspect ENGINE`.
func (e *env) showServicePolicy(ctx context.Context, o showOptions, args []string) error {
	if args[1] != "sip" {
		return usageError{fmt.Sprintf("service-policy inspect %s: only sip is known here", args[1])}
	}
	name, err := pickLab(o.lab, "")
	if err != nil {
		return err
	}
	u := o.unit
	if u == "" {
		if u, err = lab.ActiveUnit(ctx, name); err != nil {
			return err
		}
	}
	c, err := lab.UnitClient(name, u)
	if err != nil {
		return err
	}
	v, err := c.Voice(ctx)
	return e.print(v, err, func(w io.Writer) error {
		fmt.Fprintf(w, "%s:\n", u)
		return render.ShowSIPServicePolicy(w, v)
	})
}
