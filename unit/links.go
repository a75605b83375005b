package unit

import (
	"context"
	"net"
	"slices"

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
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		u.log.Error("link watch", "err", err)
		return
	}
	last := map[string]bool{}
	report := func(name string, up bool) {
		if prev, seen := last[name]; seen && prev == up {
			return
		}
		last[name] = up
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
	// The state now, before any change. A failover link that is not up
	// yet at start is only a link coming up (carrier follows admin state
	// by a moment), not a sign against the peer: it is reported when it
	// changes.
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			name, up := l.Attrs().Name, linkUp(l)
			if name == u.cfg.FailoverInterface && !up {
				last[name] = false
				continue
			}
			report(name, up)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case up, ok := <-updates:
			if !ok {
				return
			}
			report(up.Link.Attrs().Name, linkUp(up.Link))
		}
	}
}

// linkUp is true when the interface is administratively up and has carrier.
func linkUp(l netlink.Link) bool {
	a := l.Attrs()
	return a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_RUNNING != 0
}
