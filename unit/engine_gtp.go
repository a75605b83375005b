package unit

// The GTP engine in the data plane: package gtp's inspector bound to UDP
// 2123 (GTP-C) and 2152 (GTP-U) through the firewall's inspection hook,
// its drops counted under the firewall's gtp-* reasons (show asp-drop),
// and its PDP context database replicated as the engine table "gtp-pdp"
// (unless the lab turns that off, a negative control). Only the active
// sweeps idle contexts: the standby's go when the active's deletes arrive.

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/falab/falab/firewall"
	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/gtp"
	"github.com/falab/falab/replicate"
)

// GTPTable is the PDP context database's name in `show failover` and in a
// lab's failover.replicate.
const GTPTable = "gtp-pdp"

// gtpSweep is how often the active sweeps the database for idle contexts
// and unanswered requests: the timeouts are minutes, so a second is exact
// enough and costs nothing.
const gtpSweep = time.Second

// gtpEngine adapts a gtp.Inspector to the firewall's Inspector and to the
// unit's EngineTable.
type gtpEngine struct {
	in *gtp.Inspector
}

var (
	_ firewall.Inspector = gtpEngine{}
	_ EngineTable        = gtpEngine{}
)

// gtpDrops maps the inspector's drop reasons to the firewall's, by which
// `show asp-drop` counts them.
var gtpDrops = map[gtp.DropReason]firewall.DropReason{
	gtp.DropMalformed:          firewall.DropGTPMalformed,
	gtp.DropBadVersion:         firewall.DropGTPBadVersion,
	gtp.DropUnknownMessage:     firewall.DropGTPUnknownMessage,
	gtp.DropUnexpectedResponse: firewall.DropGTPUnexpectedResponse,
	gtp.DropRequestLimit:       firewall.DropGTPRequestLimit,
	gtp.DropTunnelLimit:        firewall.DropGTPTunnelLimit,
	gtp.DropUnknownTEID:        firewall.DropGTPUnknownTEID,
}

// Inspect hands a GTP datagram to the inspector with the addresses its
// sender wrote. The lab keeps the GSNs' addresses untranslated (GTP
// carries them inside its messages), so these are the addresses the
// messages name.
func (e gtpEngine) Inspect(x *firewall.Inspection) firewall.Verdict {
	t := x.Orig
	if !x.FromInitiator {
		t = x.Reply
	}
	src := netip.AddrPortFrom(netip.AddrFrom4(t.Src), t.SrcPort)
	dst := netip.AddrPortFrom(netip.AddrFrom4(t.Dst), t.DstPort)
	var v gtp.Verdict
	if x.Orig.DstPort == gtp.UserPort {
		v = e.in.User(src, dst, x.Payload)
	} else {
		v = e.in.Control(src, dst, x.Payload, x.Now)
	}
	if v.Pass() {
		return firewall.VerdictPass
	}
	x.Drop = gtpDrops[v.Drop]
	return firewall.VerdictDrop
}

// Name implements EngineTable.
func (gtpEngine) Name() string { return GTPTable }

// SetEmit implements EngineTable: each committed change becomes a record.
func (e gtpEngine) SetEmit(emit func(op replicate.Op, payload []byte)) {
	e.in.SetOnChange(func(c gtp.Change) {
		var buf [192]byte
		emit(replicateOp(c.Op), c.AppendBinary(buf[:0]))
	})
}

func replicateOp(op gtp.Op) replicate.Op {
	if op == gtp.OpDelete {
		return replicate.OpDelete
	}
	return replicate.OpUpsert
}

// Snapshot implements EngineTable.
func (e gtpEngine) Snapshot(emit func(payload []byte)) {
	var buf [192]byte
	e.in.Snapshot(func(r gtp.Record) {
		emit(gtp.Change{Op: gtp.OpUpsert, Record: r}.AppendBinary(buf[:0]))
	})
}

// Apply implements EngineTable: the record's own op must agree with the
// stream's.
func (e gtpEngine) Apply(op replicate.Op, payload []byte) error {
	c, err := gtp.ParseChange(payload)
	if err != nil {
		return err
	}
	if replicateOp(c.Op) != op {
		return fmt.Errorf("gtp record: op %v in a %v record", c.Op, op)
	}
	return e.in.Apply(c)
}

// Reset implements EngineTable.
func (e gtpEngine) Reset() { e.in.Reset() }

// DigestLocked implements EngineTable.
func (e gtpEngine) DigestLocked(fn func(uint64)) { e.in.DigestLocked(fn) }

// addGTP starts GTP inspection if the firewall config turns it on: the
// engine on both ports and, unless the lab says not to, its table.
func (u *Unit) addGTP() error {
	g := u.cfg.Firewall.Inspect.GTP
	if g == nil {
		return nil
	}
	e := gtpEngine{in: gtp.New(gtp.Config{
		RequestQueue: g.RequestQueue, TunnelLimit: g.TunnelLimit,
		PDPContextTimeout: g.PDPContextTimeout, GSNTimeout: g.GSNTimeout, RequestTimeout: g.RequestTimeout,
	})}
	for _, port := range []uint16{gtp.ControlPort, gtp.UserPort} {
		if err := u.fw.RegisterInspector(header.ProtocolUDP, port, e); err != nil {
			return fmt.Errorf("inspect gtp: %w", err)
		}
	}
	u.gtp = e.in
	if slices.Contains(u.cfg.NoReplicate, GTPTable) {
		return nil
	}
	return u.AddEngineTable(e)
}

// GTP returns the unit's GTP inspector, nil when GTP is not inspected.
func (u *Unit) GTP() *gtp.Inspector { return u.gtp }

// sweepGTP expires idle PDP contexts and unanswered requests while the
// unit is active.
func (u *Unit) sweepGTP(ctx context.Context) {
	t := time.NewTicker(gtpSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if u.active.Load() {
				u.gtp.Expire(now)
			}
		}
	}
}
