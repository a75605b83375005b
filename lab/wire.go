package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/falab/falab/arpcheck"
	"github.com/falab/falab/labfile"
)

// WireAnswer is what the wire said to one host about its gateway: which
// units answered its ARP requests.
type WireAnswer struct {
	Host      string `json:"host"`
	Interface string `json:"interface"`
	arpcheck.Result
}

// GatewayAnswers has every host with a gateway ask for it by ARP on the
// wire and count the answers: exactly one unit answering is a healthy
// pair; two (two MACs, or every request answered twice under the virtual
// MAC) is two actives; none is no active. It asks from the hosts, not the
// units, so it sees what a host sees, whatever the units report.
func GatewayAnswers(ctx context.Context, l *labfile.Lab) ([]WireAnswer, error) {
	type ask struct {
		host, iface string
		gw          netip.Addr
	}
	var asks []ask
	for _, h := range l.Hosts {
		if !h.Gateway.IsValid() {
			continue
		}
		for _, i := range h.Interfaces {
			if i.Addr.Contains(h.Gateway) {
				asks = append(asks, ask{h.Name, i.Name, h.Gateway})
				break
			}
		}
	}
	// Every host asks at once (each in its own namespace, on its own
	// socket): one check takes one host's time, not the sum.
	results := make([][]arpcheck.Result, len(asks))
	errs := make([]error, len(asks))
	var wg sync.WaitGroup
	for i, a := range asks {
		wg.Go(func() {
			results[i], errs[i] = arpcheck.Check(ctx, l.Namespace(a.host), a.iface, []netip.Addr{a.gw}, arpcheck.Options{})
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s: ARP for its gateway %v: %w", a.host, a.gw, errs[i])
			}
		})
	}
	wg.Wait()
	var out []WireAnswer
	for i, a := range asks {
		for _, r := range results[i] {
			out = append(out, WireAnswer{Host: a.host, Interface: a.iface, Result: r})
		}
	}
	return out, errors.Join(errs...)
}

// WireProblems returns what is wrong in answers, one line each.
func WireProblems(answers []WireAnswer) []string {
	var p []string
	for _, a := range answers {
		if !a.OK() {
			p = append(p, a.Host+": "+a.Verdict())
		}
	}
	return p
}
