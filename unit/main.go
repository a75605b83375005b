package unit

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"

	"github.com/falab/falab/afpacket"
	"github.com/falab/falab/api"
	"github.com/falab/falab/firewall"
	"github.com/falab/falab/replicate"
)

// Main is `falab unit --config FILE`: the unit process, started by `falab
// up` inside the unit's namespace. It runs until SIGTERM/SIGINT (ctx).
func Main(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("unit", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "the unit's config file (written by falab up)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return fmt.Errorf("--config is required")
	}
	cfg, err := api.ReadUnitConfig(*cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("unit", cfg.Name)
	if cfg.CPUs > 0 {
		runtime.GOMAXPROCS(cfg.CPUs)
	}
	key, err := api.ReadKeyFile(cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("failover key: %w", err)
	}
	ports := map[string]firewall.Port{}
	defer func() {
		for _, p := range ports {
			p.Close()
		}
	}()
	ring := ringOptions(cfg.Firewall.MaxFrameLen(), cfg.Offloads)
	ring.Exclude = dataExcluded(cfg.Firewall.Mode)
	for _, ic := range cfg.Firewall.Interfaces {
		p, err := afpacket.Open(ic.Name, ring)
		if err != nil {
			return fmt.Errorf("data interface %s: %w", ic.Name, err)
		}
		ports[ic.Name] = p
	}
	u, err := New(cfg, replicate.Key(key), ports, log)
	if err != nil {
		return err
	}
	for _, ic := range cfg.Firewall.Interfaces {
		// The failover control frames' own socket on each data
		// interface: small, and read by its own goroutine.
		p, err := afpacket.Open(ic.Name, controlSocket(probeEtherType))
		if err != nil {
			return fmt.Errorf("control socket on data interface %s: %w", ic.Name, err)
		}
		defer p.Close()
		u.AttachControl(ic.Name, p)
		if cfg.Firewall.Mode == firewall.ModeTransparent {
			continue
		}
		// ARP's own socket too: a saturated data ring must not drop a
		// host's question for its gateway. The firewall closes it.
		ap, err := afpacket.Open(ic.Name, controlSocket(etherTypeARP))
		if err != nil {
			return fmt.Errorf("ARP socket on data interface %s: %w", ic.Name, err)
		}
		if err := u.fw.AttachARP(ic.Name, ap); err != nil {
			ap.Close()
			return err
		}
	}
	if err := u.OpenBox(); err != nil {
		// Without it the data plane still answers ping to the unit.
		log.Warn("no box: the unit's own sockets are unreachable", "err", err)
	}
	return u.Run(ctx)
}

// afpacket.Port carries super-frames to the firewall when opened with
// VNetHdr (ringOptions with offloads).
var _ firewall.OffloadPort = (*afpacket.Port)(nil)

const etherTypeARP = 0x0806

// dataExcluded are the EtherTypes a data socket never receives, because
// a socket of their own takes them (see the loop in Main): the interface
// hellos, and in routed mode ARP. A flood of either then costs one ring
// copy and one read, not two; the data ring and its reader do not see it.
// In transparent mode ARP is bridged, through the data path.
func dataExcluded(mode string) []uint16 {
	if mode == firewall.ModeTransparent {
		return []uint16{probeEtherType}
	}
	return []uint16{probeEtherType, etherTypeARP}
}

// controlSocket is a small receive-only-one-EtherType socket: its frames
// get a ring of their own (128 slots, 256 KiB), apart from the data ring.
func controlSocket(ethertype uint16) afpacket.Options {
	return afpacket.Options{Protocol: ethertype, BatchSize: 16, RingFrames: 128, SendBuffer: 256 << 10}
}

// ringOptions sizes the AF_PACKET receive ring for the longest frame the
// firewall's interfaces carry: a slot holds 66 bytes of header and then
// the frame, and slots are powers of two. A 1500 MTU keeps the default
// 2048-byte slots; jumbo frames get 16 KiB slots, fewer of them, so that
// the ring stays at the default's 8 MiB per interface.
//
// With offloads the frames are GSO super-frames of up to 64 KiB, with a
// virtio_net_hdr: 128 KiB slots, 256 of them (32 MiB per interface). A
// slot per frame, so the ring holds fewer small frames than the default:
// the price of the V2 ring's fixed slots (see package afpacket).
func ringOptions(maxFrame int, offloads bool) afpacket.Options {
	if offloads {
		return afpacket.Options{VNetHdr: true, RingFrameSize: 1 << 17, RingFrames: 256}
	}
	const slotHeader, defaultSlot, defaultSlots = 66, 2048, 4096
	size := defaultSlot
	for size < maxFrame+slotHeader {
		size *= 2
	}
	return afpacket.Options{RingFrameSize: size, RingFrames: defaultSlots * defaultSlot / size}
}
