package unit

// The CTIQBE engine in the data plane: package ctiqbe's engine (falab's
// lab model of CTIQBE, not wire-compatible) bound to TCP 2748 through the
// firewall's inspection hook, its drops counted under the firewall's
// ctiqbe-* reasons, its media pinholes opened and closed in the firewall.
//
// It registers no engine table: as on an ASA, CTIQBE's session table is
// not replicated. The TCP connection and the media connections are
// ordinary connections and are replicated; on the new active after a
// failover the engine has no session record for the connection, so its
// next message (the hang-up) is dropped as ctiqbe-no-session. That is the
// mission's SoftPhone story.

import (
	"context"
	"fmt"
	"time"

	"github.com/falab/falab/ctiqbe"
	"github.com/falab/falab/firewall"
	"github.com/falab/falab/firewall/header"
)

// CTIQBEPort is the CallManager's CTIQBE port.
const CTIQBEPort = 2748

// ctiqbeEngine adapts a ctiqbe.Engine to the firewall's Inspector.
type ctiqbeEngine struct {
	eng *ctiqbe.Engine
	fw  *firewall.Firewall
}

var _ firewall.Inspector = ctiqbeEngine{}

// ctiqbeDrops maps the engine's drop reasons to the firewall's.
var ctiqbeDrops = map[ctiqbe.DropReason]firewall.DropReason{
	ctiqbe.ReasonNoSession:  firewall.DropCTIQBENoSession,
	ctiqbe.ReasonMalformed:  firewall.DropCTIQBEMalformed,
	ctiqbe.ReasonOutOfOrder: firewall.DropCTIQBEOutOfOrder,
	ctiqbe.ReasonTableFull:  firewall.DropCTIQBETableFull,
}

// Inspect hands one segment to the engine with the phone's and the
// CallManager's addresses as the phone wrote them.
func (e ctiqbeEngine) Inspect(x *firewall.Inspection) firewall.Verdict {
	if len(x.Payload) == 0 {
		return firewall.VerdictPass
	}
	p := ctiqbe.Packet{
		Conn:      ctiqbe.ConnKey{Phone: x.Orig.Src, PhonePort: x.Orig.SrcPort, Manager: x.Orig.Dst, ManagerPort: x.Orig.DstPort},
		FromPhone: x.FromInitiator, Seq: x.Seq, Payload: x.Payload, Now: x.Now,
	}
	var r ctiqbe.Result
	e.eng.Inspect(&p, &r)
	if r.Drop {
		x.Drop = ctiqbeDrops[r.Reason]
		return firewall.VerdictDrop
	}
	for _, ph := range r.Close {
		x.Close(firewall.Pinhole(ph))
	}
	for _, ph := range r.Open {
		x.Expect(firewall.Pinhole(ph))
	}
	return firewall.VerdictPass
}

// addCTIQBE starts CTIQBE inspection if the firewall config turns it on.
func (u *Unit) addCTIQBE() error {
	if u.cfg.Firewall.Inspect.CTIQBE == nil {
		return nil
	}
	e := ctiqbeEngine{eng: ctiqbe.NewEngine(ctiqbe.Config{}), fw: u.fw}
	if err := u.fw.RegisterInspector(header.ProtocolTCP, CTIQBEPort, e); err != nil {
		return fmt.Errorf("inspect ctiqbe: %w", err)
	}
	u.ctiqbe = e.eng
	return nil
}

// CTIQBE returns the unit's CTIQBE engine, nil when CTIQBE is not inspected.
func (u *Unit) CTIQBE() *ctiqbe.Engine { return u.ctiqbe }

// sweepCTIQBE expires idle CTIQBE connections and closes their pinholes.
// Every unit sweeps its own table: it is not replicated.
func (u *Unit) sweepCTIQBE(ctx context.Context) {
	t := time.NewTicker(sipSweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, p := range u.ctiqbe.Expire(now) {
				u.fw.ClosePinhole(firewall.Pinhole(p))
			}
		}
	}
}
