package gtp

import (
	"errors"
	"net/netip"
	"time"

	"github.com/wmnsk/go-gtp/gtpv1/ie"
	"github.com/wmnsk/go-gtp/gtpv1/message"
)

// GTPv1-C message types the inspector tracks (TS 29.060 §7.1).
const (
	msgCreateRequest  = message.MsgTypeCreatePDPContextRequest
	msgCreateResponse = message.MsgTypeCreatePDPContextResponse
	msgUpdateRequest  = message.MsgTypeUpdatePDPContextRequest
	msgUpdateResponse = message.MsgTypeUpdatePDPContextResponse
	msgDeleteRequest  = message.MsgTypeDeletePDPContextRequest
	msgDeleteResponse = message.MsgTypeDeletePDPContextResponse
)

// Cause values (TS 29.060 §7.7.1): 128-191 accept a request.
const (
	causeAccepted    = 128
	causeNonExistent = 192
	causeRejectFirst = 192
)

// knownControl reports whether GTPv1-C defines message type t; the
// inspector passes those it does not track and, like the ASA's default
// gtp-map, drops unknown message IDs.
func knownControl(t uint8) bool {
	switch {
	case t >= 1 && t <= 7, // echo, version not supported, node alive, redirection
		t >= 16 && t <= 37,   // PDP context, error indication, PDU notification, routeing info, failure report, MS present
		t >= 48 && t <= 62,   // identification, SGSN context, relocation, UE registration query
		t == 70,              // RAN information relay
		t >= 96 && t <= 123,  // MBMS
		t == 128 || t == 129, // MS info change notification
		t == 240 || t == 241: // data record transfer
		return true
	}
	return false
}

// errMalformed stands for any decoding failure of a control message.
var errMalformed = errors.New("gtp: malformed")

// parseControl decodes a GTPv1-C message with go-gtp, turning a panic of
// the decoder on hostile input into an error.
func parseControl(b []byte) (m message.Message, err error) {
	defer func() {
		if recover() != nil {
			m, err = nil, errMalformed
		}
	}()
	return message.Parse(b)
}

// Control inspects a GTPv1-C datagram's UDP payload (UDP 2123) from src to
// dst at now. Create, Update and Delete PDP Context requests and responses
// drive the context database; echo and the other GTPv1-C messages pass;
// anything malformed, unexpected or over a limit is dropped, counted, and
// changes no state.
func (in *Inspector) Control(src, dst netip.AddrPort, payload []byte, now time.Time) Verdict {
	return in.count(in.controlMsg(src.Addr(), dst.Addr(), payload, now.UnixNano()))
}

func (in *Inspector) controlMsg(srcAddr, dstAddr netip.Addr, b []byte, now int64) Verdict {
	if r := checkHeader(b); r != dropNone {
		return drop(r)
	}
	if !srcAddr.Is4() || !dstAddr.Is4() {
		return drop(DropMalformed)
	}
	src, dst := srcAddr.As4(), dstAddr.As4()
	t := b[1]
	if !knownControl(t) {
		return drop(DropUnknownMessage)
	}
	if t < msgCreateRequest || t > msgDeleteResponse {
		in.mu.Lock()
		in.touchGSN(src, now)
		in.mu.Unlock()
		return pass
	}
	if b[0]&flagSeq == 0 {
		return drop(DropMalformed) // TS 29.060 §6: S is always 1 on GTP-C
	}
	m, err := parseControl(b)
	if err != nil {
		return drop(DropMalformed)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	var v Verdict
	switch m := m.(type) {
	case *message.CreatePDPContextRequest:
		v = in.createRequest(src, dst, m, now)
	case *message.CreatePDPContextResponse:
		v = in.createResponse(src, dst, m, now)
	case *message.UpdatePDPContextRequest:
		v = in.updateRequest(src, dst, m, now)
	case *message.UpdatePDPContextResponse:
		v = in.updateResponse(src, dst, m, now)
	case *message.DeletePDPContextRequest:
		v = in.deleteRequest(src, dst, m, now)
	case *message.DeletePDPContextResponse:
		v = in.deleteResponse(src, dst, m, now)
	default:
		return drop(DropMalformed)
	}
	if v.Pass() {
		in.touchGSN(src, now)
	}
	return v
}

// ieTEID returns a TEID IE's value; ok is false if it is absent or short.
func ieTEID(i *ie.IE) (uint32, bool) {
	if i == nil {
		return 0, false
	}
	v, err := i.TEID()
	return v, err == nil
}

// ieGSN returns a GSN Address IE's IPv4 address.
func ieGSN(i *ie.IE) ([4]byte, bool) {
	if i == nil || len(i.Payload) != 4 {
		return [4]byte{}, false
	}
	return [4]byte(i.Payload), true
}

// ieNSAPI returns an NSAPI IE's value. 3GPP TS 24.008 reserves 0-4, but
// sgsnemu sends 0 by default and osmo-ggsn accepts it, so the inspector
// takes any 4-bit value rather than break the lab's real GSNs.
func ieNSAPI(i *ie.IE) (uint8, bool) {
	if i == nil || len(i.Payload) != 1 || i.Payload[0] > maxNSAPI {
		return 0, false
	}
	return i.Payload[0], true
}

func ieCause(i *ie.IE) (uint8, bool) {
	if i == nil || len(i.Payload) != 1 {
		return 0, false
	}
	return i.Payload[0], true
}

func ieIMSI(i *ie.IE) ([8]byte, bool) {
	var v [8]byte
	if i == nil || len(i.Payload) == 0 || len(i.Payload) > 8 {
		return v, false
	}
	for j := range v {
		v[j] = 0xff
	}
	copy(v[:], i.Payload)
	return v, true
}

// ieMS returns an End User Address IE's IPv4 address; zero for a dynamic
// request (no address yet), PPP or IPv6.
func ieMS(i *ie.IE) [4]byte {
	if i == nil || len(i.Payload) != 6 || i.Payload[0]&0x0f != 1 || i.Payload[1] != 0x21 {
		return [4]byte{}
	}
	return [4]byte(i.Payload[2:6])
}

// ieAPN decodes an Access Point Name IE (length-prefixed labels) into
// dotted form; a malformed one gives "".
func ieAPN(i *ie.IE) string {
	if i == nil || len(i.Payload) > maxAPNLen {
		return ""
	}
	p := i.Payload
	out := make([]byte, 0, len(p))
	for len(p) > 0 {
		n := int(p[0])
		if n == 0 || n >= len(p) {
			return ""
		}
		if len(out) > 0 {
			out = append(out, '.')
		}
		out = append(out, p[1:1+n]...)
		p = p[1+n:]
	}
	return string(out)
}

func accepted(cause uint8) bool { return cause >= causeAccepted && cause < causeRejectFirst }

// admitRequest applies the request-queue limit to a new request, or finds
// the request it retransmits. It returns the drop reason, if any, and
// whether k is already outstanding.
func (in *Inspector) admitRequest(k reqKey) (DropReason, bool) {
	if _, ok := in.pending[k]; ok {
		return dropNone, true
	}
	if len(in.pending) >= in.cfg.RequestQueue {
		return DropRequestLimit, false
	}
	return dropNone, false
}

// takeResponse finds and validates the request a response answers: same
// peers reversed, same sequence number, same message family, and the
// header TEID the requester announced.
func (in *Inspector) takeResponse(src, dst [4]byte, h *message.Header, reqType uint8) (reqKey, *request, DropReason) {
	k := reqKey{requester: dst, responder: src, seq: h.SequenceNumber}
	r := in.pending[k]
	if r == nil || r.msgType != reqType || h.TEID != r.expectTEID {
		return k, nil, DropUnexpectedResponse
	}
	return k, r, dropNone
}

// findContext returns the committed context a request addressed to
// (dst, teid) concerns, for the given NSAPI.
func (in *Inspector) findContext(dst [4]byte, teid uint32, nsapi uint8) *pdpContext {
	ref, ok := in.control[teidKey{dst, teid}]
	if !ok {
		return nil
	}
	return in.contexts[TID{IMSI: ref.imsi, NSAPI: nsapi}]
}

func (in *Inspector) createRequest(src, dst [4]byte, m *message.CreatePDPContextRequest, now int64) Verdict {
	imsi, ok1 := ieIMSI(m.IMSI)
	nsapi, ok2 := ieNSAPI(m.NSAPI)
	dataTEID, ok3 := ieTEID(m.TEIDDataI)
	ctlAddr, ok4 := ieGSN(m.SGSNAddressForSignalling)
	dataAddr, ok5 := ieGSN(m.SGSNAddressForUserTraffic)
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return drop(DropMalformed)
	}
	tid := TID{IMSI: imsi, NSAPI: nsapi}
	ctlTEID, ok := ieTEID(m.TEIDCPlane)
	if !ok {
		// A secondary context may leave out the control TEID: it is the
		// one already given for its MS (TS 29.060 §7.3.1).
		linked, lok := ieNSAPI(m.LinkedNSAPI)
		primary := in.contexts[TID{IMSI: imsi, NSAPI: linked}]
		if !lok || primary == nil {
			return drop(DropMalformed)
		}
		ctlTEID = primary.rec.SGSNControlTEID
	}
	k := reqKey{requester: src, responder: dst, seq: m.SequenceNumber}
	r, again := in.admitRequest(k)
	if r != dropNone {
		return drop(r)
	}
	if !again && len(in.contexts)+in.pendingCreates >= in.cfg.TunnelLimit {
		return drop(DropTunnelLimit)
	}
	req := &request{
		msgType: msgCreateRequest,
		tid:     tid,
		rec: Record{
			TID: tid, Primary: m.LinkedNSAPI == nil, MS: ieMS(m.EndUserAddress), APN: ieAPN(m.APN),
			SGSNControl: ctlAddr, SGSNData: dataAddr, SGSNControlTEID: ctlTEID, SGSNDataTEID: dataTEID,
		},
		expectTEID: ctlTEID,
		deadline:   now + in.cfg.RequestTimeout.Nanoseconds(),
	}
	if again {
		in.dropRequest(k, in.pending[k])
	}
	in.pending[k] = req
	in.pendingCreates++
	return pass
}

func (in *Inspector) createResponse(src, dst [4]byte, m *message.CreatePDPContextResponse, now int64) Verdict {
	k, req, r := in.takeResponse(src, dst, m.Header, msgCreateRequest)
	if r != dropNone {
		return drop(r)
	}
	cause, ok := ieCause(m.Cause)
	if !ok {
		return drop(DropMalformed)
	}
	if !accepted(cause) {
		in.dropRequest(k, req)
		return pass
	}
	rec := req.rec
	var ok1, ok2, ok3 bool
	rec.GGSNDataTEID, ok1 = ieTEID(m.TEIDDataI)
	rec.GGSNControl, ok2 = ieGSN(m.GGSNAddressForCPlane)
	rec.GGSNData, ok3 = ieGSN(m.GGSNAddressForUserTraffic)
	if !(ok1 && ok2 && ok3) {
		return drop(DropMalformed)
	}
	if t, ok := ieTEID(m.TEIDCPlane); ok {
		rec.GGSNControlTEID = t
	} else if primary := in.primaryOf(rec); primary != nil {
		rec.GGSNControlTEID = primary.rec.GGSNControlTEID
	} else {
		return drop(DropMalformed)
	}
	if ms := ieMS(m.EndUserAddress); ms != [4]byte{} {
		rec.MS = ms
	}
	rec.Created = now
	in.dropRequest(k, req)
	c := in.install(rec, now, false)
	c.signalUp++
	c.signalDown++
	return pass
}

// primaryOf returns another context of the same MS whose control TEIDs a
// secondary context shares.
func (in *Inspector) primaryOf(rec Record) *pdpContext {
	ref, ok := in.control[teidKey{rec.SGSNControl, rec.SGSNControlTEID}]
	if !ok || ref.imsi != rec.TID.IMSI {
		return nil
	}
	for n := uint8(0); n <= maxNSAPI; n++ {
		if c := in.contexts[TID{IMSI: rec.TID.IMSI, NSAPI: n}]; c != nil && n != rec.TID.NSAPI {
			return c
		}
	}
	return nil
}

func (in *Inspector) updateRequest(src, dst [4]byte, m *message.UpdatePDPContextRequest, now int64) Verdict {
	nsapi, ok := ieNSAPI(m.NSAPI)
	if !ok {
		return drop(DropMalformed)
	}
	var c *pdpContext
	if m.Header.TEID == 0 {
		// A new SGSN that does not know the GGSN's TEID names the MS by
		// IMSI instead (TS 29.060 §7.3.3).
		imsi, ok := ieIMSI(m.IMSI)
		if !ok {
			return drop(DropMalformed)
		}
		c = in.contexts[TID{IMSI: imsi, NSAPI: nsapi}]
	} else {
		c = in.findContext(dst, m.Header.TEID, nsapi)
	}
	if c == nil {
		return drop(DropUnknownTEID)
	}
	req := &request{msgType: msgUpdateRequest, tid: c.rec.TID, rec: c.rec,
		deadline: now + in.cfg.RequestTimeout.Nanoseconds()}
	if dst == c.rec.GGSNControl {
		// SGSN-initiated (e.g. an SGSN change): the SGSN gives its
		// addresses and data TEID, and its control TEID if it changed.
		var ok1, ok2, ok3 bool
		req.toGGSN = true
		req.rec.SGSNControl, ok1 = ieGSN(m.SGSNAddressForCPlane)
		req.rec.SGSNData, ok2 = ieGSN(m.SGSNAddressForUserTraffic)
		req.rec.SGSNDataTEID, ok3 = ieTEID(m.TEIDDataI)
		if !(ok1 && ok2 && ok3) {
			return drop(DropMalformed)
		}
		if t, ok := ieTEID(m.TEIDCPlane); ok {
			req.rec.SGSNControlTEID = t
		}
		req.expectTEID = req.rec.SGSNControlTEID
	} else {
		req.expectTEID = c.rec.GGSNControlTEID
	}
	k := reqKey{requester: src, responder: dst, seq: m.SequenceNumber}
	if r, _ := in.admitRequest(k); r != dropNone {
		return drop(r)
	}
	in.pending[k] = req
	if req.toGGSN {
		c.signalUp++
	} else {
		c.signalDown++
	}
	c.lastSeen = now
	return pass
}

func (in *Inspector) updateResponse(src, dst [4]byte, m *message.UpdatePDPContextResponse, now int64) Verdict {
	k, req, r := in.takeResponse(src, dst, m.Header, msgUpdateRequest)
	if r != dropNone {
		return drop(r)
	}
	cause, ok := ieCause(m.Cause)
	if !ok {
		return drop(DropMalformed)
	}
	c := in.contexts[req.tid]
	if !accepted(cause) || c == nil || !req.toGGSN {
		in.dropRequest(k, req)
		if c != nil {
			c.lastSeen = now
		}
		return pass
	}
	rec := req.rec
	rec.Created = c.rec.Created
	// The GGSN may move too: its TEIDs and addresses are conditional.
	if t, ok := ieTEID(m.TEIDDataI); ok {
		rec.GGSNDataTEID = t
	}
	if t, ok := ieTEID(m.TEIDCPlane); ok {
		rec.GGSNControlTEID = t
	}
	if m.GGSNAddressForCPlane != nil {
		a, ok := ieGSN(m.GGSNAddressForCPlane)
		if !ok {
			return drop(DropMalformed)
		}
		rec.GGSNControl = a
	}
	if m.GGSNAddressForUserTraffic != nil {
		a, ok := ieGSN(m.GGSNAddressForUserTraffic)
		if !ok {
			return drop(DropMalformed)
		}
		rec.GGSNData = a
	}
	in.dropRequest(k, req)
	c = in.install(rec, now, false)
	c.signalDown++
	return pass
}

func (in *Inspector) deleteRequest(src, dst [4]byte, m *message.DeletePDPContextRequest, now int64) Verdict {
	nsapi, ok := ieNSAPI(m.NSAPI)
	if !ok {
		return drop(DropMalformed)
	}
	c := in.findContext(dst, m.Header.TEID, nsapi)
	if c == nil {
		return drop(DropUnknownTEID)
	}
	req := &request{msgType: msgDeleteRequest, tid: c.rec.TID, toGGSN: dst == c.rec.GGSNControl,
		deadline: now + in.cfg.RequestTimeout.Nanoseconds()}
	if req.toGGSN {
		req.expectTEID = c.rec.SGSNControlTEID
	} else {
		req.expectTEID = c.rec.GGSNControlTEID
	}
	k := reqKey{requester: src, responder: dst, seq: m.SequenceNumber}
	if r, _ := in.admitRequest(k); r != dropNone {
		return drop(r)
	}
	in.pending[k] = req
	c.lastSeen = now
	return pass
}

func (in *Inspector) deleteResponse(src, dst [4]byte, m *message.DeletePDPContextResponse, now int64) Verdict {
	k, req, r := in.takeResponse(src, dst, m.Header, msgDeleteRequest)
	if r != dropNone {
		return drop(r)
	}
	cause, ok := ieCause(m.Cause)
	if !ok {
		return drop(DropMalformed)
	}
	in.dropRequest(k, req)
	// "Non-existent" means the responder has no such context either.
	if c := in.contexts[req.tid]; c != nil && (accepted(cause) || cause == causeNonExistent) {
		in.remove(c, false)
	}
	return pass
}
