package labbench

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/falab/falab/labfile"
	"github.com/falab/falab/topo"
)

// transparent measures figure 11: UDP forwarding through the transparent
// (bridging) pair, beside a Linux bridge in the primary unit's place on the
// same topology.
func (b *bench) transparent(ctx context.Context) []Figure {
	const id, name = "transparent-pps", "transparent pair: bridged UDP, 64 B payload, 4 flows"
	fa, err := b.transparentBlast(ctx, false)
	if err != nil {
		return []Figure{notMeasured(11, id, name, "pps", nil, err)}
	}
	f := measured(11, id, name, "pps", fa.Delivered, nil,
		fmt.Sprintf("client1->server1 across the active unit's bridge (stateful inspection, no NAT), Go sendmmsg blaster; offered falab %.0f pps", fa.Offered))
	k, err := b.transparentBlast(ctx, true)
	if err != nil {
		f.Detail += "; kernel bridge n/a: " + errText(err)
		return []Figure{f}
	}
	f = f.withKernel(k.Delivered)
	f.Detail += fmt.Sprintf(", kernel bridge (kbr0 in fw-a joining inside and outside) offered %.0f pps", k.Offered)
	if k.Delivered >= 0.95*k.Offered {
		f.Detail += " (the kernel bridged all it was offered: the sender set its figure)"
	}
	return []Figure{f}
}

func (b *bench) transparentBlast(ctx context.Context, kernel bool) (blastResult, error) {
	tag := "tp"
	if kernel {
		tag = "tk"
	}
	bl, down, err := b.upOf(ctx, "transparent", tag, kernel)
	if err != nil {
		return blastResult{}, err
	}
	defer down()
	if kernel {
		if err := kernelBridge(bl.Lab); err != nil {
			return blastResult{}, fmt.Errorf("kernel bridge: %w", err)
		}
	} else if _, err := waitPair(ctx, bl.Name, 10*time.Second); err != nil {
		return blastResult{}, err
	}
	clientNS, serverNS, server, err := hostsOf(bl.Lab)
	if err != nil {
		return blastResult{}, err
	}
	return blastUDP(ctx, clientNS, serverNS, "eth0",
		netip.AddrPortFrom(netip.IPv4Unspecified(), blastPort), netip.AddrPortFrom(server, blastPort),
		4, 64, pick(b, 1500*time.Millisecond, 3*time.Second))
}

// kernelBridge joins the primary unit's data interfaces with a Linux bridge,
// the kernel doing what the transparent firewall does (without inspection).
func kernelBridge(l *labfile.Lab) error {
	return topo.Do(l.Namespace(l.Primary().Name), func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "kbr0"}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("add bridge: %w", err)
		}
		for _, fi := range l.Firewall.Interfaces {
			link, err := h.LinkByName(fi.Name)
			if err != nil {
				return err
			}
			if err := h.LinkSetMaster(link, br); err != nil {
				return fmt.Errorf("enslave %s: %w", fi.Name, err)
			}
			if err := h.LinkSetUp(link); err != nil {
				return err
			}
		}
		return h.LinkSetUp(br)
	})
}
