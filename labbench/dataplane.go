package labbench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/falab/falab/lab"
	"github.com/falab/falab/labfile"
	"github.com/falab/falab/topo"
)

// Ports the data-plane measurements use on server1.
const (
	blastPort   = 9000
	connectPort = 9001
	iperfPort   = 5201
)

// dataPlaneResult is one topology's figures (falab's or the kernel's);
// an error stands for a figure that could not be measured.
type dataPlaneResult struct {
	blast      blastResult // the last run's, for its details
	blastRuns  []float64   // delivered pps, one per repetition
	blastErr   error       // set only when no repetition measured
	tcpRuns    []float64   // Gbit/s, one per repetition
	tcpErr     error
	conns      connectResult // the last run's, for its details
	connRuns   []float64     // conn/s, one per repetition
	connsErr   error
	tcpOn      []float64 // Gbit/s with offloads on, one per repetition
	tcpOnErr   error
	offloadsOn bool
	// connLag is the active's replication lag read just after the last
	// connection-rate run ("" when not read): what the standby trails by
	// when the data path is saturated, beside figure 9's 10k flows/s.
	connLag string
}

// tcpOnReps is how many iperf3 runs the offloads-on stream figures take;
// dataPlaneReps how many times a full run takes the UDP, TCP and
// connection-rate figures (a quick run takes them once).
const (
	tcpOnReps     = 3
	dataPlaneReps = 3
)

// iperfReps runs iperfTCP n times between client1 and server1 of l.
func (b *bench) iperfReps(ctx context.Context, l *labfile.Lab, n int) ([]float64, error) {
	clientNS, serverNS, server, err := hostsOf(l)
	if err != nil {
		return nil, err
	}
	var samples []float64
	for range n {
		v, err := iperfTCP(ctx, clientNS, serverNS, server.String(), iperfPort, pick(b, 2*time.Second, 5*time.Second))
		if err != nil {
			return samples, err
		}
		samples = append(samples, v)
	}
	return samples, nil
}

// hostsOf returns the namespaces of client1 and server1 and server1's
// address.
func hostsOf(l *labfile.Lab) (clientNS, serverNS string, server netip.Addr, err error) {
	s, ok := l.Host("server1")
	if !ok || len(s.Interfaces) == 0 {
		return "", "", netip.Addr{}, errors.New("the lab has no host server1 with an interface")
	}
	if _, ok := l.Host("client1"); !ok {
		return "", "", netip.Addr{}, errors.New("the lab has no host client1")
	}
	return l.Namespace("client1"), l.Namespace("server1"), s.Interfaces[0].Addr.Addr(), nil
}

// measureDataPlane runs the pps, TCP and connection-rate measurements
// between client1 and server1 of a lab that is up.
// units labels the unit processes whose CPU time per connection the
// connection-rate step reports (nil for the kernel baseline).
func (b *bench) measureDataPlane(ctx context.Context, l *labfile.Lab, units map[string]int) dataPlaneResult {
	var r dataPlaneResult
	clientNS, serverNS, server, err := hostsOf(l)
	if err != nil {
		return dataPlaneResult{blastErr: err, tcpErr: err, connsErr: err, tcpOnErr: err}
	}
	// Each repetition takes the three figures in turn, so a passing
	// disturbance of the shared machine lands in one sample of each, not
	// in every sample of one.
	for range pick(b, 1, dataPlaneReps) {
		if bl, err := blastUDP(ctx, clientNS, serverNS, "eth0",
			netip.AddrPortFrom(netip.IPv4Unspecified(), blastPort), netip.AddrPortFrom(server, blastPort),
			4, 64, pick(b, 1500*time.Millisecond, 3*time.Second)); err != nil {
			r.blastErr = err
		} else {
			r.blast, r.blastRuns = bl, append(r.blastRuns, bl.Delivered)
		}
		if v, err := iperfTCP(ctx, clientNS, serverNS, server.String(), iperfPort, pick(b, 2*time.Second, 5*time.Second)); err != nil {
			r.tcpErr = err
		} else {
			r.tcpRuns = append(r.tcpRuns, v)
		}
		if c, err := connectRate(ctx, clientNS, serverNS,
			netip.AddrPortFrom(netip.IPv4Unspecified(), connectPort), netip.AddrPortFrom(server, connectPort),
			runtime.NumCPU(), 128, pick(b, 1500*time.Millisecond, 3*time.Second), units); err != nil {
			r.connsErr = err
		} else {
			r.conns, r.connRuns = c, append(r.connRuns, c.Rate)
		}
	}
	// A figure with at least one sample is measured; a failed repetition
	// only costs a sample.
	if len(r.blastRuns) > 0 {
		r.blastErr = nil
	}
	if len(r.tcpRuns) > 0 {
		r.tcpErr = nil
	}
	if len(r.connRuns) > 0 {
		r.connsErr = nil
	}
	return r
}

// dataPlane measures figures 2-4 on a falab lab and on the kernel
// baseline (the same lab, topology only, fw-a's kernel routing with SNAT),
// and puts each falab figure beside the kernel's.
func (b *bench) dataPlane(ctx context.Context) []Figure {
	fa := b.falabDataPlane(ctx)
	k := b.kernelDataPlane(ctx)
	return dataPlaneFigures(fa, k)
}

// falabDataPlane measures the default lab (offloads off), then one TCP
// stream through a copy with offloads on; one lab up at a time.
func (b *bench) falabDataPlane(ctx context.Context) dataPlaneResult {
	r := b.falabOffloadsOff(ctx)
	r.tcpOn, r.tcpOnErr = b.falabOffloadsOn(ctx)
	return r
}

func (b *bench) falabOffloadsOff(ctx context.Context) dataPlaneResult {
	bl, down, err := b.up(ctx, "dp", false)
	if err != nil {
		return dataPlaneResult{blastErr: err, tcpErr: err, connsErr: err}
	}
	defer down()
	active, err := waitPair(ctx, bl.Name, 10*time.Second)
	if err != nil {
		return dataPlaneResult{blastErr: err, tcpErr: err, connsErr: err}
	}
	r := b.measureDataPlane(ctx, bl.Lab, unitPIDs(bl.Name, active))
	// The connection rate is each repetition's last figure, so the lag
	// window (the last replicate.LagWindow acks) is mostly its acks.
	if _, note, err := lagP99(ctx, bl.Name, active); err == nil {
		r.connLag = note
	} else {
		r.connLag = "n/a: " + errText(err)
	}
	return r
}

// unitPIDs labels the PIDs of lab's units by role ("active fw-a",
// "standby fw-b"); nil when the lab's state cannot be read (the figures
// then go without the units' CPU).
func unitPIDs(labName, active string) map[string]int {
	st, err := lab.ReadState(labName)
	if err != nil {
		return nil
	}
	pids := map[string]int{}
	for name, p := range st.Units {
		role := "standby"
		if name == active {
			role = "active"
		}
		pids[role+" "+name] = p.PID
	}
	return pids
}

// falabOffloadsOn measures one TCP stream through a lab with offloads on
// (lab file `offloads: true`): super-frames through the units whole.
func (b *bench) falabOffloadsOn(ctx context.Context) ([]float64, error) {
	bl, down, err := b.upOffloads(ctx, "on")
	if err != nil {
		return nil, err
	}
	defer down()
	if _, err := waitPair(ctx, bl.Name, 10*time.Second); err != nil {
		return nil, err
	}
	return b.iperfReps(ctx, bl.Lab, b.reps(tcpOnReps))
}

func (b *bench) kernelDataPlane(ctx context.Context) dataPlaneResult {
	bl, down, err := b.up(ctx, "kn", true)
	if err != nil {
		err = fmt.Errorf("kernel baseline: %w", err)
		return dataPlaneResult{blastErr: err, tcpErr: err, connsErr: err, tcpOnErr: err}
	}
	defer down()
	if err := kernelRouter(bl.Lab); err != nil {
		err = fmt.Errorf("kernel baseline: %w", err)
		return dataPlaneResult{blastErr: err, tcpErr: err, connsErr: err, tcpOnErr: err}
	}
	r := b.measureDataPlane(ctx, bl.Lab, nil)
	if err := setOffloads(bl.Lab, true); err != nil {
		r.tcpOnErr = fmt.Errorf("turning offloads on: %w", err)
		return r
	}
	r.offloadsOn = true
	r.tcpOn, r.tcpOnErr = b.iperfReps(ctx, bl.Lab, b.reps(tcpOnReps))
	return r
}

// kernelRouter makes the primary unit's namespace a Linux router in the
// firewall's place: the firewall's addresses on its data interfaces,
// forwarding on, and an nftables masquerade (SNAT) of the inside subnet
// out of the outside interface, as the lab's PAT rule does.
func kernelRouter(l *labfile.Lab) error {
	ns := l.Namespace(l.Primary().Name)
	var inside, outside *labfile.FirewallInterface
	for i, fi := range l.Firewall.Interfaces {
		switch fi.Name {
		case "inside":
			inside = &l.Firewall.Interfaces[i]
		case "outside":
			outside = &l.Firewall.Interfaces[i]
		}
	}
	if inside == nil || outside == nil {
		return errors.New("the lab's firewall has no inside and outside interfaces")
	}
	script := fmt.Sprintf(`table ip labbench {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "%s" ip saddr %s masquerade
	}
}
`, outside.Name, inside.Addr.Masked())
	err := topo.Do(ns, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		for _, fi := range []*labfile.FirewallInterface{inside, outside} {
			link, err := h.LinkByName(fi.Name)
			if err != nil {
				return fmt.Errorf("interface %s: %w", fi.Name, err)
			}
			a := &netlink.Addr{IPNet: &net.IPNet{IP: fi.Addr.Addr().AsSlice(), Mask: net.CIDRMask(fi.Addr.Bits(), 32)}}
			if err := h.AddrReplace(link, a); err != nil {
				return fmt.Errorf("address %s on %s: %w", fi.Addr, fi.Name, err)
			}
		}
		// /proc/sys/net is the opening thread's namespace's.
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
			return fmt.Errorf("ip_forward: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := topo.Nft(ns, script, "-f", "-"); err != nil {
		return fmt.Errorf("masquerade rule: %w", err)
	}
	return nil
}

// setOffloads turns the segmentation, receive-coalescing and checksum
// offloads of every cabled interface of the lab on (or off).
func setOffloads(l *labfile.Lab, on bool) error {
	for _, lk := range l.Links {
		for _, e := range [][2]labfile.Endpoint{{lk.A, lk.B}, {lk.B, lk.A}} {
			ifname := e[0].Iface
			if ifname == "" {
				ifname = lab.SwitchPort(e[1])
			}
			if err := topo.SetOffloads(l.Namespace(e[0].Node), ifname, on); err != nil {
				return err
			}
		}
	}
	return nil
}

// dataPlaneFigures puts falab's and the kernel's figures side by side.
func dataPlaneFigures(fa, k dataPlaneResult) []Figure {
	var figs []Figure
	ppsT := &Target{Op: ">=", Value: 0.5, OnRatio: true}
	ppsName := "UDP forwarding, 64 B payload, 4 flows"
	if fa.blastErr != nil {
		figs = append(figs, notMeasured(2, "udp-pps", ppsName, "pps", ppsT, fa.blastErr))
	} else {
		f := repeated(2, "udp-pps", ppsName, "pps", fa.blastRuns, ppsT,
			fmt.Sprintf("client1->server1 through the active unit (PAT), Go sendmmsg blaster, %d flows, one sender thread each; delivered = server1 eth0 rx packets/s; offered falab %.0f pps", fa.blast.Flows, fa.blast.Offered))
		if k.blastErr == nil {
			f = f.withKernel(median(k.blastRuns))
			f.Detail += fmt.Sprintf(", kernel %.0f pps; kernel runs %.0f", k.blast.Offered, k.blastRuns)
			if k.blast.Delivered >= 0.95*k.blast.Offered {
				f.Detail += " (the kernel forwarded all it was offered: the sender set the kernel's figure, its real capacity is higher, so the ratio flatters falab)"
			}
		} else {
			f.Detail += "; kernel n/a: " + errText(k.blastErr)
		}
		figs = append(figs, f)
	}

	tcpT := &Target{Op: ">=", Value: 0.5, OnRatio: true}
	tcpName := "TCP bulk, 1 stream (iperf3), offloads OFF"
	if fa.tcpErr != nil {
		figs = append(figs, notMeasured(3, "tcp-gbps", tcpName, "Gbit/s", tcpT, fa.tcpErr))
	} else {
		f := repeated(3, "tcp-gbps", tcpName, "Gbit/s", fa.tcpRuns, tcpT, "iperf3 -c server1 -t N, client1->server1 through the active unit; offloads off on every lab veth (the default lab), kernel likewise")
		if k.tcpErr == nil {
			f = f.withKernel(median(k.tcpRuns))
			f.Detail += fmt.Sprintf("; kernel runs %.2f", k.tcpRuns)
		} else {
			f.Detail += "; kernel n/a: " + errText(k.tcpErr)
		}
		figs = append(figs, f)
	}
	figs = append(figs, offloadsOnFigure(fa, k))

	cpsT := &Target{Op: ">=", Value: 100_000}
	cpsName := "new TCP connections per second"
	if fa.connsErr != nil {
		figs = append(figs, notMeasured(4, "conn-rate", cpsName, "conn/s", cpsT, fa.connsErr))
	} else {
		f := repeated(4, "conn-rate", cpsName, "conn/s", fa.connRuns, cpsT,
			fmt.Sprintf("client1 -> server1:%d through the active unit (PAT); %d epoll loops x %d non-blocking connects under way, each closed with SO_LINGER 0 once established; listener accepts and closes; completed connects/s over the window; %d failed%s",
				connectPort, fa.conns.Loops, fa.conns.InFlight, fa.conns.Failed, firstErrNote(fa.conns)))
		if k.connsErr == nil {
			f = f.withKernel(median(k.connRuns))
			f.Detail += fmt.Sprintf("; kernel runs %.0f", k.connRuns)
			f.Detail += fmt.Sprintf("; kernel: %d failed%s", k.conns.Failed, firstErrNote(k.conns))
		} else {
			f.Detail += "; kernel n/a: " + errText(k.connsErr)
		}
		f.Detail += cpuDetail(fa.conns, k.conns, k.connsErr == nil)
		if fa.connLag != "" {
			f.Detail += "; replication lag read just after the last run (the active's last acks, mostly of that run): " + fa.connLag
		}
		figs = append(figs, f)
	}
	return figs
}

// cpuDetail says what a connection cost in CPU time in the last run of
// each: the whole machine (client, server, switches and the forwarding
// path) and, for falab, each unit process, so that a reader sees where a
// gap to the kernel's rate goes.
func cpuDetail(fa, k connectResult, withKernel bool) string {
	d := "; CPU per connection (last run): "
	switch {
	case fa.CPU != nil:
		d += cpuNote(fa.CPU)
	case fa.CPUErr != "":
		d += "n/a (" + fa.CPUErr + ")"
	default:
		d += "n/a"
	}
	if withKernel && k.CPU != nil {
		d += "; kernel: " + cpuNote(k.CPU)
	}
	return d
}

// offloadsOnFigure is one TCP stream with offloads ON on every lab veth,
// falab's (lab file `offloads: true`: the units forward GSO super-frames
// whole) beside the kernel's, each the median of its runs.
func offloadsOnFigure(fa, k dataPlaneResult) Figure {
	const id, name = "tcp-gbps-kernel-offloads-on", "TCP bulk, 1 stream (iperf3), offloads ON"
	t := &Target{Op: ">=", Value: 0.5, OnRatio: true}
	if fa.tcpOnErr != nil || len(fa.tcpOn) == 0 {
		why := fa.tcpOnErr
		if why == nil {
			why = errors.New("no run")
		}
		return notMeasured(3, id, name, "Gbit/s", t, fmt.Errorf("falab with offloads on: %w", why))
	}
	f := repeated(3, id, name, "Gbit/s", fa.tcpOn, t,
		"iperf3 client1->server1 through the active unit (PAT); TSO/GSO/GRO/tx-checksum/SG ON on every lab veth (lab file offloads: true, topo.SetOffloads): falab reads and writes virtio_net_hdrs and NATs each super-frame once; kernel likewise")
	if k.tcpOnErr != nil || len(k.tcpOn) == 0 {
		why := k.tcpOnErr
		if why == nil {
			why = errors.New("no run")
		}
		f.Detail += "; kernel n/a: " + errText(why)
		return f
	}
	f = f.withKernel(median(k.tcpOn))
	f.Detail += fmt.Sprintf("; kernel runs %.2f", k.tcpOn)
	return f
}

func firstErrNote(r connectResult) string {
	if r.FirstErr == "" {
		return ""
	}
	return " (first: " + r.FirstErr + ")"
}
