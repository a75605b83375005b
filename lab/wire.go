package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/falab/falab/arpcheck"
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
func GatewayAnswers(ctx context.Context, l *Lab) ([]WireAnswer, error) {
	var out []WireAnswer
	for _, h := range l.Hosts {
		if !h.Gateway.IsValid() {
			continue
		}
		iface := ""
		for _, i := range h.Interfaces {
			if i.Addr.Contains(h.Gateway) {
				iface = i.Name
			}
		}
		if iface == "" {
			continue
		}
		res, err := arpcheck.Check(ctx, l.Namespace(h.Name), iface, []netip.Addr{h.Gateway}, arpcheck.Options{})
		if err != nil {
			return out, fmt.Errorf("%s: ARP for its gateway %v: %w", h.Name, h.Gateway, err)
		}
		for _, r := range res {
			out = append(out, WireAnswer{Host: h.Name, Interface: iface, Result: r})
		}
	}
	return out, nil
}

// wireProblems returns what is wrong in answers, one line each.
func wireProblems(answers []WireAnswer) []string {
	var p []string
	for _, a := range answers {
		if !a.OK() {
			p = append(p, a.Host+": "+a.Verdict())
		}
	}
	return p
}

// describeWire says the answers in one line.
func describeWire(answers []WireAnswer) string {
	var s []string
	for _, a := range answers {
		s = append(s, a.Host+" "+a.Verdict())
	}
	return strings.Join(s, "; ")
}
