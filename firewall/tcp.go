package firewall

import (
	"math/rand/v2"

	"github.com/falab/falab/firewall/header"
)

// TCP window tracking, after Linux conntrack's tcp_in_window and Guido van
// Rooij's "Real stateful TCP packet filtering in IP Filter" (2000).
//
// Each direction of a connection keeps the highest sequence number it sent
// (End), the highest the peer allows it to send (MaxEnd: the peer's ack
// plus its window), its largest window (MaxWin), its highest ack (MaxAck)
// and its window scale. A segment from S to R is accepted when
//
//	I   seq <= S.MaxEnd                    it starts inside R's window
//	II  end >  S.End - R.MaxWin            it is not older than one window
//	III ack <= R.End                       it acks nothing R has not sent
//	IV  ack >  R.End - max(S.MaxWin, 66000) nor lags by more than a window
//
// An RST must moreover carry exactly the sequence number the receiver
// expects (RFC 5961 3.2): S.End or R's highest ack. A real peer whose
// RST is in the window but not exact gets a challenge ACK from the host
// and resends it exactly; a blind attacker has to guess 32 bits. A
// segment that fails is dropped, counted and changes nothing.
//
// Sequence numbers are tracked in each host's own numbering: the
// responder's acks are taken back by the randomization offset before they
// are checked.
//
// Replication. The windows travel in the connection's records, but records
// are only made on state transitions (handshake, FINs, RST): replicating
// every window advance would multiply the replication traffic by the data
// packet rate. A standby's windows therefore lag the stream, by gigabytes
// on a long transfer. A unit that adopts a connection from a record marks
// each seen direction for pickup (conn.pickup): the first segment of that
// direction is accepted without the sequence checks and re-seeds End,
// MaxEnd and MaxWin from itself (conntrack's mid-stream pickup), after
// which the direction is checked strictly again. The acks of that first
// segment are still checked if the other direction is already re-seeded;
// an RST on a direction in pickup is accepted only if it equals the other
// direction's fresh ack, or if neither direction has been re-seeded yet
// (nothing is known then). This leaves, for the moments after a takeover,
// the same opening as conntrack's liberal pickup, in exchange for keeping
// every in-flight stream alive.

const (
	// maxWindowScale is the largest window scale shift (RFC 7323 2.3).
	maxWindowScale = 14
	// minAckWindow is conntrack's MAXACKWINDOW floor: how far an ack may
	// lag behind what the other side sent.
	minAckWindow = 66000
)

const (
	tcpSYN = header.TCPFlagSYN
	tcpFIN = header.TCPFlagFIN
	tcpRST = header.TCPFlagRST
	tcpACK = header.TCPFlagACK
)

func seqBefore(a, b uint32) bool { return int32(a-b) < 0 }

// seqWithin reports whether a lies in [lo, hi] in sequence space.
func seqWithin(a, lo, hi uint32) bool { return a-lo <= hi-lo }

// pickupRSTSlack is how far an RST may miss the record's windows on a
// connection adopted at takeover that has carried no segment since: the
// windows lag by what was sent after the last record. 4 MiB leaves a blind
// attacker about one chance in a thousand per guess.
const pickupRSTSlack = 4 << 20

func seqAfter(a, b uint32) bool { return int32(a-b) > 0 }

// finFlag returns the close flag of direction dir.
func finFlag(dir int) uint8 {
	if dir == dirOrig {
		return CloseFinOrig
	}
	return CloseFinReply
}

// randomSeqOffset returns a new connection's sequence offset, never zero
// (zero means no randomization). math/rand/v2's global source is a
// per-thread ChaCha8 stream seeded from the OS: unpredictable to a
// remote host, and cheap enough to draw once per SYN.
func randomSeqOffset() uint32 {
	for {
		if v := rand.Uint32(); v != 0 {
			return v
		}
	}
}

// tcpSeg is what tracking reads from one segment.
type tcpSeg struct {
	seq, ack, end, win uint32
	flags              uint8
}

// trackTCP checks the current TCP segment (w.p) of c from direction dir
// against c's windows and state and, if it passes, advances them and
// records any state transition. It reports whether the connection ends
// once the segment is forwarded (a valid RST), or why the segment must be
// dropped, in which case nothing changed.
func (w *worker) trackTCP(c *conn, dir int) (closeAfter bool, r DropReason) {
	f := w.f
	t := header.TCP(w.p.l4)
	s := tcpSeg{seq: t.SequenceNumber(), ack: t.AckNumber(), win: uint32(t.WindowSize()), flags: w.p.tcpFlags}
	if dir == dirReply {
		s.ack -= c.seqOff // the responder acks the randomized numbers
	}
	s.end = s.seq + uint32(len(t)-t.DataOffset())
	if s.flags&tcpSYN != 0 {
		s.end++
	}
	if s.flags&tcpFIN != 0 {
		s.end++
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead() {
		return false, dropNone
	}
	st, cf := c.tcpState()
	if s.flags&tcpRST != 0 {
		if r := c.checkRST(dir, &s); r != dropNone {
			return false, r
		}
		return true, dropNone
	}
	S, R := &c.win[dir], &c.win[1-dir]
	switch {
	case c.pickup(dir):
		if r := c.pickupSegment(dir, &s); r != dropNone {
			return false, r
		}
	case S.Flags&TCPWinSeen == 0:
		if s.flags&tcpSYN == 0 {
			return false, DropTCPNotSyn
		}
		initWindow(S, R, &s, t)
		if s.flags&tcpACK == 0 {
			// The initiator's SYN, or the responder's own SYN in a
			// simultaneous open: nothing to ack yet.
			f.tcpTransition(c, dir, &s, st, cf)
			return false, dropNone
		}
	case s.flags&(tcpSYN|tcpACK) == tcpSYN && dir == dirOrig && st == TCPStateSynSent && seqAfter(s.end, S.End):
		// A new SYN with a later ISN: the initiator started over
		// (conntrack does the same); its old SYN was never answered.
		initWindow(S, R, &s, t)
		f.tcpTransition(c, dir, &s, st, cf)
		return false, dropNone
	default:
		if r := c.inWindow(dir, &s); r != dropNone {
			return false, r
		}
	}
	c.advance(dir, &s)
	f.tcpTransition(c, dir, &s, st, cf)
	return false, dropNone
}

// initWindow starts tracking S from its SYN.
func initWindow(S, R *TCPWindow, s *tcpSeg, t header.TCP) {
	*S = TCPWindow{End: s.end, MaxEnd: s.end, MaxWin: max(s.win, 1), Flags: TCPWinSeen}
	for opts := t.Options(); ; {
		kind, opt, rest, ok := header.NextOption(opts)
		if !ok {
			break
		}
		switch {
		case kind == header.TCPOptionWScale && len(opt) == 3:
			S.Scale = min(opt[2], maxWindowScale)
			S.Flags |= TCPWinScale
		case kind == header.TCPOptionSACKPerm && len(opt) == 2:
			S.Flags |= TCPWinSACKPerm
		}
		opts = rest
	}
	if R.Flags&TCPWinSeen != 0 && S.Flags&R.Flags&TCPWinScale == 0 {
		// Scaling is on only if both SYNs carried the option (RFC 7323 2.2).
		S.Scale, R.Scale = 0, 0
	}
}

// inWindow applies checks I to IV (see the top of the file) to a segment
// from dir.
func (c *conn) inWindow(dir int, s *tcpSeg) DropReason {
	S, R := &c.win[dir], &c.win[1-dir]
	if !seqBefore(s.seq, S.MaxEnd+1) || R.MaxWin != 0 && !seqAfter(s.end, S.End-R.MaxWin-1) {
		return DropTCPSeqPastWindow
	}
	return c.ackOK(dir, s)
}

// ackOK applies checks III and IV to the ack of a segment from dir, when
// the other side's numbering is known (seen and not awaiting pickup).
func (c *conn) ackOK(dir int, s *tcpSeg) DropReason {
	S, R := &c.win[dir], &c.win[1-dir]
	if s.flags&tcpACK == 0 || R.Flags&TCPWinSeen == 0 || c.pickup(1-dir) {
		return dropNone
	}
	if !seqBefore(s.ack, R.End+1) || !seqAfter(s.ack, R.End-max(S.MaxWin, minAckWindow)-1) {
		return DropTCPInvalidAck
	}
	return dropNone
}

// pickupSegment takes a segment from direction dir of an adopted
// connection (see the top of the file). A segment that passes the strict
// checks ends the pickup of its direction. One that does not is still
// accepted, and widens the windows to cover it: after a takeover the
// recorded windows lag by whatever was sent since the last record, and
// what arrives first is often a retransmission below data the hosts have
// already exchanged through the old active (a retransmitted segment sets
// End low, then the peer's ack of the later data must not be refused as an
// ack of unsent data: the freeze e2e runs stalled 15 of 20 streams on
// exactly that). So End and the peer's End only ever grow here.
func (c *conn) pickupSegment(dir int, s *tcpSeg) DropReason {
	S, R := &c.win[dir], &c.win[1-dir]
	if S.Flags&TCPWinSeen != 0 && c.inWindow(dir, s) == dropNone {
		c.setPickup(dir, false)
		return dropNone
	}
	win := s.win
	if s.flags&tcpSYN == 0 {
		win <<= S.Scale
	}
	if S.Flags&TCPWinSeen == 0 || seqAfter(s.end, S.End) {
		S.End = s.end
	}
	S.Flags |= TCPWinSeen
	S.MaxWin = max(S.MaxWin, win, 1)
	if end := S.End + max(R.MaxWin, S.MaxWin); seqAfter(end, S.MaxEnd) {
		S.MaxEnd = end
	}
	S.Flags &^= TCPWinMaxAck // only acks seen from now on count for RSTs
	if s.flags&tcpACK != 0 && (R.Flags&TCPWinSeen == 0 || seqAfter(s.ack, R.End)) {
		// The peer has sent at least what this side acknowledges.
		R.End = s.ack
		R.Flags |= TCPWinSeen
		if seqAfter(R.End, R.MaxEnd) {
			R.MaxEnd = R.End
		}
	}
	return dropNone
}

// checkRST decides whether an RST from dir may end the connection.
func (c *conn) checkRST(dir int, s *tcpSeg) DropReason {
	S, R := &c.win[dir], &c.win[1-dir]
	switch {
	case c.pickup(dir) && c.pickup(1-dir):
		// Adopted, and no segment seen since: only the record's windows
		// are known. For an idle connection they are exact; for a busy
		// one they lag by what was sent since the last record. A blind
		// RST must still hit near them (within pickupRSTSlack, a few
		// MiB); accepting any RST here let a forged one delete any
		// connection that had stayed idle since a takeover (found by
		// the hostile e2e test).
		if S.Flags&TCPWinSeen == 0 || seqWithin(s.seq, S.End-pickupRSTSlack, S.MaxEnd+pickupRSTSlack) {
			return dropNone
		}
		return DropTCPSeqPastWindow
	case c.pickup(dir):
		if R.Flags&TCPWinMaxAck != 0 && s.seq == R.MaxAck {
			return dropNone
		}
		return DropTCPRSTNotExact
	case S.Flags&TCPWinSeen == 0:
		// The answer to a SYN (RFC 9293 3.10.7.3): it must ack the SYN.
		if s.flags&tcpACK != 0 && R.Flags&TCPWinSeen != 0 && s.ack == R.End {
			return dropNone
		}
		return DropTCPInvalidAck
	}
	if s.seq == S.End || R.Flags&TCPWinMaxAck != 0 && s.seq == R.MaxAck {
		return dropNone
	}
	if seqBefore(s.seq, S.MaxEnd+1) && (R.MaxWin == 0 || seqAfter(s.seq, S.End-R.MaxWin-1)) {
		return DropTCPRSTNotExact
	}
	return DropTCPSeqPastWindow
}

// advance updates both directions' windows for an accepted segment from
// dir (conntrack's tcp_in_window update, without SACK).
func (c *conn) advance(dir int, s *tcpSeg) {
	S, R := &c.win[dir], &c.win[1-dir]
	win := s.win
	if s.flags&tcpSYN == 0 {
		win <<= S.Scale
	}
	S.MaxWin = max(S.MaxWin, win)
	if seqAfter(s.end, S.End) {
		S.End = s.end
	}
	ack := R.End
	if s.flags&tcpACK != 0 {
		ack = s.ack
		if S.Flags&TCPWinMaxAck == 0 || seqAfter(ack, S.MaxAck) {
			S.MaxAck = ack
			S.Flags |= TCPWinMaxAck
		}
	}
	if R.MaxWin != 0 && seqAfter(s.end, S.MaxEnd) {
		R.MaxWin += s.end - S.MaxEnd
	}
	if seqAfter(ack+win, R.MaxEnd-1) {
		R.MaxEnd = ack + win
		if win == 0 {
			R.MaxEnd++ // room for a zero window probe
		}
	}
}

// tcpTransition moves c (locked) to the state an accepted segment from
// dir leads to: the handshake completes when both SYNs are acknowledged
// (so a simultaneous open, SYN from both sides, completes too), a FIN
// half-closes, and when both FINs are acknowledged the connection enters
// TIME_WAIT, where it stays for Timeouts.TimeWait so that the last ACK and
// retransmitted FINs still pass; it is removed by expiry, not by a packet.
func (f *Firewall) tcpTransition(c *conn, dir int, s *tcpSeg, st TCPState, cf uint8) {
	R := &c.win[1-dir]
	if s.flags&tcpACK != 0 && R.Flags&TCPWinSeen != 0 && s.ack == R.End {
		if st < TCPStateEstablished {
			R.Flags |= TCPWinSynAcked
		}
		if cf&finFlag(1-dir) != 0 {
			R.Flags |= TCPWinFinAcked
		}
	}
	nst, ncf := st, cf
	if s.flags&tcpFIN != 0 {
		ncf |= finFlag(dir)
	}
	o, r := &c.win[dirOrig], &c.win[dirReply]
	switch {
	case ncf == CloseFinOrig|CloseFinReply:
		nst = TCPStateClosing
		if o.Flags&r.Flags&TCPWinFinAcked != 0 {
			nst = TCPStateTimeWait
		}
	case ncf != 0:
		nst = TCPStateFinWait
	case st >= TCPStateEstablished:
	case o.Flags&r.Flags&TCPWinSynAcked != 0:
		nst = TCPStateEstablished
	case r.Flags&TCPWinSeen != 0:
		nst = TCPStateSynReceived
	}
	if nst != st || ncf != cf {
		f.setConnStateLocked(c, nst, ncf)
	}
}

// applySeqOffset rewrites a forwarded segment of c from dir for sequence
// number randomization: the initiator's sequence number gains the offset;
// the responder's ack and SACK blocks, which speak of the initiator's
// numbers, lose it. src and dst are the segment's current IPv4 addresses
// (needed only to recompute the checksum when a SACK block is not 16-bit
// aligned). Checksums are updated incrementally (RFC 1624), unless partial:
// then the checksum field holds only the pseudo-header sum, which the
// numbers are not part of (offload.go), and it is left as it is.
func (c *conn) applySeqOffset(t header.TCP, dir int, src, dst [4]byte, partial bool) {
	off := c.seqOff
	if off == 0 {
		return
	}
	if partial {
		defer t.SetChecksum(t.Checksum())
	}
	if dir == dirOrig {
		t.SetSequenceNumberWithChecksumUpdate(t.SequenceNumber() + off)
		return
	}
	if t.Flags()&tcpACK != 0 {
		t.SetAckNumberWithChecksumUpdate(t.AckNumber() - off)
	}
	if t.DataOffset() == header.TCPMinimumSize {
		return
	}
	recompute := false
	pos := header.TCPMinimumSize
	for opts := t.Options(); ; {
		kind, opt, rest, ok := header.NextOption(opts)
		if !ok {
			break
		}
		if kind == header.TCPOptionSACK && (len(opt)-2)%8 == 0 {
			for i := 2; i+4 <= len(opt); i += 4 {
				at := pos + i
				v := uint32(t[at])<<24 | uint32(t[at+1])<<16 | uint32(t[at+2])<<8 | uint32(t[at+3])
				nv := v - off
				if at%2 == 0 {
					t.SetChecksum(header.ChecksumUpdate32(t.Checksum(), v, nv))
				} else {
					recompute = true
				}
				t[at], t[at+1], t[at+2], t[at+3] = byte(nv>>24), byte(nv>>16), byte(nv>>8), byte(nv)
			}
		}
		pos += len(opt)
		opts = rest
	}
	if recompute && !partial {
		t.SetChecksum(t.CalculateChecksum(src, dst))
	}
}
