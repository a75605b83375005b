package unit

// The SIP engine in the data plane: package sip's inspector bound to UDP
// and TCP 5060 through the firewall's inspection hook, its drops counted
// under the firewall's sip-* reasons (show asp-drop), its media pinholes
// opened and closed in the firewall, and, over UDP, the addresses SIP and
// SDP carry rewritten under NAT (sip.Rewrite with the firewall's mapping).
// SIP over TCP is inspected but not rewritten: a resized TCP segment would
// need sequence rewriting, which the hook does not do.
//
// Its three tables (SIP Session, SIP Tx, SIP Pinhole, as an ASA's `show
// failover` lists them) ride the state link as one engine table, "sip"
// (unless the lab turns that off, a negative control): one table, because
// the unit takes every engine's lock in turn to mark a digest and the
// three share the inspector's. A standby that applies a pinhole record
// opens the same pinhole in its firewall, so that media a call asks for
// after a failover is admitted there too. Only the active expires idle
// sessions: the standby's go when the active's deletes arrive.

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/falab/falab/firewall"
	"github.com/falab/falab/firewall/header"
	"github.com/falab/falab/replicate"
	"github.com/falab/falab/sip"
)

// SIPTable is the SIP tables' name in `show failover` and in a lab's
// failover.replicate.
const SIPTable = "sip"

// SIPPort is the port SIP is inspected on, UDP and TCP.
const SIPPort = 5060

// sipSweep is how often the active expires idle SIP sessions; the
// timeouts are minutes.
const sipSweep = time.Second

// sipEngine adapts a sip.Inspector to the firewall's Inspector and to the
// unit's EngineTable.
type sipEngine struct {
	in *sip.Inspector
	fw *firewall.Firewall

	// mu orders the table's changes and the stream: held across an
	// inspection and the emission of its records, an Apply, a Snapshot
	// and a digest (the inspector's own lock is released between them).
	mu   sync.Mutex
	emit func(op replicate.Op, payload []byte) // guarded by mu; nil: not replicated
}

var (
	_ firewall.Inspector = (*sipEngine)(nil)
	_ EngineTable        = (*sipEngine)(nil)
)

// sipDrops maps the inspector's drop reasons to the firewall's.
var sipDrops = map[sip.DropReason]firewall.DropReason{
	sip.DropMalformed:  firewall.DropSIPMalformed,
	sip.DropUnexpected: firewall.DropSIPUnexpected,
	sip.DropTableFull:  firewall.DropSIPTableFull,
}

// Inspect inspects one SIP message with the addresses its sender wrote,
// opens and closes the pinholes it asks for, and rewrites a UDP message's
// addresses for the side it goes to.
func (e *sipEngine) Inspect(x *firewall.Inspection) firewall.Verdict {
	e.mu.Lock()
	r := e.in.Inspect(x.Payload, x.Now)
	if e.emit != nil {
		for _, c := range r.Changes {
			e.emit(sipOp(c.Op), c.AppendBinary(nil))
		}
	}
	e.mu.Unlock()
	if !r.Pass() {
		x.Drop = sipDrops[r.Drop]
		return firewall.VerdictDrop
	}
	for _, p := range r.Close {
		x.Close(firewall.Pinhole(p))
	}
	for _, p := range r.Open {
		x.Expect(firewall.Pinhole(p))
	}
	if x.Orig.Proto == header.ProtocolUDP && len(x.Payload) > 4 {
		rewriteSIP(x)
	}
	return firewall.VerdictPass
}

// rewriteSIP rewrites the addresses of a message whose sender's side is
// translated (real to mapped, leaving the inside) or whose receiver's is
// (mapped to real, arriving from the outside); a message no mapping
// touches is left as it is.
func rewriteSIP(x *firewall.Inspection) {
	translate := func(ap netip.AddrPort) (netip.AddrPort, bool) {
		a := ap.Addr().As4()
		if m, p, ok := x.MapAddr(header.ProtocolUDP, a, ap.Port()); ok {
			return netip.AddrPortFrom(netip.AddrFrom4(m), p), true
		}
		if r, p, ok := x.UnmapAddr(header.ProtocolUDP, a, ap.Port()); ok {
			return netip.AddrPortFrom(netip.AddrFrom4(r), p), true
		}
		return ap, false
	}
	out, err := sip.Rewrite(x.Payload, translate)
	if err != nil || string(out) == string(x.Payload) {
		return
	}
	x.Replace(out)
}

func sipOp(op sip.Op) replicate.Op {
	if op == sip.OpDelete {
		return replicate.OpDelete
	}
	return replicate.OpUpsert
}

// Name implements EngineTable.
func (e *sipEngine) Name() string { return SIPTable }

// SetEmit implements EngineTable.
func (e *sipEngine) SetEmit(emit func(op replicate.Op, payload []byte)) {
	e.mu.Lock()
	e.emit = emit
	e.mu.Unlock()
}

// Snapshot implements EngineTable: sessions first, then transactions and
// pinholes.
func (e *sipEngine) Snapshot(emit func(payload []byte)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range []sip.Table{sip.TableSession, sip.TableTransaction, sip.TablePinhole} {
		for _, c := range e.in.Records(t) {
			emit(c.AppendBinary(nil))
		}
	}
}

// Apply implements EngineTable: the record's own op must agree with the
// stream's; a pinhole record opens or closes the pinhole in the firewall.
func (e *sipEngine) Apply(op replicate.Op, payload []byte) error {
	c, err := sip.ParseChange(payload)
	if err != nil {
		return err
	}
	if sipOp(c.Op) != op {
		return fmt.Errorf("sip record: op %v in a %v record", c.Op, op)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.in.Apply(c, time.Now()); err != nil {
		return err
	}
	if c.Table == sip.TablePinhole {
		if p := firewall.Pinhole(c.Pinhole.Pinhole); c.Op == sip.OpDelete {
			e.fw.ClosePinhole(p)
		} else {
			e.fw.OpenPinhole(p)
		}
	}
	return nil
}

// Reset implements EngineTable: the tables empty, and the pinholes they
// had opened close.
func (e *sipEngine) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.in.Pinholes() {
		e.fw.ClosePinhole(firewall.Pinhole(p.Pinhole))
	}
	for _, t := range []sip.Table{sip.TableSession, sip.TableTransaction, sip.TablePinhole} {
		e.in.Reset(t)
	}
}

// DigestLocked implements EngineTable: the sum of the three tables'
// digests.
func (e *sipEngine) DigestLocked(fn func(uint64)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var sum uint64
	for _, d := range e.in.Digests() {
		sum += d
	}
	fn(sum)
}

// expire removes idle sessions (the active only), closing their pinholes
// and emitting the deletions.
func (e *sipEngine) expire(now time.Time) {
	e.mu.Lock()
	r := e.in.Expire(now)
	if e.emit != nil {
		for _, c := range r.Changes {
			e.emit(sipOp(c.Op), c.AppendBinary(nil))
		}
	}
	e.mu.Unlock()
	for _, p := range r.Close {
		e.fw.ClosePinhole(firewall.Pinhole(p))
	}
}

// addSIP starts SIP inspection if the firewall config turns it on: the
// engine on UDP and TCP 5060 and, unless the lab says not to, its table.
func (u *Unit) addSIP() error {
	if u.cfg.Firewall.Inspect.SIP == nil {
		return nil
	}
	e := &sipEngine{in: sip.New(sip.Config{}), fw: u.fw}
	for _, proto := range []uint8{header.ProtocolUDP, header.ProtocolTCP} {
		if err := u.fw.RegisterInspector(proto, SIPPort, e); err != nil {
			return fmt.Errorf("inspect sip: %w", err)
		}
	}
	u.sip = e
	if slices.Contains(u.cfg.NoReplicate, SIPTable) {
		return nil
	}
	return u.AddEngineTable(e)
}

// SIP returns the unit's SIP inspector, nil when SIP is not inspected.
func (u *Unit) SIP() *sip.Inspector {
	if u.sip == nil {
		return nil
	}
	return u.sip.in
}

// SIPReplicated reports whether the unit replicates its SIP tables.
func (u *Unit) SIPReplicated() bool {
	return u.sip != nil && !slices.Contains(u.cfg.NoReplicate, SIPTable)
}

// sweepSIP expires idle SIP sessions while the unit is active.
func (u *Unit) sweepSIP(ctx context.Context) {
	t := time.NewTicker(sipSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if u.active.Load() {
				u.sip.expire(now)
			}
		}
	}
}
