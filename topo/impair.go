package topo

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoNetem is returned by SetDelay when the kernel has no netem qdisc.
var ErrNoNetem = errors.New("delay needs the netem qdisc, which this kernel lacks")

// ErrNoNft is returned by Nft, and so by SetLoss and ClearLoss, when the
// nft program is not installed.
var ErrNoNft = errors.New("the nft program is not installed (apt-get install nftables)")

// lossTable names the nftables table that holds the loss rules of one
// interface. Each interface gets its own table so setting or clearing one
// never disturbs another. nft identifiers allow [A-Za-z0-9_]; other bytes
// are hex-escaped so distinct ifnames never share a table.
func lossTable(ifname string) string {
	var b strings.Builder
	b.WriteString("falab_loss_")
	for i := 0; i < len(ifname); i++ {
		c := ifname[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return b.String()
}

// lossScript is the nft program SetLoss runs: replace the interface's table
// with one that drops `threshold` in 10000 frames at ingress and at egress.
// Declaring the table before deleting it makes the delete succeed whether
// or not it existed, and nft applies the whole file atomically.
func lossScript(ifname string, threshold int) string {
	t := lossTable(ifname)
	var b strings.Builder
	fmt.Fprintf(&b, "table netdev %s\ndelete table netdev %s\n", t, t)
	if threshold <= 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "table netdev %s {\n", t)
	for _, hook := range []string{"ingress", "egress"} {
		fmt.Fprintf(&b, "\tchain %s {\n", hook)
		fmt.Fprintf(&b, "\t\ttype filter hook %s device %q priority -500; policy accept;\n", hook, ifname)
		if threshold >= 10000 {
			// numgen yields 0..9999: "< 10000" is out of nft's range.
			b.WriteString("\t\tcounter drop\n")
		} else {
			fmt.Fprintf(&b, "\t\tnumgen random mod 10000 < %d counter drop\n", threshold)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// SetLoss makes interface ifname in namespace ns drop percent% of frames in
// each direction, chosen at random, with nftables rules (numgen random) at
// the interface's netdev ingress and egress hooks. This kernel has no netem,
// so this is how the lab loses packets. percent is in [0, 100] with a
// resolution of 0.01; 0 clears the loss.
//
// Ingress drops happen after packet sockets have seen the frame, so a
// userspace data plane reading ifname with AF_PACKET still receives frames
// this drops on ingress; to lose frames towards such a reader, set the loss
// on the far end of its link (whose egress drop the reader never sees).
func SetLoss(ns, ifname string, percent float64) error {
	if math.IsNaN(percent) || percent < 0 || percent > 100 {
		return fmt.Errorf("%s:%s: loss %v%% is outside 0..100", ns, ifname, percent)
	}
	return runLoss(ns, ifname, int(math.Round(percent*100)))
}

// ClearLoss removes the loss rules SetLoss put on ifname in ns. Clearing an
// interface without loss is not an error.
func ClearLoss(ns, ifname string) error { return runLoss(ns, ifname, 0) }

func runLoss(ns, ifname string, threshold int) error {
	if err := ValidateIfname(ifname); err != nil {
		return fmt.Errorf("%s:%s: %w", ns, ifname, err)
	}
	if strings.ContainsAny(ifname, "\"\\") {
		return fmt.Errorf("%s:%s: interface name has a quote or backslash, which nft cannot take", ns, ifname)
	}
	if err := ValidateNamespaceName(ns); err != nil {
		return err
	}
	if _, err := Nft(ns, lossScript(ifname, threshold), "-f", "-"); err != nil {
		return fmt.Errorf("%s:%s: %w", ns, ifname, err)
	}
	return nil
}

// Nft runs the nft program with args in namespace ns, script (if not
// empty) on its standard input, and returns what it printed: the one way
// falab runs nft. It runs through `ip netns exec` rather than entering the
// namespace from this process, so nft sees the namespace's own /sys too. A
// missing nft is an error wrapping ErrNoNft.
func Nft(ns, script string, args ...string) (string, error) {
	if err := ValidateNamespaceName(ns); err != nil {
		return "", err
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		return "", ErrNoNft
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, nft}, args...)...)
	if script != "" {
		cmd.Stdin = strings.NewReader(script)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// netemHandle is the root qdisc handle SetDelay installs (1:0).
var netemHandle = netlink.MakeHandle(1, 0)

// SetDelay adds delay d to every frame ifname in ns sends, with a netem
// root qdisc. d of 0 removes it. Where the kernel has no netem (this lab's
// kernel) it returns an error wrapping ErrNoNetem.
func SetDelay(ns, ifname string, d time.Duration) error {
	if d < 0 || d > time.Hour {
		return fmt.Errorf("%s:%s: delay %v is outside 0..1h", ns, ifname, d)
	}
	err := withHandle(ns, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifname)
		if err != nil {
			return err
		}
		attrs := netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netemHandle, Parent: netlink.HANDLE_ROOT}
		if d == 0 {
			err := h.QdiscDel(&netlink.GenericQdisc{QdiscAttrs: attrs, QdiscType: "netem"})
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL) {
				return nil // no netem there to remove
			}
			return err
		}
		q := netlink.NewNetem(attrs, netlink.NetemQdiscAttrs{Latency: uint32(d.Microseconds())})
		err = h.QdiscReplace(q)
		// The kernel answers an unknown qdisc kind with ENOENT ("Specified
		// qdisc kind is unknown"); a module that cannot load may also give
		// EOPNOTSUPP.
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) {
			return ErrNoNetem
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s:%s: set delay %v: %w", ns, ifname, d, err)
	}
	return nil
}
