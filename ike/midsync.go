package ike

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// RFC 6311 message ID synchronization, the cluster's side: a unit that
// took over an IKE SA asks the peer, in an INFORMATIONAL request with
// message ID 0 holding only an IKEV2_MESSAGE_ID_SYNC notify, to agree on
// the message IDs each side expects next. The replicated record already
// carries the next request ID after every request the old active answered
// (exported before the reply left), so the sync only matters when the old
// active answered a request whose record never reached the standby; the
// peer's answer then moves our expected ID up to the peer's.
//
// Notify data (RFC 6311 §4.1): nonce(4), EXPECTED_SEND_REQ_MESSAGE_ID(4),
// EXPECTED_RECV_REQ_MESSAGE_ID(4).

const midSyncDataLen = 12

// MIDSyncRequest returns the sync request for IKE SA spir (sent to the
// peer as it is, over UDP 4500 with the non-ESP marker when NAT-T is in
// use), or nil when the SA did not negotiate the sync. A later request
// replaces the outstanding one.
func (r *Responder) MIDSyncRequest(spir uint64) ([]byte, error) {
	sa := r.sas[spir]
	if sa == nil || !sa.Established() || !sa.midSync {
		return nil, nil
	}
	nonce := make([]byte, 4)
	if _, err := io.ReadFull(r.cfg.Rand, nonce); err != nil {
		return nil, err
	}
	data := append(append([]byte(nil), nonce...), 0, 0, 0, 1) // we send requests only as this sync: the next would be 1
	data = binary.BigEndian.AppendUint32(data, sa.nextID)
	h := Header{SPIi: sa.spii, SPIr: sa.spir, Exchange: ExchangeInformational, MessageID: 0}
	out, err := sa.out.seal(h, []Payload{notifyPayload(NotifyMessageIDSync, data)}, r.cfg.Rand)
	if err != nil {
		return nil, err
	}
	sa.syncNonce = nonce
	return out, nil
}

// MIDSyncPending reports whether IKE SA spir has a sync request that the
// peer has not answered yet (the caller resends the same datagram until
// it has, as an IKE initiator retransmits).
func (r *Responder) MIDSyncPending(spir uint64) bool {
	sa := r.sas[spir]
	return sa != nil && sa.syncNonce != nil
}

// handleMIDSyncResponse takes the peer's answer to MIDSyncRequest: an
// authentic INFORMATIONAL response with message ID 0 echoing our nonce.
// The peer's EXPECTED_SEND_REQ_MESSAGE_ID is the ID of its next request:
// we expect that one (never less than before). Any other response is
// refused, as before.
func (r *Responder) handleMIDSyncResponse(m *Message) Result {
	sa := r.sas[m.SPIr]
	if m.Exchange != ExchangeInformational || m.MessageID != 0 || m.Flags&FlagInitiator == 0 || sa == nil || sa.spii != m.SPIi || sa.syncNonce == nil {
		return Result{Err: ErrResponse}
	}
	res := Result{SA: sa.spir}
	sk := find(m.Payloads, PayloadSK)
	if sk == nil {
		res.Err = ErrNoSK
		return res
	}
	inner, err := sa.in.open(m.Raw, *sk)
	if err != nil {
		res.Err = err
		return res
	}
	var data []byte
	for _, p := range inner {
		if n, err := ParseNotify(p.Body); p.Type == PayloadNotify && err == nil && n.Type == NotifyMessageIDSync {
			data = n.Data
		}
	}
	if len(data) != midSyncDataLen || !bytes.Equal(data[:4], sa.syncNonce) {
		res.Err = fmt.Errorf("%w: MID sync response without our nonce", ErrSyntax)
		return res
	}
	sa.syncNonce = nil
	if peerNext := binary.BigEndian.Uint32(data[4:]); peerNext > sa.nextID {
		// The old active answered requests the record did not carry: their
		// response is lost with it, so a retransmission cannot be answered.
		sa.nextID, sa.lastResp = peerNext, nil
		res.Changed = true
	}
	return res
}
