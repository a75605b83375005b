package gtp

import (
	"fmt"
	"time"
)

// install commits rec, replacing any context with the same TID, and
// reports the change unless quiet (Apply). Callers hold mu.
func (in *Inspector) install(rec Record, now int64, quiet bool) *pdpContext {
	old := in.contexts[rec.TID]
	c := &pdpContext{rec: rec, lastSeen: now}
	if old != nil {
		in.unlink(old)
		in.digest -= old.hash
		c.signalUp, c.signalDown = old.signalUp, old.signalDown
		c.up.Store(old.up.Load())
		c.down.Store(old.down.Load())
		c.seenPackets = old.seenPackets
		if now == 0 {
			c.lastSeen = old.lastSeen
		}
	}
	c.hash = recordHash(rec)
	in.digest += c.hash
	in.contexts[rec.TID] = c
	in.link(c)
	if n := len(in.contexts); n > in.mostUsed {
		in.mostUsed = n
	}
	if !quiet && in.cfg.OnChange != nil {
		in.cfg.OnChange(Change{Op: OpUpsert, Record: rec})
	}
	return c
}

// remove deletes a committed context and reports it unless quiet.
// Callers hold mu.
func (in *Inspector) remove(c *pdpContext, quiet bool) {
	if in.contexts[c.rec.TID] != c {
		return
	}
	delete(in.contexts, c.rec.TID)
	in.unlink(c)
	in.digest -= c.hash
	if !quiet && in.cfg.OnChange != nil {
		in.cfg.OnChange(Change{Op: OpDelete, Record: c.rec})
	}
}

func (c *pdpContext) dataKeys() [2]teidKey {
	return [2]teidKey{{c.rec.SGSNData, c.rec.SGSNDataTEID}, {c.rec.GGSNData, c.rec.GGSNDataTEID}}
}

func (c *pdpContext) controlKeys() [2]teidKey {
	return [2]teidKey{{c.rec.SGSNControl, c.rec.SGSNControlTEID}, {c.rec.GGSNControl, c.rec.GGSNControlTEID}}
}

func (in *Inspector) link(c *pdpContext) {
	for _, k := range c.dataKeys() {
		in.data[k] = c
	}
	for _, k := range c.controlKeys() {
		ref := in.control[k]
		if ref.imsi != c.rec.TID.IMSI {
			ref = controlRef{imsi: c.rec.TID.IMSI}
		}
		ref.refs++
		in.control[k] = ref
	}
}

func (in *Inspector) unlink(c *pdpContext) {
	for _, k := range c.dataKeys() {
		if in.data[k] == c {
			delete(in.data, k)
		}
	}
	for _, k := range c.controlKeys() {
		ref, ok := in.control[k]
		if !ok || ref.imsi != c.rec.TID.IMSI {
			continue
		}
		if ref.refs--; ref.refs <= 0 {
			delete(in.control, k)
		} else {
			in.control[k] = ref
		}
	}
}

// Apply installs a change received from the active unit, as the standby
// does: an upsert commits or replaces its context, a delete removes it
// (deleting an unknown context is not an error, so that a record applied
// twice does no harm). It does not call OnChange. Contexts installed this
// way start their idle timer at the first Expire sweep that sees them, so
// that a unit taking over does not age them by the time they spent on the
// standby.
func (in *Inspector) Apply(c Change) error {
	if c.Op != OpUpsert && c.Op != OpDelete {
		return fmt.Errorf("%w %d", ErrChangeOp, c.Op)
	}
	if c.Record.TID.NSAPI > maxNSAPI {
		return fmt.Errorf("%w: nsapi %d", ErrChangeField, c.Record.TID.NSAPI)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if c.Op == OpDelete {
		if old := in.contexts[c.Record.TID]; old != nil {
			in.remove(old, true)
		}
		return nil
	}
	in.install(c.Record, 0, true)
	return nil
}

// Expire sweeps the database at now: requests unanswered for the request
// timeout are forgotten (a pending Create with them), contexts without
// G-PDUs or signalling for the pdp-context timeout are removed (reported
// through OnChange, as the ASA tears them down), and GSNs not heard from
// for the gsn timeout are forgotten. The standby should not sweep: its
// contexts go when the active's deletes arrive.
func (in *Inspector) Expire(now time.Time) {
	t := now.UnixNano()
	in.mu.Lock()
	defer in.mu.Unlock()
	for k, r := range in.pending {
		if t >= r.deadline {
			in.dropRequest(k, r)
		}
	}
	idle := in.cfg.PDPContextTimeout.Nanoseconds()
	for _, c := range in.contexts {
		if n := c.up.Load() + c.down.Load(); n != c.seenPackets || c.lastSeen == 0 {
			c.seenPackets, c.lastSeen = n, t
			continue
		}
		if t-c.lastSeen >= idle {
			in.remove(c, false)
		}
	}
	gsnIdle := in.cfg.GSNTimeout.Nanoseconds()
	for a, g := range in.gsns {
		if t-g.lastSeen >= gsnIdle {
			delete(in.gsns, a)
		}
	}
}

// dropRequest forgets an outstanding request. Callers hold mu.
func (in *Inspector) dropRequest(k reqKey, r *request) {
	delete(in.pending, k)
	if r.msgType == msgCreateRequest {
		in.pendingCreates--
	}
}

// touchGSN notes signalling from a GSN. Callers hold mu.
func (in *Inspector) touchGSN(a [4]byte, now int64) {
	g := in.gsns[a]
	if g == nil {
		g = &gsnEntry{}
		in.gsns[a] = g
	}
	g.lastSeen = now
}

// GSNs returns the number of GSNs heard from within the gsn timeout.
func (in *Inspector) GSNs() int {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return len(in.gsns)
}
