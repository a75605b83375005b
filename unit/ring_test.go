package unit

import (
	"testing"

	"github.com/falab/falab/firewall"
)

func TestRingOptionsFitTheLargestFrame(t *testing.T) {
	for _, tt := range []struct{ mtu, slot, slots int }{
		{0, 2048, 4096},
		{1500, 2048, 4096},
		{4000, 4096, 2048},
		{9000, 16384, 512},
	} {
		cfg := firewall.Config{Interfaces: []firewall.InterfaceConfig{{MTU: 1500}, {MTU: tt.mtu}}}
		o := ringOptions(cfg.MaxFrameLen(), false)
		if o.RingFrameSize != tt.slot || o.RingFrames != tt.slots {
			t.Errorf("MTU %d: slots of %d x %d, want %d x %d", tt.mtu, o.RingFrames, o.RingFrameSize, tt.slots, tt.slot)
		}
		if o.RingFrameSize < cfg.MaxFrameLen()+66 {
			t.Errorf("MTU %d: a %d-byte slot does not hold a %d-byte frame", tt.mtu, o.RingFrameSize, cfg.MaxFrameLen())
		}
	}
}

// With offloads a slot holds a 64 KiB super-frame, its virtio_net_hdr and
// the slot header.
func TestRingOptionsWithOffloadsHoldASuperFrame(t *testing.T) {
	o := ringOptions(1514, true)
	if !o.VNetHdr || o.RingFrameSize < firewall.MaxOffloadFrameSize+10+66 {
		t.Errorf("options %+v: no virtio_net_hdr or slots too small for %d-byte frames", o, firewall.MaxOffloadFrameSize)
	}
}
