package sip

import "time"

// Inspect inspects one UDP or TCP payload of a SIP control connection,
// seen at now, and returns the verdict, the pinholes to open and close and
// the replication records. Every check is made before any table changes,
// so a dropped message changes no state. An empty payload (a bare TCP
// segment) or a CRLF keepalive (RFC 5626 §4.4.1) passes untouched.
func (in *Inspector) Inspect(payload []byte, now time.Time) Result {
	if isKeepalive(payload) {
		return Result{}
	}
	var m Message
	err := Parse(payload, &m)
	in.mu.Lock()
	defer in.mu.Unlock()
	in.stats.Packets++
	var r Result
	switch {
	case err != nil || len(m.FromTag) == 0:
		// RFC 3261 §8.1.1.3: every request carries a From tag, and a
		// response copies it; without one there is no dialog to track.
		r = Result{Drop: DropMalformed}
	case m.Request:
		in.stats.Requests++
		r = in.request(&m, now.UnixNano())
	default:
		in.stats.Responses++
		r = in.response(&m, now.UnixNano())
	}
	if r.Drop != dropNone {
		in.stats.Drops[r.Drop]++
	}
	if n := len(in.sessions); n > in.stats.MostInUse {
		in.stats.MostInUse = n
	}
	return r
}

func isKeepalive(b []byte) bool {
	return len(b) == 0 || string(b) == "\r\n" || string(b) == "\r\n\r\n"
}

var (
	unexpected = Result{Drop: DropUnexpected}
	tableFull  = Result{Drop: DropTableFull}
)

func (in *Inspector) request(m *Message, now int64) Result {
	s := in.sessions[string(m.CallID)]
	switch string(m.Method) {
	case "ACK":
		return in.ack(m, s, now)
	case "INVITE":
		return in.invite(m, s, now)
	case "BYE":
		return in.bye(m, s, now)
	case "CANCEL":
		return in.cancel(m, s, now)
	}
	return in.otherRequest(m, s, now)
}

// retransmission reports whether request m repeats a known transaction
// (and refreshes it); a known branch of another call is not one.
func (in *Inspector) retransmission(m *Message, s *session, now int64) (known, ok bool) {
	tx := in.txs[txKey{string(m.Branch), string(m.CSeqMethod)}]
	if tx == nil {
		return false, true
	}
	if tx.rec.CallID != string(m.CallID) || tx.rec.CSeq != m.CSeq {
		return true, false
	}
	tx.lastSeen = now
	if s != nil {
		s.lastSeen = now
	}
	return true, true
}

// inDialog reports whether m's tags belong to s's dialog, in either
// direction.
func (s *session) inDialog(m *Message) bool {
	from, to := string(m.FromTag), string(m.ToTag)
	if from == s.rec.CallerTag {
		return s.rec.CalleeTag == "" || to == s.rec.CalleeTag
	}
	return s.rec.CalleeTag != "" && from == s.rec.CalleeTag && to == s.rec.CallerTag
}

// sideOf returns the side that sent request m (for a response: the side
// that sent its request).
func (s *session) sideOf(m *Message) Side {
	if string(m.FromTag) == s.rec.CallerTag {
		return SideCaller
	}
	return SideCallee
}

func (in *Inspector) invite(m *Message, s *session, now int64) Result {
	if known, ok := in.retransmission(m, s, now); known {
		return okOr(ok)
	}
	side := SideCaller
	restart := false
	switch {
	case s == nil:
		if len(m.ToTag) != 0 {
			return unexpected // a re-INVITE of a dialog this unit does not know
		}
		if len(in.sessions) >= in.cfg.MaxSessions {
			return tableFull
		}
	case s.rec.State == StateEnded && len(m.ToTag) == 0 && string(m.FromTag) == s.rec.CallerTag:
		restart = true // the INVITE again after a refusal, as after a 401 or 407 challenge
	case s.rec.State >= StateTerminating || !s.inDialog(m):
		return unexpected
	default:
		side = s.sideOf(m)
	}
	if len(in.txs) >= in.cfg.MaxTransactions {
		return tableFull
	}
	callID := string(m.CallID)
	plan, ok := in.planMedia(callID, side, m)
	if !ok {
		return tableFull
	}
	var r Result
	if s == nil || restart {
		if s == nil {
			s = &session{rec: Session{CallID: callID, CallerTag: string(m.FromTag)}}
			in.sessions[callID] = s
			in.stats.Sessions++
		}
		s.rec.State, s.rec.CalleeTag = StateInviteSent, ""
		r.Changes = append(r.Changes, Change{Table: TableSession, Op: OpUpsert, Session: s.rec})
	}
	s.lastSeen = now
	in.addTransaction(m, now, &r)
	in.commitMedia(callID, side, plan, &r)
	return r
}

func okOr(ok bool) Result {
	if ok {
		return Result{}
	}
	return unexpected
}

func (in *Inspector) addTransaction(m *Message, now int64, r *Result) {
	rec := Transaction{Branch: string(m.Branch), Method: string(m.CSeqMethod), CSeq: m.CSeq, CallID: string(m.CallID)}
	in.txs[txKey{rec.Branch, rec.Method}] = &transaction{rec: rec, lastSeen: now}
	r.Changes = append(r.Changes, Change{Table: TableTransaction, Op: OpUpsert, Transaction: rec})
}

func (in *Inspector) deleteTransaction(k txKey, r *Result) {
	tx := in.txs[k]
	delete(in.txs, k)
	r.Changes = append(r.Changes, Change{Table: TableTransaction, Op: OpDelete, Transaction: tx.rec})
}

// ack handles an ACK. One for a non-2xx final response shares the
// INVITE's branch and passes on that transaction; one for a 2xx is its own
// transaction (no response), needs the confirmed dialog, and may carry the
// SDP answer to an offerless INVITE. Neither removes the INVITE
// transaction: it lingers (TransactionLinger) so that a final response
// retransmitted because an ACK was lost beyond the firewall still passes.
func (in *Inspector) ack(m *Message, s *session, now int64) Result {
	callID := string(m.CallID)
	if tx := in.txs[txKey{string(m.Branch), "INVITE"}]; tx != nil {
		if tx.rec.CallID != callID || tx.rec.CSeq != m.CSeq || !tx.rec.Completed {
			return unexpected
		}
		tx.lastSeen = now
		return Result{}
	}
	if s == nil || !s.inDialog(m) || s.rec.State != StateConfirmed {
		return unexpected
	}
	side := s.sideOf(m)
	plan, ok := in.planMedia(callID, side, m)
	if !ok {
		return tableFull
	}
	var r Result
	s.lastSeen = now
	in.commitMedia(callID, side, plan, &r)
	return r
}

func (in *Inspector) bye(m *Message, s *session, now int64) Result {
	if known, ok := in.retransmission(m, s, now); known {
		return okOr(ok)
	}
	if s == nil || len(m.ToTag) == 0 || !s.inDialog(m) || s.rec.State >= StateTerminating {
		return unexpected
	}
	if len(in.txs) >= in.cfg.MaxTransactions {
		return tableFull
	}
	var r Result
	s.rec.State = StateTerminating
	s.lastSeen = now
	r.Changes = append(r.Changes, Change{Table: TableSession, Op: OpUpsert, Session: s.rec})
	in.addTransaction(m, now, &r)
	return r
}

// cancel admits a CANCEL of a pending INVITE: same branch, from the
// caller. The INVITE's 487 then ends the session.
func (in *Inspector) cancel(m *Message, s *session, now int64) Result {
	if known, ok := in.retransmission(m, s, now); known {
		return okOr(ok)
	}
	if s == nil || s.rec.State > StateEarly || string(m.FromTag) != s.rec.CallerTag {
		return unexpected
	}
	inv := in.txs[txKey{string(m.Branch), "INVITE"}]
	if inv == nil || inv.rec.CallID != s.rec.CallID || inv.rec.CSeq != m.CSeq || inv.rec.Completed {
		return unexpected
	}
	if len(in.txs) >= in.cfg.MaxTransactions {
		return tableFull
	}
	var r Result
	s.lastSeen = now
	in.addTransaction(m, now, &r)
	return r
}

// otherRequest admits any other method: out of a dialog (OPTIONS,
// REGISTER) or inside one (INFO, UPDATE, whose SDP updates the media).
func (in *Inspector) otherRequest(m *Message, s *session, now int64) Result {
	if known, ok := in.retransmission(m, s, now); known {
		return okOr(ok)
	}
	if s != nil && (!s.inDialog(m) || s.rec.State == StateEnded) {
		return unexpected
	}
	if len(in.txs) >= in.cfg.MaxTransactions {
		return tableFull
	}
	var plan mediaPlan
	if s != nil {
		var ok bool
		if plan, ok = in.planMedia(s.rec.CallID, s.sideOf(m), m); !ok {
			return tableFull
		}
	}
	var r Result
	in.addTransaction(m, now, &r)
	if s != nil {
		s.lastSeen = now
		in.commitMedia(s.rec.CallID, s.sideOf(m), plan, &r)
	}
	return r
}

func (in *Inspector) response(m *Message, now int64) Result {
	k := txKey{string(m.Branch), string(m.CSeqMethod)}
	tx := in.txs[k]
	if tx == nil || tx.rec.CallID != string(m.CallID) || tx.rec.CSeq != m.CSeq {
		return unexpected
	}
	s := in.sessions[tx.rec.CallID]
	if s != nil && string(m.FromTag) != s.rec.CallerTag && string(m.FromTag) != s.rec.CalleeTag {
		return unexpected
	}
	tx.lastSeen = now
	if s != nil {
		s.lastSeen = now
	}
	if tx.rec.Completed {
		return Result{} // a retransmitted final response
	}
	var r Result
	switch {
	case tx.rec.Method == "INVITE" && s != nil:
		return in.inviteResponse(m, tx, s)
	case m.Status < 200:
		return r
	case tx.rec.Method == "BYE" && s != nil:
		in.complete(tx, &r)
		in.endSession(s, &r)
	default:
		in.complete(tx, &r)
	}
	return r
}

func (in *Inspector) complete(tx *transaction, r *Result) {
	tx.rec.Completed = true
	r.Changes = append(r.Changes, Change{Table: TableTransaction, Op: OpUpsert, Transaction: tx.rec})
}

// inviteResponse moves the session on a response to its INVITE (or
// re-INVITE) and opens the answer's media.
func (in *Inspector) inviteResponse(m *Message, tx *transaction, s *session) Result {
	side := SideCallee
	if s.sideOf(m) == SideCallee {
		side = SideCaller // the caller answers the callee's re-INVITE
	}
	var plan mediaPlan
	if m.Status < 300 {
		var ok bool
		if plan, ok = in.planMedia(s.rec.CallID, side, m); !ok {
			return tableFull
		}
	}
	var r Result
	changed := false
	if s.rec.CalleeTag == "" && len(m.ToTag) != 0 && s.rec.State <= StateEarly && (m.Status > 100) {
		s.rec.CalleeTag = string(m.ToTag)
		changed = true
	}
	switch {
	case m.Status < 200:
		if m.Status > 100 && s.rec.State == StateInviteSent && s.rec.CalleeTag != "" {
			s.rec.State, changed = StateEarly, true
		}
	case m.Status < 300:
		if s.rec.State < StateConfirmed {
			s.rec.State, changed = StateConfirmed, true
		}
	}
	if changed {
		r.Changes = append(r.Changes, Change{Table: TableSession, Op: OpUpsert, Session: s.rec})
	}
	if m.Status >= 200 {
		in.complete(tx, &r)
	}
	if m.Status >= 300 && s.rec.State < StateConfirmed {
		in.endSession(s, &r) // refused or cancelled (487); a refused re-INVITE keeps the dialog
		return r
	}
	in.commitMedia(s.rec.CallID, side, plan, &r)
	return r
}

// endSession marks s ended and closes its pinholes; the session itself
// lingers for sip-disconnect so that retransmissions still match.
func (in *Inspector) endSession(s *session, r *Result) {
	s.rec.State = StateEnded
	r.Changes = append(r.Changes, Change{Table: TableSession, Op: OpUpsert, Session: s.rec})
	in.closePinholes(s.rec.CallID, r)
}

func (in *Inspector) closePinholes(callID string, r *Result) {
	for k, p := range in.pins {
		if p.CallID == callID {
			in.deletePinhole(k, r)
		}
	}
}

func (in *Inspector) deletePinhole(k Pinhole, r *Result) {
	p := in.pins[k]
	delete(in.pins, k)
	r.Close = append(r.Close, p.Pinhole)
	r.Changes = append(r.Changes, Change{Table: TablePinhole, Op: OpDelete, Pinhole: *p})
}

// mediaPlan is the pinholes one SDP body adds and removes for its side.
type mediaPlan struct {
	open, close []Pinhole
}

// planMedia works out, without changing anything, which pinholes m's SDP
// asks for: RTP at each audio or video m= port and RTCP at port+1, towards
// the c= address that applies. The side's pinholes not asked for again
// close (a re-INVITE moved the media). ok is false when the table would
// overflow.
func (in *Inspector) planMedia(callID string, side Side, m *Message) (plan mediaPlan, ok bool) {
	if !m.SDPBody {
		return plan, true
	}
	var want [2 * MaxMedia]Pinhole
	n := 0
	sdp := &m.SDP
	for i := range sdp.NumMedia {
		md := &sdp.Media[i]
		a := sdp.Address(i)
		if md.Kind == MediaOther || md.Port == 0 || !a.IsIP || a.IP == ([4]byte{}) {
			continue // port 0 rejects a stream; 0.0.0.0 puts it on hold (RFC 3264 §8.4)
		}
		want[n] = Pinhole{Proto: ProtoUDP, Dst: a.IP, DstPort: md.Port, Timeout: in.cfg.MediaTimeout}
		n++
		if md.Port < 65535 {
			want[n] = Pinhole{Proto: ProtoUDP, Dst: a.IP, DstPort: md.Port + 1, Timeout: in.cfg.MediaTimeout}
			n++
		}
	}
	wanted := want[:n]
	for k, p := range in.pins {
		if p.CallID == callID && p.Side == side && !containsKey(wanted, k) {
			plan.close = append(plan.close, k)
		}
	}
	for _, p := range wanted {
		if _, taken := in.pins[p.key()]; !taken && !containsKey(plan.open, p.key()) {
			plan.open = append(plan.open, p)
		}
	}
	return plan, len(in.pins)-len(plan.close)+len(plan.open) <= in.cfg.MaxPinholes
}

func containsKey(ps []Pinhole, k Pinhole) bool {
	for _, p := range ps {
		if p.key() == k {
			return true
		}
	}
	return false
}

func (in *Inspector) commitMedia(callID string, side Side, plan mediaPlan, r *Result) {
	for _, k := range plan.close {
		in.deletePinhole(k, r)
	}
	for _, p := range plan.open {
		rec := &PinholeRecord{CallID: callID, Side: side, Pinhole: p}
		in.pins[p.key()] = rec
		in.stats.Pinholes++
		r.Open = append(r.Open, p)
		r.Changes = append(r.Changes, Change{Table: TablePinhole, Op: OpUpsert, Pinhole: *rec})
	}
}

// Expire removes what has been idle too long at now: sessions by their
// state's timeout (sip-invite before the final response, sip when
// established, sip-disconnect once BYE is seen), with their pinholes and
// transactions; transactions awaiting a response after sip-invite; and
// completed ones after TransactionLinger. Only the active unit calls it;
// the standby learns the removals from the records.
func (in *Inspector) Expire(now time.Time) Result {
	t := now.UnixNano()
	in.mu.Lock()
	defer in.mu.Unlock()
	var r Result
	for id, s := range in.sessions {
		limit := in.cfg.SIPTimeout
		switch s.rec.State {
		case StateInviteSent, StateEarly:
			limit = in.cfg.InviteTimeout
		case StateTerminating, StateEnded:
			limit = in.cfg.DisconnectTimeout
		}
		if t-s.lastSeen < int64(limit) {
			continue
		}
		in.closePinholes(id, &r)
		delete(in.sessions, id)
		in.stats.Expired++
		r.Changes = append(r.Changes, Change{Table: TableSession, Op: OpDelete, Session: s.rec})
	}
	for k, tx := range in.txs {
		limit := in.cfg.InviteTimeout
		if tx.rec.Completed {
			limit = in.cfg.TransactionLinger
		}
		if t-tx.lastSeen >= int64(limit) || in.sessions[tx.rec.CallID] == nil && isDialogMethod(tx.rec.Method) {
			in.deleteTransaction(k, &r)
		}
	}
	for k, p := range in.pins {
		if in.sessions[p.CallID] == nil {
			in.deletePinhole(k, &r)
		}
	}
	return r
}

// isDialogMethod reports whether a transaction of method belongs to a
// session, so that it goes when its session goes.
func isDialogMethod(method string) bool {
	return method == "INVITE" || method == "BYE" || method == "CANCEL" || method == "ACK"
}
