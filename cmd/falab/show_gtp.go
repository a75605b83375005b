package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/falab/falab/api"
	"github.com/falab/falab/render"
)

// servicePolicyUsage is the one service-policy table falab shows.
const servicePolicyUsage = "service-policy inspect gtp pdp-context [detail]"

// showArgs accepts `show TABLE` or `show service-policy inspect gtp
// pdp-context [detail]`, the ASA's words for the GTP PDP context database.
func showArgs(args []string) error {
	if len(args) > 0 && args[0] == "service-policy" {
		_, err := pdpDetail(args)
		return err
	}
	if len(args) != 1 {
		return usageError{"expected one of: " + strings.Join(showWhat, ", ")}
	}
	return nil
}

// pdpDetail checks `service-policy inspect gtp pdp-context [detail]` and
// says whether detail was asked.
func pdpDetail(args []string) (bool, error) {
	n := len(args)
	if (n != 4 && n != 5) || strings.Join(args[1:4], " ") != "inspect gtp pdp-context" || (n == 5 && args[4] != "detail") {
		return false, usageError{"expected " + servicePolicyUsage}
	}
	return n == 5, nil
}

// showPDPContexts prints unit u's PDP contexts as an ASA does.
func (e *env) showPDPContexts(ctx context.Context, c *api.Client, u string, detail bool) error {
	p, err := c.PDPContexts(ctx)
	return e.print(p, err, func(w io.Writer) error {
		fmt.Fprintf(w, "%s: ", u)
		return render.ShowPDPContexts(w, p, detail)
	})
}
