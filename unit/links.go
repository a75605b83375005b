package unit

import (
	"context"
	"net"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/falab/falab/failover"
)

// watchLinks follows carrier changes of the failover link and of the
// monitored data interfaces (netlink, in the unit's own namespace) and
// tells the failover machine. Carrier loss on the failover link is a sign
// to check on the peer at once; a monitored interface going down on the
// active can fail the pair over.
func (u *Unit) watchLinks(ctx context.Context) {
	last := map[string]bool{}
	report := func(name string, up, silent bool) {
		if prev, seen := last[name]; seen && prev == up {
			return
		}
		last[name] = up
		if silent {
			return
		}
		state := "down"
		if up {
			state = "up"
		}
		switch {
		case name == u.cfg.FailoverInterface:
			u.events.Add("link", "failover interface "+name+" carrier "+state)
			u.feed(failover.LinkCarrier{Up: up})
		case slices.Contains(u.cfg.Monitored, name):
			u.events.Add("link", "monitored interface "+name+" "+state)
			u.feed(failover.InterfaceStatus{Name: name, Up: up})
		}
	}
	first := true
	for ctx.Err() == nil {
		// A subscription ends when its socket overflows (ENOBUFS: a
		// burst of link changes, a busy machine); the unit then
		// subscribes again and catches up from the current state. A
		// unit that stopped watching would learn of a lost carrier only
		// when the peer's hold expired.
		if !u.subscribeLinks(ctx, report, first) {
			if !sleepCtx(ctx, 50*time.Millisecond) {
				return
			}
		}
		first = false
		if ctx.Err() == nil {
			u.events.Add("link", "link watch lost its netlink subscription (overflow?): subscribing again")
		}
	}
}

// subscribeLinks reports the links' state now, then every change, until
// the subscription ends or ctx does. It reports whether it subscribed.
func (u *Unit) subscribeLinks(ctx context.Context, report func(name string, up, silent bool), first bool) bool {
	updates := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	defer close(done)
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ReceiveBufferSize: 1 << 20, ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) { u.log.Warn("link watch", "err", err) },
	})
	if err != nil {
		u.log.Error("link watch", "err", err)
		return false
	}
	// The state now, before any change. At the first start a failover
	// link that is not up yet is only a link coming up (carrier follows
	// admin state by a moment), not a sign against the peer: it is
	// reported when it changes.
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			name, up := l.Attrs().Name, linkUp(l)
			report(name, up, first && name == u.cfg.FailoverInterface && !up)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return true
		case up, ok := <-updates:
			if !ok {
				return true
			}
			report(up.Link.Attrs().Name, linkUp(up.Link), false)
		}
	}
}

// linkUp is true when the interface is administratively up and has carrier.
func linkUp(l netlink.Link) bool {
	a := l.Attrs()
	return a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_RUNNING != 0
}

// kernelLink is the kernel's view of one interface in the unit's
// namespace.
type kernelLink struct {
	adminUp, carrier bool
	mac              string
}

// kernelLinkOf reads an interface's admin state, carrier and MAC from the
// kernel (the unit's own namespace); ok is false when there is no such
// interface (a unit run outside its lab, as in tests).
func kernelLinkOf(name string) (l kernelLink, ok bool) {
	nl, err := netlink.LinkByName(name)
	if err != nil {
		return kernelLink{}, false
	}
	a := nl.Attrs()
	return kernelLink{adminUp: a.Flags&net.FlagUp != 0, carrier: a.RawFlags&unix.IFF_LOWER_UP != 0, mac: a.HardwareAddr.String()}, true
}
