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
	for _, ic := range cfg.Firewall.Interfaces {
		p, err := afpacket.Open(ic.Name, afpacket.Options{})
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
