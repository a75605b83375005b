package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/falab/falab/capture"
	"github.com/falab/falab/lab"
	"github.com/falab/falab/labfile"
)

// standbyHint says why a capture on a standby unit in virtual-MAC mode sees
// (almost) nothing: the switch learned the virtual MAC on the active's port
// and sends its frames there only.
func standbyHint(ctx context.Context, w io.Writer, labName, node string) {
	_, l, err := lab.LoadRunning(labName)
	if err != nil {
		return
	}
	if _, ok := l.Unit(node); !ok || l.Failover.MACMode != labfile.MACVirtual {
		return
	}
	if s := unitFailoverState(ctx, labName, node); s != "" && s != "Active" {
		fmt.Fprintf(w, "hint: %s is %s in virtual-MAC mode: the switch sends the virtual MAC's frames only to the active's port, "+
			"so this capture sees little but hellos and broadcasts. Capture the active, or both: falab capture --follow-active IFACE\n", node, s)
	}
}

// unitFailoverState is unit u's failover state, "" when it does not answer.
func unitFailoverState(ctx context.Context, labName, u string) string {
	c, err := lab.UnitClient(labName, u)
	if err != nil {
		return ""
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	s, err := c.Status(cctx)
	if err != nil {
		return ""
	}
	return s.State
}

// captureFollow captures interface o.follow on both units into one pcapng
// (interfaces UNIT:IFACE), and comments the first packet of a unit's
// interface after its role changed, so the takeover reads in one file.
func (e *env) captureFollow(ctx context.Context, o captureOptions) error {
	name, err := pickLab(o.lab, "")
	if err != nil {
		return err
	}
	_, l, err := lab.LoadRunning(name)
	if err != nil {
		return err
	}
	var srcs []capture.Source
	for _, u := range l.Units {
		ns, err := lab.NodeNamespace(name, u.Name)
		if err != nil {
			return err
		}
		srcs = append(srcs, capture.Source{Name: u.Name + ":" + o.follow, NS: ns, Iface: o.follow})
	}
	w, closeOut, err := e.captureOutput(o)
	if err != nil {
		return err
	}
	defer closeOut()
	f, err := capture.OpenFollow(srcs, capture.Options{Count: o.count, Duration: o.duration, Promisc: o.promisc, Log: e.log})
	if err != nil {
		return err
	}
	defer f.Close()
	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { watchRoles(watchCtx, name, l, f) })
	start := time.Now()
	stats, err := f.Run(ctx, w)
	stopWatch()
	wg.Wait()
	for i, st := range stats {
		fmt.Fprintf(e.stderr, "captured %d packets (%d bytes, %d dropped by the kernel) on %s in %v\n", st.Packets, st.Bytes, st.Drops, srcs[i].Name, time.Since(start).Round(time.Millisecond))
	}
	return err
}

// watchRoles polls both units' states and annotates each change on the
// unit's interface: "fw-b: Standby Ready -> Active", or "not answering".
func watchRoles(ctx context.Context, labName string, l *labfile.Lab, f *capture.Follower) {
	last := make([]string, len(l.Units))
	for i, u := range l.Units {
		last[i] = orDefault(unitFailoverState(ctx, labName, u.Name), "not answering")
		f.Annotate(i, fmt.Sprintf("%s is %s at the start of the capture", u.Name, last[i]))
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i, u := range l.Units {
			s := orDefault(unitFailoverState(ctx, labName, u.Name), "not answering")
			if s != last[i] && ctx.Err() == nil {
				f.Annotate(i, fmt.Sprintf("%s: %s -> %s (role change seen by falab at %s)", u.Name, last[i], s, time.Now().Format("15:04:05.000")))
				last[i] = s
			}
		}
	}
}
