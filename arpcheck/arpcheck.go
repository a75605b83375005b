// Package arpcheck checks on the wire that exactly one unit answers ARP for
// an address: a host sends ARP requests for each gateway and counts every
// reply and the distinct MACs that sent them.
// It must not import firewall, unit or lab: it judges the units from the
// wire, as an outsider on a host's segment.
//
// Two firewall units that both believe they are active both answer ARP for
// the shared addresses, and a host's cache then flips between them. The
// units' own state reports cannot show this (each sees only itself); a
// host on the segment can, so the check runs from a host's namespace,
// with github.com/mdlayher/arp on an AF_PACKET socket.
//
// Only replies to this check's requests count: the sender address must be
// a target and the target must be the host's own MAC and address. A reply
// to another host, a gratuitous ARP, a request and a malformed frame are
// ignored. The host's kernel sees the replies too and refreshes its ARP
// cache as it would for its own requests.
package arpcheck

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/falab/falab/topo"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// Defaults for the zero Options.
const (
	DefaultRequests = 3
	DefaultInterval = 20 * time.Millisecond
	DefaultWait     = 100 * time.Millisecond
)

// Options shape one check. Zero fields take the defaults.
type Options struct {
	// Requests is how many requests go to each target (DefaultRequests).
	// More than one lets a unit that misses a request still be seen.
	Requests int
	// Interval separates rounds of requests (DefaultInterval).
	Interval time.Duration
	// Wait is how long replies are collected after the last round
	// (DefaultWait).
	Wait time.Duration
}

func (o Options) withDefaults() Options {
	if o.Requests <= 0 {
		o.Requests = DefaultRequests
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Wait <= 0 {
		o.Wait = DefaultWait
	}
	return o
}

// MACCount is one MAC that answered for a target and how many replies it sent.
type MACCount struct {
	MAC   string `json:"mac"`
	Count int    `json:"count"`
}

// Result is what the wire said about one target.
type Result struct {
	Target netip.Addr `json:"target"`
	// Requests is how many requests were sent for Target.
	Requests int `json:"requests"`
	// Replies counts every reply for Target, from any MAC.
	Replies int `json:"replies"`
	// MACs are the distinct sender MACs, most replies first, then by MAC.
	MACs []MACCount `json:"macs"`
	// DoubledRounds counts the rounds in which the target answered more
	// than once. With a virtual MAC two actives answer with the same MAC,
	// so only the count tells them apart: one request, two replies. The
	// host's own kernel may ask too (its entry went stale) and draw an
	// extra reply into one round, but not into every round.
	DoubledRounds int `json:"doubled_rounds"`
}

// doubledEveryRound says every round was answered more than once.
func (r Result) doubledEveryRound() bool {
	return r.Requests > 0 && r.DoubledRounds == r.Requests
}

// OK reports whether exactly one unit answered: at least one reply came,
// all replies carry the same sender MAC, and not every request drew two
// replies (two units sharing a virtual MAC).
func (r Result) OK() bool { return r.Replies > 0 && len(r.MACs) == 1 && !r.doubledEveryRound() }

// Verdict says in one line what the wire showed, for logs, scenario
// reports and the TUI, e.g.
//
//	198.18.1.1: one MAC answers (02:00:5e:00:01:01 x3)
//	198.18.1.1: no reply (no unit answers)
//	198.18.1.1: 2 MACs answer (aa:..:01 x3, aa:..:02 x3): two units answer
func (r Result) Verdict() string {
	macs := make([]string, len(r.MACs))
	for i, m := range r.MACs {
		macs[i] = fmt.Sprintf("%s x%d", m.MAC, m.Count)
	}
	list := strings.Join(macs, ", ")
	switch n := len(r.MACs); {
	case r.Replies == 0 || n == 0:
		return fmt.Sprintf("%s: no reply (no unit answers)", r.Target)
	case n == 1 && r.doubledEveryRound():
		return fmt.Sprintf("%s: every request answered twice or more by one MAC (%s over %d requests): two units answer with the virtual MAC", r.Target, list, r.Requests)
	case n == 1:
		return fmt.Sprintf("%s: one MAC answers (%s)", r.Target, list)
	case n == 2:
		return fmt.Sprintf("%s: 2 MACs answer (%s): two units answer", r.Target, list)
	default:
		return fmt.Sprintf("%s: %d MACs answer (%s): %d units answer", r.Target, n, list, n)
	}
}

// Check sends ARP requests for every target from interface iface of the
// named namespace ns, from the interface's own MAC and IPv4 address, and
// returns one Result per target in the order given. All targets are asked
// in the same rounds, so a check takes about
// (Requests-1)*Interval + Wait whatever the number of targets.
//
// The socket is opened inside ns (topo.Do) and closed before Check
// returns. Check returns ctx's error promptly when ctx ends.
func Check(ctx context.Context, ns, iface string, targets []netip.Addr, opts Options) ([]Result, error) {
	if err := validTargets(targets); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var res []Result
	err := topo.Do(ns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		if len(ifi.HardwareAddr) != 6 {
			return fmt.Errorf("interface %s has no Ethernet MAC", iface)
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return fmt.Errorf("interface %s: addresses: %w", iface, err)
		}
		var own []netip.Prefix
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				own = append(own, p)
			}
		}
		if len(own) == 0 {
			return fmt.Errorf("interface %s has no IPv4 address", iface)
		}
		// Dial here: the packet socket belongs to the namespace of the
		// thread that opens it, which is ns only inside this function.
		c, err := arp.Dial(ifi)
		if err != nil {
			return fmt.Errorf("interface %s: open ARP socket: %w", iface, err)
		}
		defer c.Close()
		res, err = probe(ctx, c, ifi.HardwareAddr, own, targets, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("arpcheck %s/%s: %w", ns, iface, err)
	}
	return res, nil
}

func validTargets(targets []netip.Addr) error {
	seen := make(map[netip.Addr]bool, len(targets))
	for _, t := range targets {
		if !t.Is4() {
			return fmt.Errorf("arpcheck: target %v is not an IPv4 address", t)
		}
		if seen[t] {
			return fmt.Errorf("arpcheck: target %v given twice", t)
		}
		seen[t] = true
	}
	return nil
}

// conn is the part of *arp.Client the check uses, so the counting can be
// tested without a socket.
type conn interface {
	WriteTo(p *arp.Packet, addr net.HardwareAddr) error
	Read() (*arp.Packet, *ethernet.Frame, error)
	SetReadDeadline(t time.Time) error
}

var _ conn = (*arp.Client)(nil)

// longAgo is a read deadline in the past: setting it wakes a blocked Read.
var longAgo = time.Unix(1, 0)

// probe sends opts.Requests rounds of requests (one per target per round,
// opts.Interval apart), reads until opts.Wait after the last round and
// counts the replies addressed to mac and one of own's addresses. It uses c
// from one goroutine only; ctx's end interrupts a blocked Read by moving
// the read deadline into the past.
func probe(ctx context.Context, c conn, mac net.HardwareAddr, own []netip.Prefix, targets []netip.Addr, opts Options) ([]Result, error) {
	if err := validTargets(targets); err != nil {
		return nil, err
	}
	if len(own) == 0 {
		return nil, errors.New("no own IPv4 address")
	}
	opts = opts.withDefaults()

	reqs := make([]*arp.Packet, len(targets))
	index := make(map[netip.Addr]int, len(targets))
	counts := make([]map[string]int, len(targets))
	replies := make([]int, len(targets))
	perRound := make([][]int, len(targets)) // replies in each round
	for i := range perRound {
		perRound[i] = make([]int, opts.Requests+1)
	}
	for i, t := range targets {
		src := own[0].Addr()
		for _, p := range own {
			if p.Contains(t) {
				src = p.Addr()
				break
			}
		}
		// The target MAC is zero, as the Linux kernel sends it.
		p, err := arp.NewPacket(arp.OperationRequest, mac, src, make(net.HardwareAddr, 6), t)
		if err != nil {
			return nil, fmt.Errorf("build request for %v: %w", t, err)
		}
		reqs[i] = p
		index[t] = i
		counts[i] = make(map[string]int)
	}
	ours := func(ip netip.Addr) bool {
		for _, p := range own {
			if p.Addr() == ip {
				return true
			}
		}
		return false
	}

	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(longAgo) })
	defer stop()

	sent := 0
	var next, end time.Time
	for {
		now := time.Now()
		if sent < opts.Requests && !now.Before(next) {
			for i, p := range reqs {
				if err := c.WriteTo(p, ethernet.Broadcast); err != nil {
					return nil, fmt.Errorf("send request for %v: %w", targets[i], err)
				}
			}
			sent++
			next = now.Add(opts.Interval)
			end = now.Add(opts.Wait)
		}
		deadline := next
		if sent == opts.Requests {
			if !now.Before(end) {
				break
			}
			deadline = end
		}
		if err := c.SetReadDeadline(deadline); err != nil {
			return nil, fmt.Errorf("set read deadline: %w", err)
		}
		// After the deadline is set: if ctx ended before, stop here; if
		// after, the AfterFunc's deadline wakes the Read below.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, _, err := c.Read()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			var op *net.OpError
			if errors.As(err, &op) || errors.Is(err, net.ErrClosed) {
				return nil, fmt.Errorf("read: %w", err)
			}
			continue // a malformed frame: arp.Client.Read reports it as a parse error
		}
		if p.Operation != arp.OperationReply || len(p.SenderHardwareAddr) != 6 {
			continue
		}
		i, ok := index[p.SenderIP]
		if !ok || !ours(p.TargetIP) || !slices.Equal(p.TargetHardwareAddr, mac) {
			continue
		}
		replies[i]++
		perRound[i][sent]++ // the round whose requests went out last
		counts[i][p.SenderHardwareAddr.String()]++
	}

	res := make([]Result, len(targets))
	for i, t := range targets {
		r := Result{Target: t, Requests: sent, Replies: replies[i], MACs: []MACCount{}}
		for _, n := range perRound[i] {
			if n > 1 {
				r.DoubledRounds++
			}
		}
		for m, n := range counts[i] {
			r.MACs = append(r.MACs, MACCount{MAC: m, Count: n})
		}
		slices.SortFunc(r.MACs, func(a, b MACCount) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.MAC, b.MAC))
		})
		res[i] = r
	}
	return res, nil
}
