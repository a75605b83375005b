package unit

// The unit's own IP stack (see firewall/box.go for the data plane's side):
// a TUN device, box0, in the unit's namespace, carrying the unit's current
// interface addresses as /32s with routes to the connected subnets (and
// the configured routes) through it. The addresses follow the role: the
// active addresses while active, the standby addresses otherwise, swapped
// by becomeActive and becomeStandby. Sockets bound to 0.0.0.0 (the IKE
// responder) keep working across the swap.

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/falab/falab/firewall"
)

// BoxName is the TUN device of the unit's own IP stack.
const BoxName = "box0"

// box is the unit's TUN device and the addresses it carries now.
type box struct {
	file *os.File
	link netlink.Link

	mu      sync.Mutex
	current []firewall.BoxAddress // guarded by mu: the addresses on the device
	routes  []netip.Prefix        // configured (static) routes, sent through the box too
	fw      *firewall.Firewall
}

// openTUN creates the TUN device name (IFF_TUN, no packet information) and
// returns it non-blocking, so that Close unblocks a Read.
func openTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}

// openBox creates box0 in the current namespace, brings it up with the
// smallest data-interface MTU, and gives it the standby addresses (a unit
// starts in negotiation, not active).
func openBox(fw *firewall.Firewall, cfg *Config) (*box, error) {
	if err := silenceKernelARP(cfg); err != nil {
		return nil, err
	}
	f, err := openTUN(BoxName)
	if err != nil {
		return nil, err
	}
	link, err := netlink.LinkByName(BoxName)
	if err != nil {
		f.Close()
		return nil, err
	}
	mtu := firewall.DefaultMTU
	for _, ic := range cfg.Firewall.Interfaces {
		if ic.MTU > 0 {
			mtu = min(mtu, ic.MTU)
		}
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		f.Close()
		return nil, err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		f.Close()
		return nil, err
	}
	b := &box{file: f, link: link, fw: fw}
	for _, r := range cfg.Firewall.Routes {
		b.routes = append(b.routes, r.Prefix.Masked())
	}
	if err := b.setRole(false); err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

// setRole puts the role's addresses on the box: the new ones are added
// and the routes moved to them before the old ones go, so a socket's
// reply always finds a source address.
func (b *box) setRole(active bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := b.fw.BoxAddresses(active)
	for _, a := range want {
		if err := netlink.AddrReplace(b.link, hostAddr(a.Addr)); err != nil {
			return fmt.Errorf("box address %v: %w", a.Addr, err)
		}
	}
	for _, a := range want {
		if err := b.route(a.Subnet, a.Addr); err != nil {
			return err
		}
	}
	for _, p := range b.routes {
		if src, ok := b.sourceFor(want, p); ok {
			if err := b.route(p, src); err != nil {
				return err
			}
		}
	}
	for _, old := range b.current {
		if !containsAddr(want, old.Addr) {
			if err := netlink.AddrDel(b.link, hostAddr(old.Addr)); err != nil {
				return fmt.Errorf("box address %v: %w", old.Addr, err)
			}
		}
	}
	b.current = want
	return nil
}

// sourceFor is the address a route's packets leave from: that of the
// interface the firewall routes the prefix's first address by.
func (b *box) sourceFor(addrs []firewall.BoxAddress, p netip.Prefix) (netip.Addr, bool) {
	iface, ok := b.fw.RouteInterface(p.Addr())
	if !ok {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		if a.Interface == iface {
			return a.Addr, true
		}
	}
	return netip.Addr{}, false
}

func (b *box) route(p netip.Prefix, src netip.Addr) error {
	r := &netlink.Route{LinkIndex: b.link.Attrs().Index, Dst: ipNet(p), Src: src.AsSlice(), Scope: netlink.SCOPE_LINK}
	if err := netlink.RouteReplace(r); err != nil {
		return fmt.Errorf("box route %v src %v: %w", p, src, err)
	}
	return nil
}

func containsAddr(list []firewall.BoxAddress, a netip.Addr) bool {
	for _, x := range list {
		if x.Addr == a {
			return true
		}
	}
	return false
}

func hostAddr(a netip.Addr) *netlink.Addr {
	return &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(a, 32))}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
}

// OpenBox gives the unit its own IP stack: box0 in the current namespace,
// attached to the data plane. Call before Run.
func (u *Unit) OpenBox() error {
	b, err := openBox(u.fw, u.cfg)
	if err != nil {
		return err
	}
	if err := u.attachBox(b); err != nil {
		b.file.Close()
		return err
	}
	return nil
}

// attachBox makes b the data plane's box and the stack the cut-through
// proxy steers to: its listener is a socket in this stack.
func (u *Unit) attachBox(b *box) error {
	if err := u.fw.AttachBox(b.file, u.cfg.BoxTCPPorts); err != nil {
		return err
	}
	u.box = b
	if err := u.attachUAuthStack(u.fw.BoxStack()); err != nil {
		u.log.Warn("cut-through proxy not steering", "err", err)
	}
	return nil
}

// setBoxRole swaps the box's addresses for the role. It runs on the
// driver, after the data plane switched: a new active forwards transit
// traffic first, and its own sockets answer a millisecond later.
func (u *Unit) setBoxRole(active bool) {
	if u.box == nil {
		return
	}
	if err := u.box.setRole(active); err != nil {
		u.log.Error("box addresses", "active", active, "err", err)
	}
}

// silenceKernelARP keeps the unit's kernel off the data interfaces: the
// frames there are the data plane's, and the kernel only ever talks
// through box0. With the unit's addresses on box0 the kernel would
// otherwise
//   - answer an ARP request arriving on inside or outside for them with
//     that interface's own MAC, beside the data plane (a standby would
//     answer for the active's address; under the virtual MAC two MACs
//     would answer for one gateway): arp_ignore 8, never answer;
//   - take a transit packet whose destination is a PAT address (the
//     interface's own address) as its own when the frame is addressed to
//     the interface's MAC (burned-in MAC mode), and answer it with a RST
//     that the data plane then forwards: strict reverse-path filtering
//     (rp_filter 1) drops every packet arriving on a data interface,
//     since the kernel's routes all lead to box0.
func silenceKernelARP(cfg *Config) error {
	for _, ic := range cfg.Firewall.Interfaces {
		for key, v := range map[string]string{"arp_ignore": "8", "rp_filter": "1"} {
			path := "/proc/sys/net/ipv4/conf/" + ic.Name + "/" + key
			if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
				return fmt.Errorf("keeping the kernel off %s (%s): %w", ic.Name, key, err)
			}
		}
	}
	return nil
}
