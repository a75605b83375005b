package unit

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/falab/falab/api"
	"github.com/falab/falab/firewall"
	"github.com/falab/falab/fwconfig"
	"github.com/falab/falab/module"
)

// The security service module (package module) in the unit: the firewall
// diverts the TCP connections of the module's class to it (firewall
// AttachModule), and the unit owns it, expires its flows and shows it.
// Its flows are a local table: the ASA never replicates a module's state,
// so after a takeover the new active's module meets the surviving flows
// mid-stream and its fail mode decides.

// reasonModule is why the module's flows are local.
const reasonModule = "the module's memory is its own (never replicated): after a takeover its flows are met mid-stream"

// moduleSlot is the module's slot name, as `ips inline` names it.
const moduleSlot = "ips"

// moduleAdapter is a module.Module as the firewall's ServiceModule.
type moduleAdapter struct{ m *module.Module }

var _ firewall.ServiceModule = moduleAdapter{}

func (a moduleAdapter) Segment(orig firewall.Tuple, fromInitiator bool, seq uint32, flags uint8, payload []byte, now time.Time) firewall.ModuleVerdict {
	k := module.FlowKey{Client: orig.Src, Server: orig.Dst, ClientPort: orig.SrcPort, ServerPort: orig.DstPort}
	d := module.ToClient
	if fromInitiator {
		d = module.ToServer
	}
	switch a.m.Segment(k, d, seq, module.Flags(flags), payload, now) {
	case module.DropDetected:
		return firewall.ModuleDetected
	case module.DropFailClose:
		return firewall.ModuleFailClose
	case module.DropBufferFull:
		return firewall.ModuleBufferFull
	}
	return firewall.ModulePass
}

// newModule builds the module of cfg and attaches it to the firewall; nil
// when the unit has none.
func (u *Unit) newModule(cfg *fwconfig.ModuleConfig) error {
	if cfg == nil || !cfg.Enabled {
		return nil
	}
	mc := module.Config{Slot: moduleSlot}
	if cfg.FailMode == fwconfig.ModuleFailClose {
		mc.FailMode = module.FailClose
	}
	for _, s := range cfg.Signatures {
		mc.Signatures = append(mc.Signatures, module.Signature{Name: s.Name, Pattern: []byte(s.Pattern)})
	}
	m, err := module.New(mc)
	if err != nil {
		return err
	}
	u.module = m
	u.fw.AttachModule(moduleAdapter{m}, cfg.Match)
	u.AddLocalTable("module", reasonModule, func() int {
		if info := u.moduleStats.get(func() *api.ModuleInfo { return u.moduleInfo(false) }); info != nil {
			return info.Flows
		}
		return 0
	})
	return nil
}

// moduleExpireEvery is how often the module's idle and closed flows are
// removed.
const moduleExpireEvery = 5 * time.Second

// moduleLoop expires the module's flows until ctx ends.
func (u *Unit) moduleLoop(ctx context.Context) {
	if u.module == nil {
		return
	}
	t := time.NewTicker(moduleExpireEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			u.module.Expire(now)
		}
	}
}

// moduleInfo is the module's status; with text, `show module` as the ASA
// prints it. nil when the unit has no module.
func (u *Unit) moduleInfo(text bool) *api.ModuleInfo {
	m := u.module
	if m == nil {
		return nil
	}
	s := m.Stats()
	info := &api.ModuleInfo{Unit: u.cfg.Name, Slot: moduleSlot, Status: m.Status(), FailMode: s.FailMode.String(),
		Signatures: s.SignatureCount, Flows: s.Flows, Packets: s.Packets, Detected: s.Detected, DetectedDrops: s.DetectedDrops,
		UninspectedFlows: s.UninspectedFlows, UninspectedPackets: s.UninspectedPackets, FailCloseDrops: s.FailCloseDrops}
	if text {
		var b bytes.Buffer
		_ = m.Show(&b, module.Unit{Name: u.cfg.Name, Model: "falab", Version: "1.0"})
		info.Text = b.String()
	}
	return info
}

// serveModule answers GET /v1/module.
func (u *Unit) serveModule(w http.ResponseWriter, _ *http.Request) {
	info := u.moduleInfo(true)
	if info == nil {
		http.Error(w, fmt.Sprintf("unit %s has no service module (lab file firewall.module)", u.cfg.Name), http.StatusNotFound)
		return
	}
	writeJSON(w, info)
}
