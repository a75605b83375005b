package labbench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/labfile"
	"github.com/falab/falab/topo"
)

// The standard Linux HA pair, measured in the same run and the same
// topology as falab's pair (figure 10): the default lab's topology with
// each unit's namespace a Linux router (kernel forwarding, nftables
// forward drop plus established and SNAT to the outside address,
// nf_conntrack_tcp_be_liberal=1), keepalived 2.2 (VRRPv3, advert_int
// 0.01, the smallest it accepts; both instances in one sync group,
// nopreempt) moving the firewall's addresses, and conntrackd 1.4 in FTFW
// mode syncing the connection table over the failover link, driven by its
// shipped primary-backup.sh from keepalived's notify hooks.

// primaryBackupScript is conntrackd's shipped notify script.
const primaryBackupScript = "/usr/share/doc/conntrackd/examples/sync/primary-backup.sh"

// linuxPairTools returns why the pair cannot run here, or nil.
func linuxPairTools() error {
	var missing []string
	for _, bin := range []string{"keepalived", "conntrackd"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s not installed (apt packages %s)", strings.Join(missing, " and "), strings.Join(missing, " "))
	}
	if _, err := os.Stat(primaryBackupScript); err != nil {
		return fmt.Errorf("conntrackd's primary-backup.sh: %w", err)
	}
	return nil
}

// pairUnit is one Linux router of the pair and its two daemons.
type pairUnit struct {
	name, ns       string
	dir            string
	prio           int
	inside         netip.Prefix // the unit's own address (the firewall's is the VIP)
	outside        netip.Prefix
	sync, peerSync netip.Addr // failover link addresses
	keepalived     *exec.Cmd
	conntrackd     *exec.Cmd
	crashed        bool // its links are down: it holds its addresses but forwards nothing
}

// linuxPair is the pair, running in a topology-only copy of the lab.
type linuxPair struct {
	units  [2]*pairUnit
	hasVIP func(*pairUnit) bool // holdsVIP; a test's stand-in
	// inputDrop adds the hardening the plain pair lacks: TCP arriving on
	// the outside that has no state is dropped on INPUT, instead of
	// reaching the VIP's own stack, which answers it with a RST.
	inputDrop       bool
	vipIn, vipOut   netip.Prefix
	insideNet       netip.Prefix
	insideIf, outIf string
}

// hostAddr returns the address of prefix p's network with last byte host.
func hostAddr(p netip.Prefix, host byte) netip.Prefix {
	a := p.Masked().Addr().As4()
	a[3] = host
	return netip.PrefixFrom(netip.AddrFrom4(a), p.Bits())
}

func newLinuxPair(l *labfile.Lab, dir string) (*linuxPair, error) {
	var in, out *labfile.FirewallInterface
	for i, fi := range l.Firewall.Interfaces {
		switch fi.Name {
		case "inside":
			in = &l.Firewall.Interfaces[i]
		case "outside":
			out = &l.Firewall.Interfaces[i]
		}
	}
	if in == nil || out == nil || len(l.Units) != 2 {
		return nil, errors.New("the lab has no pair with inside and outside interfaces")
	}
	p := &linuxPair{vipIn: in.Addr, vipOut: out.Addr, insideNet: in.Addr.Masked(), insideIf: in.Name, outIf: out.Name}
	p.hasVIP = p.holdsVIP
	fl := l.Failover.Link
	for i, u := range []labfile.Unit{l.Primary(), l.Secondary()} {
		pu := &pairUnit{name: u.Name, ns: l.Namespace(u.Name), dir: filepath.Join(dir, u.Name), prio: 150 - 50*i,
			inside: hostAddr(in.Addr, byte(252+i)), outside: hostAddr(out.Addr, byte(252+i)),
			sync: fl.PrimaryAddress.Addr(), peerSync: fl.SecondaryAddress.Addr()}
		if i == 1 {
			pu.sync, pu.peerSync = pu.peerSync, pu.sync
		}
		if err := os.MkdirAll(pu.dir, 0o700); err != nil {
			return nil, err
		}
		p.units[i] = pu
	}
	return p, nil
}

// route makes u's namespace a router: its own addresses, forwarding,
// liberal TCP tracking, and the nftables ruleset.
func (p *linuxPair) route(u *pairUnit, failoverIf string, fl labfile.FailoverLink) error {
	syncPrefix := fl.PrimaryAddress
	if u.sync == fl.SecondaryAddress.Addr() {
		syncPrefix = fl.SecondaryAddress
	}
	err := topo.Do(u.ns, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		for ifname, a := range map[string]netip.Prefix{p.insideIf: u.inside, p.outIf: u.outside, failoverIf: syncPrefix} {
			link, err := h.LinkByName(ifname)
			if err != nil {
				return fmt.Errorf("interface %s: %w", ifname, err)
			}
			if err := h.AddrReplace(link, &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), 32)}}); err != nil {
				return fmt.Errorf("address %s on %s: %w", a, ifname, err)
			}
			if err := h.LinkSetUp(link); err != nil {
				return err
			}
		}
		for k, v := range map[string]string{"ipv4/ip_forward": "1", "netfilter/nf_conntrack_tcp_be_liberal": "1"} {
			if err := os.WriteFile("/proc/sys/net/"+k, []byte(v), 0o644); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	script := p.ruleset()
	if _, err := topo.Nft(u.ns, script, "-f", "-"); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
}

// ruleset is each router's nftables: forward drop but established and new
// from the inside, SNAT of the inside to the outside VIP, and with
// inputDrop the INPUT hardening.
func (p *linuxPair) ruleset() string {
	script := fmt.Sprintf(`table ip linuxpair {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "%s" oifname "%s" ct state new accept
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "%s" ip saddr %s snat to %s
	}
}
`, p.insideIf, p.outIf, p.outIf, p.insideNet, p.vipOut.Addr())
	if p.inputDrop {
		script += fmt.Sprintf(`table ip linuxpair {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "%s" meta l4proto tcp ct state new,invalid drop
	}
}
`, p.outIf)
	}
	return script
}

// writeConfigs writes u's conntrackd.conf, its copy of primary-backup.sh
// (pointed at that config and lock) and keepalived.conf.
func (p *linuxPair) writeConfigs(u *pairUnit, failoverIf string) error {
	ctd := fmt.Sprintf(`Sync {
	Mode FTFW {
		DisableExternalCache Off
	}
	UDP {
		IPv4_address %s
		IPv4_Destination_Address %s
		Port 3780
		Interface %s
		Checksum on
	}
}
General {
	HashSize 32768
	HashLimit 262144
	LogFile %s/conntrackd.log
	Syslog off
	LockFile %s/conntrackd.lock
	UNIX {
		Path %s/conntrackd.ctl
	}
	NetlinkBufferSize 2097152
	NetlinkBufferSizeMaxGrowth 8388608
	Filter From Userspace {
		Address Ignore {
			IPv4_address 127.0.0.1
			IPv4_address %s
			IPv4_address %s
			IPv4_address %s
			IPv4_address %s
			IPv4_address %s
		}
	}
}
`, u.sync, u.peerSync, failoverIf, u.dir, u.dir, u.dir, u.inside.Addr(), u.outside.Addr(), u.sync, p.vipIn.Addr(), p.vipOut.Addr())
	shipped, err := os.ReadFile(primaryBackupScript)
	if err != nil {
		return err
	}
	script := strings.NewReplacer(
		"CONNTRACKD_LOCK=/var/lock/conntrack.lock", "CONNTRACKD_LOCK="+u.dir+"/conntrackd.lock",
		"CONNTRACKD_CONFIG=/etc/conntrackd/conntrackd.conf", "CONNTRACKD_CONFIG="+u.dir+"/conntrackd.conf",
	).Replace(string(shipped))
	notify := u.dir + "/primary-backup.sh"
	ka := fmt.Sprintf(`global_defs {
	vrrp_version 3
	script_user root
	vrrp_garp_master_delay 0
}
vrrp_sync_group G {
	group {
		VI_IN
		VI_OUT
	}
	notify_master "%[1]s primary"
	notify_backup "%[1]s backup"
	notify_fault "%[1]s fault"
}
`, notify)
	for i, vi := range []struct {
		name, ifname string
		vip          netip.Prefix
	}{{"VI_IN", p.insideIf, p.vipIn}, {"VI_OUT", p.outIf, p.vipOut}} {
		ka += fmt.Sprintf(`vrrp_instance %s {
	state BACKUP
	nopreempt
	interface %s
	virtual_router_id %d
	priority %d
	advert_int 0.01
	virtual_ipaddress {
		%s dev %s
	}
}
`, vi.name, vi.ifname, 51+i, u.prio, vi.vip, vi.ifname)
	}
	for name, body := range map[string]string{"conntrackd.conf": ctd, "primary-backup.sh": script, "keepalived.conf": ka} {
		mode := os.FileMode(0o600)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o700
		}
		if err := os.WriteFile(filepath.Join(u.dir, name), []byte(body), mode); err != nil {
			return err
		}
	}
	return nil
}

// start runs u's conntrackd, then keepalived, in u's namespace, as this
// process's children.
func (u *pairUnit) start() error {
	u.conntrackd = exec.Command("conntrackd", "-C", u.dir+"/conntrackd.conf")
	if err := startLogged(u.ns, u.conntrackd, u.dir+"/conntrackd.out"); err != nil {
		return fmt.Errorf("conntrackd on %s: %w", u.name, err)
	}
	// Both routers share the mount namespace: each keepalived needs its
	// own pid files, or the second would find the first running.
	u.keepalived = exec.Command("keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp",
		"-f", u.dir+"/keepalived.conf", "-p", u.dir+"/keepalived.pid", "-r", u.dir+"/vrrp.pid", "-c", u.dir+"/checkers.pid")
	if err := startLogged(u.ns, u.keepalived, u.dir+"/keepalived.out"); err != nil {
		return fmt.Errorf("keepalived on %s: %w", u.name, err)
	}
	return nil
}

func startLogged(ns string, cmd *exec.Cmd, logPath string) error {
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its scripts die with it
	return topo.Do(ns, cmd.Start)
}

// kill ends u's daemons (this process's children, by PID) and waits for
// them.
func (u *pairUnit) kill() {
	for _, c := range []*exec.Cmd{u.keepalived, u.conntrackd} {
		if c != nil && c.Process != nil {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL) // its own group: it and its notify scripts
			_ = c.Wait()
		}
	}
}

// crash kills u's daemons and takes its data links down: the box is gone.
// A down link keeps its addresses, so u is marked crashed and no longer
// counts as holding the VIP.
func (p *linuxPair) crash(u *pairUnit) error {
	u.kill()
	u.crashed = true
	return topo.Do(u.ns, func() error {
		for _, ifname := range []string{p.insideIf, p.outIf} {
			link, err := netlink.LinkByName(ifname)
			if err != nil {
				return err
			}
			if err := netlink.LinkSetDown(link); err != nil {
				return err
			}
		}
		return nil
	})
}

// freeze stops u's daemons (SIGSTOP to each one's process group): the HA
// software hangs, as falab's unit does under SIGSTOP, while u's kernel
// keeps its VIPs and goes on forwarding what still reaches it.
func (u *pairUnit) freeze() error {
	for _, c := range []*exec.Cmd{u.keepalived, u.conntrackd} {
		if c == nil || c.Process == nil {
			continue
		}
		if err := syscall.Kill(-c.Process.Pid, syscall.SIGSTOP); err != nil {
			return fmt.Errorf("SIGSTOP %s: %w", c.Path, err)
		}
	}
	return nil
}

// fault injects lab.FaultKill (crash) or lab.FaultFreeze into u.
func (p *linuxPair) fault(u *pairUnit, kind string) error {
	switch kind {
	case lab.FaultKill:
		return p.crash(u)
	case lab.FaultFreeze:
		return u.freeze()
	}
	return fmt.Errorf("the Linux pair has no fault %q", kind)
}

// holdsVIP reports whether u's inside interface carries the inside VIP.
func (p *linuxPair) holdsVIP(u *pairUnit) bool {
	var has bool
	_ = topo.Do(u.ns, func() error {
		link, err := netlink.LinkByName(p.insideIf)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		for _, a := range addrs {
			has = has || a.IP.Equal(p.vipIn.Addr().AsSlice())
		}
		return err
	})
	return has
}

// master returns the first live unit holding the inside VIP, or nil.
func (p *linuxPair) master() *pairUnit { return p.takeover(nil) }

// takeover returns a live unit other than old holding the inside VIP, or
// nil: after a fault of old, the unit that took its place.
func (p *linuxPair) takeover(old *pairUnit) *pairUnit {
	for _, u := range p.units {
		if u != old && !u.crashed && p.hasVIP(u) {
			return u
		}
	}
	return nil
}

// noTakeover says that no unit took old's place, with the last lines of
// the others' keepalived logs.
func (p *linuxPair) noTakeover(old *pairUnit, fault string) error {
	return fmt.Errorf("after %s of %s no other unit holds the VIP (%s)", fault, old.name, p.logTails(old))
}

// startLinuxPair configures both routers and starts their daemons, and
// waits for a master.
func startLinuxPair(ctx context.Context, l *labfile.Lab, dir string, inputDrop bool) (*linuxPair, error) {
	p, err := newLinuxPair(l, dir)
	if err != nil {
		return nil, err
	}
	p.inputDrop = inputDrop
	for _, u := range p.units {
		if err := p.route(u, l.Failover.Link.Interface, l.Failover.Link); err != nil {
			return p, fmt.Errorf("%s: %w", u.name, err)
		}
		if err := p.writeConfigs(u, l.Failover.Link.Interface); err != nil {
			return p, fmt.Errorf("%s: %w", u.name, err)
		}
		if err := u.start(); err != nil {
			return p, err
		}
	}
	for deadline := time.Now().Add(5 * time.Second); p.master() == nil; {
		if time.Now().After(deadline) {
			return p, fmt.Errorf("no keepalived master after 5 s (see %s)", dir)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return p, err
		}
	}
	return p, p.settle(ctx)
}

// settle waits until one router alone holds the VIP on two polls 50 ms
// (five adverts) apart. Two holders for 2 s mean the adverts (multicast
// 224.0.0.18) do not reach the peer, and every figure would be of two
// masters; a moment of two is a backup that missed three adverts (a
// loaded machine) and became master until the next advert sent it back.
func (p *linuxPair) settle(ctx context.Context) error {
	alone := 0
	for deadline := time.Now().Add(2 * time.Second); alone < 2; {
		if m := p.master(); m != nil && p.takeover(m) == nil {
			alone++
		} else {
			alone = 0
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no single VIP holder for 2 s (%s)", p.logTails(nil))
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// logTails returns the last lines of the keepalived log of every router
// but except.
func (p *linuxPair) logTails(except *pairUnit) string {
	var logs []string
	for _, u := range p.units {
		if u != except {
			b, _ := os.ReadFile(u.dir + "/keepalived.out")
			logs = append(logs, fmt.Sprintf("%s keepalived: %q", u.name, lastLines(string(b), 5)))
		}
	}
	return strings.Join(logs, "; ")
}

func (p *linuxPair) stop() {
	for _, u := range p.units {
		if u != nil {
			u.kill()
		}
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// masterTransitions counts how often the routers' keepalived entered
// MASTER for the inside VIP: one after a clean start, two after a
// takeover; more is a backup that missed adverts and took the VIP for a
// moment.
func (p *linuxPair) masterTransitions() int {
	n := 0
	for _, u := range p.units {
		b, _ := os.ReadFile(u.dir + "/keepalived.out")
		n += strings.Count(string(b), "(VI_IN) Entering MASTER STATE")
	}
	return n
}
