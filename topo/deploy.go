package topo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// deployWorkers bounds how many namespaces or links are built at once. The
// work is mostly kernel time under the RTNL lock, so more workers than this
// only queue on that lock.
const deployWorkers = 4

// nsState is an open lab namespace during a Deploy: its fd (for entering it
// and for naming it as a veth peer's home) and a netlink handle bound to it.
type nsState struct {
	name string
	fd   netns.NsHandle
	h    *netlink.Handle
}

// deployer carries one Deploy call. created is guarded by mu; nss is written
// before the parallel phases that read it and not changed during them.
type deployer struct {
	log *slog.Logger
	nss map[string]*nsState

	mu      sync.Mutex
	created []string // namespaces this call made, undone on failure
	// madeIfaces are the bridges and veths (by their A end) this call
	// made. On failure those in namespaces that were already there are
	// deleted one by one: removing a namespace frees its interfaces only
	// when the kernel gets round to it, and a veth end left behind in a
	// surviving namespace would block the next Deploy.
	madeIfaces []Endpoint
}

// made records an interface this call created.
func (d *deployer) made(ns, ifname string) {
	d.mu.Lock()
	d.madeIfaces = append(d.madeIfaces, Endpoint{Namespace: ns, Ifname: ifname})
	d.mu.Unlock()
}

// undo deletes what this call made: first its interfaces in namespaces it
// did not create, then the namespaces it created.
func (d *deployer) undo() error {
	var errs []error
	for _, e := range d.madeIfaces {
		if slices.Contains(d.created, e.Namespace) {
			continue // goes with its namespace
		}
		st := d.nss[e.Namespace]
		l, err := st.h.LinkByName(e.Ifname)
		if isNotFound(err) {
			continue // a veth whose other end's namespace went first
		}
		if err == nil {
			err = st.h.LinkDel(l)
		}
		if err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", e, err))
		}
	}
	if err := Remove(d.created); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Deploy builds plan p: namespaces (in parallel), loopback up in each,
// bridges, veth pairs with their MACs, MTUs, offloads, IPv6 setting,
// bridge ports and addresses, links up, then sysctls and routes. Work is
// spread over a few workers per phase.
//
// Deploy is idempotent: whatever already exists as the plan says is kept and
// brought to the plan's settings; something that exists in a conflicting
// form (an interface of the wrong kind, a veth whose peer is another
// interface) is an error that says what differs.
//
// Nothing is created in the caller's namespace: each veth is created through
// a netlink socket in its A namespace with its peer placed directly in its B
// namespace.
//
// If Deploy fails it deletes what this call created (its namespaces, and
// its bridges and veths inside namespaces that were there before, which are
// otherwise left alone) and returns an error naming the object and the
// cause, e.g.
// "link falab-x-client1:eth0 <-> falab-x-sw:p1: create veth: file exists".
//
// Deploys of disjoint plans may run concurrently; two concurrent Deploys
// touching the same namespaces race like two `ip` scripts would.
func Deploy(ctx context.Context, p Plan, log *slog.Logger) (err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("invalid plan: %w", err)
	}
	start := time.Now()
	d := &deployer{log: log, nss: make(map[string]*nsState, len(p.Namespaces))}
	defer func() {
		if err != nil && len(d.created)+len(d.madeIfaces) > 0 {
			log.Warn("deploy failed; removing what it built", "namespaces", len(d.created),
				"interfaces", len(d.madeIfaces), "err", err)
			if uerr := d.undo(); uerr != nil {
				err = errors.Join(err, fmt.Errorf("undo: %w", uerr))
			}
		}
		for _, st := range d.nss {
			st.h.Close()
			st.fd.Close()
		}
	}()

	if err := parallel(ctx, len(p.Namespaces), func(i int) error {
		return d.namespace(p.Namespaces[i].Name)
	}); err != nil {
		return err
	}
	// Open every namespace before the phases that read d.nss in parallel.
	for _, ns := range p.Namespaces {
		st, err := openNamespace(ns.Name)
		if err != nil {
			return err
		}
		d.nss[ns.Name] = st
	}

	bridgesByNS := make(map[string][]Bridge)
	for _, b := range p.Bridges {
		bridgesByNS[b.Namespace] = append(bridgesByNS[b.Namespace], b)
	}
	earlySysctls := make(map[string][]Sysctl)
	lateSysctls := make(map[string][]Sysctl)
	for _, s := range p.Sysctls {
		if perInterfaceSysctl(s.Key) {
			lateSysctls[s.Namespace] = append(lateSysctls[s.Namespace], s)
		} else {
			earlySysctls[s.Namespace] = append(earlySysctls[s.Namespace], s)
		}
	}
	if err := parallel(ctx, len(p.Namespaces), func(i int) error {
		st := d.nss[p.Namespaces[i].Name]
		if err := setUp(st.h, "lo"); err != nil {
			return fmt.Errorf("namespace %s: loopback up: %w", st.name, err)
		}
		if err := writeSysctls(st, earlySysctls[st.name]); err != nil {
			return err
		}
		for _, b := range bridgesByNS[st.name] {
			if err := d.bridge(st, b); err != nil {
				return fmt.Errorf("%s: %w", b, err)
			}
		}
		return nil
	}); err != nil {
		return err
	}

	nsDone := time.Since(start)
	if err := parallel(ctx, len(p.Links), func(i int) error {
		if err := d.link(p.Links[i]); err != nil {
			return fmt.Errorf("%s: %w", p.Links[i], err)
		}
		return nil
	}); err != nil {
		return err
	}

	routesByNS := make(map[string][]Route)
	for _, r := range p.Routes {
		routesByNS[r.Namespace] = append(routesByNS[r.Namespace], r)
	}
	if err := parallel(ctx, len(p.Namespaces), func(i int) error {
		st := d.nss[p.Namespaces[i].Name]
		if err := writeSysctls(st, lateSysctls[st.name]); err != nil {
			return err
		}
		for _, r := range routesByNS[st.name] {
			route := &netlink.Route{Dst: prefixNet(r.Dst), Gw: net.IP(r.Via.AsSlice())}
			if err := st.h.RouteReplace(route); err != nil {
				return fmt.Errorf("%s: %w", r, err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	log.Info("topology deployed", "namespaces", len(p.Namespaces), "created", len(d.created),
		"bridges", len(p.Bridges), "links", len(p.Links), "routes", len(p.Routes),
		"elapsed", time.Since(start).Round(time.Millisecond),
		"namespaces_and_bridges", nsDone.Round(time.Millisecond))
	return nil
}

// parallel runs fn(0..n-1) on up to deployWorkers goroutines. After the
// first failure, or once ctx is done, it starts no more calls; it waits for
// the running ones and returns every error, joined in index order so the
// report does not depend on scheduling.
func parallel(ctx context.Context, n int, fn func(i int) error) error {
	var (
		mu     sync.Mutex
		errs   = make([]error, n+1) // errs[n] is ctx's error
		failed bool
		next   int
		wg     sync.WaitGroup
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if failed || next >= n {
			return 0, false
		}
		if err := ctx.Err(); err != nil {
			errs[n], failed = err, true
			return 0, false
		}
		next++
		return next - 1, true
	}
	for range min(deployWorkers, n) {
		wg.Go(func() {
			for i, ok := take(); ok; i, ok = take() {
				if err := fn(i); err != nil {
					mu.Lock()
					errs[i], failed = err, true
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// namespace creates one namespace, recording it for undo if it is new.
func (d *deployer) namespace(name string) error {
	created, err := CreateNamespace(name)
	if err != nil {
		return err
	}
	if created {
		d.mu.Lock()
		d.created = append(d.created, name)
		d.mu.Unlock()
		d.log.Debug("namespace created", "ns", name)
	} else {
		d.log.Debug("namespace already there", "ns", name)
	}
	return nil
}

// openNamespace opens ns and a netlink handle inside it.
func openNamespace(ns string) (*nsState, error) {
	fd, err := netns.GetFromPath(nsPath(ns))
	if err != nil {
		return nil, fmt.Errorf("namespace %s: open: %w", ns, err)
	}
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		fd.Close()
		return nil, fmt.Errorf("namespace %s: open netlink: %w", ns, err)
	}
	return &nsState{name: ns, fd: fd, h: h}, nil
}

// bridge creates (or adopts) bridge b as a plain wire between its ports and
// brings it up: STP off and forward delay 0 (ports forward at once),
// bridge netfilter off and multicast snooping off. The netlink library has
// no fields for most of these, so the request is built by hand and sent
// from inside the namespace. VLAN filtering is off on a new bridge and
// stays so; the request does not name it because a kernel built without
// it (CONFIG_BRIDGE_VLAN_FILTERING, as on 6.18 here) refuses even a 0.
//
// Bridge netfilter is off both on the bridge and in its namespace
// (bridgeNetfilterOff): the kernel runs bridged IPv4/IPv6/ARP through the
// netfilter hooks when either says so, and on that path it validates the
// IPv4 header and drops a frame with a bad checksum or total length before
// it reaches the far port. A lab switch must hand the units what a test
// sent, malformed or not, as a cable would. Multicast snooping would stop
// flooding a group once someone sends IGMP reports and queries; without it
// multicast goes to every port as on a hub.
func (d *deployer) bridge(st *nsState, b Bridge) error {
	l, err := st.h.LinkByName(b.Name)
	switch {
	case err == nil && l.Type() != "bridge":
		return fmt.Errorf("exists as a %s, not a bridge", l.Type())
	case err != nil && !isNotFound(err):
		return fmt.Errorf("look up: %w", err)
	}
	isNew := err != nil
	err = doIn(st.name, st.fd, func() error {
		// NLM_F_CREATE without NLM_F_EXCL: create, or change an existing
		// bridge to these settings.
		req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_ACK)
		req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
		req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(b.Name)))
		info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
		info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
		data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
		data.AddRtAttr(nl.IFLA_BR_FORWARD_DELAY, nl.Uint32Attr(0))
		data.AddRtAttr(nl.IFLA_BR_STP_STATE, nl.Uint32Attr(0))
		data.AddRtAttr(nl.IFLA_BR_NF_CALL_IPTABLES, nl.Uint8Attr(0))
		data.AddRtAttr(nl.IFLA_BR_NF_CALL_IP6TABLES, nl.Uint8Attr(0))
		data.AddRtAttr(nl.IFLA_BR_NF_CALL_ARPTABLES, nl.Uint8Attr(0))
		data.AddRtAttr(nl.IFLA_BR_MCAST_SNOOPING, nl.Uint8Attr(0))
		req.AddData(info)
		if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
			return err
		}
		return bridgeNetfilterOff()
	})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if isNew {
		d.made(st.name, b.Name)
	}
	if err := setUp(st.h, b.Name); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	d.log.Debug("bridge ready", "ns", st.name, "bridge", b.Name)
	return nil
}

// bridgeNetfilterKeys are the per-namespace switches (kernel 5.3 and
// later) that send bridged traffic through iptables, ip6tables and
// arptables. A new namespace starts with them on whenever br_netfilter is
// loaded or built in.
var bridgeNetfilterKeys = []string{
	"net/bridge/bridge-nf-call-iptables",
	"net/bridge/bridge-nf-call-ip6tables",
	"net/bridge/bridge-nf-call-arptables",
}

// bridgeNetfilterOff turns the calling thread's namespace's bridge
// netfilter switches off. Without br_netfilter they do not exist and there
// is nothing to turn off. If the module is loaded only after Deploy, they
// start on in the namespaces that exist by then, and the bridges filter
// again until the lab is deployed anew.
func bridgeNetfilterOff() error {
	for _, key := range bridgeNetfilterKeys {
		if err := writeSysctl(key, "0"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sysctl %s: %w", key, err)
		}
	}
	return nil
}

// link creates (or adopts) the veth pair l and configures both ends.
func (d *deployer) link(l Link) error {
	a, b := d.nss[l.A.Namespace], d.nss[l.B.Namespace]
	la, errA := a.h.LinkByName(l.A.Ifname)
	if errA != nil && !isNotFound(errA) {
		return fmt.Errorf("look up %s: %w", l.A, errA)
	}
	lb, errB := b.h.LinkByName(l.B.Ifname)
	if errB != nil && !isNotFound(errB) {
		return fmt.Errorf("look up %s: %w", l.B, errB)
	}
	switch {
	case la == nil && lb == nil:
		veth := &netlink.Veth{
			LinkAttrs:        netlink.LinkAttrs{Name: l.A.Ifname, HardwareAddr: l.A.MAC, MTU: l.A.MTU},
			PeerName:         l.B.Ifname,
			PeerHardwareAddr: l.B.MAC,
			PeerMTU:          uint32(l.B.MTU),
			PeerNamespace:    netlink.NsFd(b.fd),
		}
		if err := a.h.LinkAdd(veth); err != nil {
			return fmt.Errorf("create veth: %w", err)
		}
		d.made(l.A.Namespace, l.A.Ifname)
		d.log.Debug("veth created", "a", l.A.String(), "b", l.B.String())
	case la == nil:
		return fmt.Errorf("%s exists but %s does not", l.B, l.A)
	case lb == nil:
		return fmt.Errorf("%s exists but %s does not", l.A, l.B)
	default:
		if err := samePair(la, lb); err != nil {
			return err
		}
	}
	if err := d.endpoint(a, l.A); err != nil {
		return fmt.Errorf("%s: %w", l.A, err)
	}
	if err := d.endpoint(b, l.B); err != nil {
		return fmt.Errorf("%s: %w", l.B, err)
	}
	return nil
}

// samePair checks that two existing interfaces are the two ends of one
// veth: each names the other's index as its peer (IFLA_LINK).
func samePair(la, lb netlink.Link) error {
	for _, l := range []netlink.Link{la, lb} {
		if l.Type() != "veth" {
			return fmt.Errorf("interface %s exists as a %s, not a veth", l.Attrs().Name, l.Type())
		}
	}
	if la.Attrs().ParentIndex != lb.Attrs().Index || lb.Attrs().ParentIndex != la.Attrs().Index {
		return fmt.Errorf("interfaces exist but are not peers of each other (%s's peer is ifindex %d, %s is ifindex %d)",
			la.Attrs().Name, la.Attrs().ParentIndex, lb.Attrs().Name, lb.Attrs().Index)
	}
	return nil
}

// endpoint brings one veth end to the plan's settings and up. IPv6 and
// offloads are set before the link comes up, so the kernel never sends
// IPv6 on it and never hands a GSO frame to a packet socket.
func (d *deployer) endpoint(st *nsState, e Endpoint) error {
	l, err := st.h.LinkByName(e.Ifname)
	if err != nil {
		return fmt.Errorf("look up: %w", err)
	}
	if e.MAC != nil && !bytes.Equal(l.Attrs().HardwareAddr, e.MAC) {
		if err := st.h.LinkSetHardwareAddr(l, e.MAC); err != nil {
			return fmt.Errorf("set MAC %s: %w", e.MAC, err)
		}
	}
	if e.MTU != 0 && l.Attrs().MTU != e.MTU {
		if err := st.h.LinkSetMTU(l, e.MTU); err != nil {
			return fmt.Errorf("set MTU %d: %w", e.MTU, err)
		}
	}
	if e.DisableIPv6 || e.OffloadsOff {
		err := doIn(st.name, st.fd, func() error {
			if e.DisableIPv6 {
				if err := disableIPv6(e.Ifname); err != nil {
					return err
				}
			}
			if e.OffloadsOff {
				return setOffloads(e.Ifname, false)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if e.Master != "" {
		m, err := st.h.LinkByName(e.Master)
		if err != nil {
			return fmt.Errorf("look up master %s: %w", e.Master, err)
		}
		if l.Attrs().MasterIndex != m.Attrs().Index {
			if err := st.h.LinkSetMasterByIndex(l, m.Attrs().Index); err != nil {
				return fmt.Errorf("enslave to %s: %w", e.Master, err)
			}
		}
	}
	for _, a := range e.Addrs {
		if err := st.h.AddrReplace(l, &netlink.Addr{IPNet: prefixNet(a)}); err != nil {
			return fmt.Errorf("add address %s: %w", a, err)
		}
	}
	if err := st.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	return nil
}

// perInterfaceSysctl reports whether key names one interface's setting
// (net/ipv4/conf/IFNAME/..., net/ipv6/neigh/IFNAME/...), which can only be
// written once the interface exists. Every other key, including the
// conf/all and conf/default ones, is written before any link is created,
// so that net/ipv6/conf/default/disable_ipv6=1 covers every plan interface
// from birth.
func perInterfaceSysctl(key string) bool {
	parts := strings.Split(key, "/")
	return len(parts) >= 5 && parts[0] == "net" &&
		(parts[1] == "ipv4" || parts[1] == "ipv6") &&
		(parts[2] == "conf" || parts[2] == "neigh") &&
		parts[3] != "all" && parts[3] != "default"
}

// writeSysctls writes sysctls inside st's namespace, in order.
func writeSysctls(st *nsState, sysctls []Sysctl) error {
	if len(sysctls) == 0 {
		return nil
	}
	return doIn(st.name, st.fd, func() error {
		for _, s := range sysctls {
			if err := writeSysctl(s.Key, s.Value); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
}

// disableIPv6 sets disable_ipv6 on ifname in the calling thread's namespace.
// A kernel without IPv6 has nothing to disable.
func disableIPv6(ifname string) error {
	if _, err := os.Stat("/proc/sys/net/ipv6"); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := writeSysctl("net/ipv6/conf/"+ifname+"/disable_ipv6", "1"); err != nil {
		return fmt.Errorf("disable IPv6: %w", err)
	}
	return nil
}

// writeSysctl writes value to /proc/sys/KEY. /proc/sys/net shows the
// namespace of the thread that opens it, so call this inside Do.
func writeSysctl(key, value string) error {
	if err := validateSysctlKey(key); err != nil {
		return err
	}
	path := filepath.Join("/proc/sys", key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(value + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, werr)
	}
	return nil
}

// ReadSysctl reads /proc/sys/KEY inside namespace ns, trimmed of its
// trailing newline.
func ReadSysctl(ns, key string) (string, error) {
	if err := validateSysctlKey(key); err != nil {
		return "", err
	}
	var out []byte
	err := Do(ns, func() (err error) {
		out, err = os.ReadFile(filepath.Join("/proc/sys", key))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("sysctl %s:%s: %w", ns, key, err)
	}
	return string(bytes.TrimRight(out, "\n")), nil
}

// setUp brings the named interface up.
func setUp(h *netlink.Handle, ifname string) error {
	l, err := h.LinkByName(ifname)
	if err != nil {
		return err
	}
	return h.LinkSetUp(l)
}

// isNotFound reports whether a netlink lookup failed because the interface
// does not exist.
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// prefixNet converts a prefix to the library's *net.IPNet, keeping the
// host bits (an interface address 198.18.0.10/24 stays .10).
func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
