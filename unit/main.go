package unit

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/falab/falab/afpacket"
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
	cfg, err := ReadConfig(*cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("unit", cfg.Name)
	keyText, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("failover key: %w", err)
	}
	key, err := replicate.ParseKey(strings.TrimSpace(string(keyText)))
	if err != nil {
		return fmt.Errorf("failover key %s: %w", cfg.KeyFile, err)
	}
	ports := map[string]firewall.Port{}
	defer func() {
		for _, p := range ports {
			p.Close()
		}
	}()
	ring := ringOptions(cfg.Firewall.MaxFrameLen())
	for _, ic := range cfg.Firewall.Interfaces {
		p, err := afpacket.Open(ic.Name, ring)
		if err != nil {
			return fmt.Errorf("data interface %s: %w", ic.Name, err)
		}
		ports[ic.Name] = p
	}
	u, err := New(cfg, key, ports, log)
	if err != nil {
		return err
	}
	for _, ic := range cfg.Firewall.Interfaces {
		// The failover control frames' own socket on each data
		// interface: small, and read by its own goroutine.
		p, err := afpacket.Open(ic.Name, afpacket.Options{
			RX: afpacket.RXMmsg, Protocol: probeEtherType, BatchSize: 16,
			RecvBuffer: 256 << 10, SendBuffer: 256 << 10,
		})
		if err != nil {
			return fmt.Errorf("control socket on data interface %s: %w", ic.Name, err)
		}
		defer p.Close()
		u.AttachControl(ic.Name, p)
	}
	return u.Run(ctx)
}

// ringOptions sizes the AF_PACKET receive ring for the longest frame the
// firewall's interfaces carry: a slot holds 66 bytes of header and then
// the frame, and slots are powers of two. A 1500 MTU keeps the default
// 2048-byte slots; jumbo frames get 16 KiB slots, fewer of them, so that
// the ring stays at the default's 8 MiB per interface.
func ringOptions(maxFrame int) afpacket.Options {
	const slotHeader, defaultSlot, defaultSlots = 66, 2048, 4096
	size := defaultSlot
	for size < maxFrame+slotHeader {
		size *= 2
	}
	return afpacket.Options{RingFrameSize: size, RingFrames: defaultSlots * defaultSlot / size}
}
