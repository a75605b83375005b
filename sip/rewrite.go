package sip

import (
	"net/netip"
	"slices"
	"strconv"
)

// Translate maps one address and port to another and reports whether it
// knows the address at all. Rewrite calls it with port 0 for a field that
// carries an address only (SDP o= and c=), and with the written port, or
// 5060 when none is written, for a SIP host.
type Translate func(netip.AddrPort) (netip.AddrPort, bool)

// defaultSIPPort is the port a SIP URI or Via without one means (RFC 3261 §19.1.2).
const defaultSIPPort = 5060

// edit replaces a span of the payload.
type edit struct {
	at   span
	with string
}

// Rewrite returns payload with the addresses the ASA's SIP inspection
// translates rewritten by t: the Request-URI host, every Via sent-by, the
// first Contact's host and port, and in an SDP body the o= and c=
// addresses and the m= ports. Content-Length is set to the new body's
// length. Hosts that are names, and addresses t does not know, are left
// as they are.
//
// The caller picks t by direction, as the ASA does: a message leaving the
// inside gets real→mapped (its Via, Contact and SDP name the inside
// phone); one arriving from the outside gets mapped→real (a response's Via
// and an in-dialog request's Request-URI name the mapped address the
// outside learnt). Rewrite allocates the new payload; the input is not
// modified.
func Rewrite(payload []byte, t Translate) ([]byte, error) {
	var m Message
	if err := Parse(payload, &m); err != nil {
		return nil, err
	}
	var edits []edit
	hostEdit := func(hp HostPort) {
		if !hp.IsIP {
			return
		}
		port := hp.Port
		if port == 0 {
			port = defaultSIPPort
		}
		to, ok := t(netip.AddrPortFrom(netip.AddrFrom4(hp.Addr), port))
		if !ok || !to.Addr().Is4() {
			return
		}
		at := hp.Host
		s := to.Addr().String()
		if hp.PortText.ok() {
			at.end = hp.PortText.end
		}
		if hp.PortText.ok() || to.Port() != defaultSIPPort {
			s += ":" + strconv.Itoa(int(to.Port()))
		}
		edits = append(edits, edit{at, s})
	}
	addrEdit := func(a Addr) {
		if !a.IsIP {
			return
		}
		if to, ok := t(netip.AddrPortFrom(netip.AddrFrom4(a.IP), 0)); ok && to.Addr().Is4() {
			edits = append(edits, edit{a.Text, to.Addr().String()})
		}
	}
	if m.Request {
		hostEdit(m.RequestURI)
	}
	for _, v := range m.Vias[:m.NumVias] {
		hostEdit(v)
	}
	if m.HasContact {
		hostEdit(m.Contact)
	}
	bodyEdits := len(edits)
	if m.SDPBody {
		sdp := &m.SDP
		addrEdit(sdp.Origin)
		addrEdit(sdp.Connection)
		for i := range sdp.NumMedia {
			md := &sdp.Media[i]
			addrEdit(md.Connection)
			a := sdp.Address(i)
			if !a.IsIP || md.Port == 0 {
				continue
			}
			if to, ok := t(netip.AddrPortFrom(netip.AddrFrom4(a.IP), md.Port)); ok && to.Port() != 0 {
				edits = append(edits, edit{md.PortText, strconv.Itoa(int(to.Port()))})
			}
		}
	}
	bodyLen := len(payload) - m.BodyOff
	for _, e := range edits[bodyEdits:] {
		bodyLen += len(e.with) - (e.at.end - e.at.off)
	}
	if m.ContentLen.ok() {
		edits = append(edits, edit{m.ContentLen, strconv.Itoa(bodyLen)})
	}
	return applyEdits(payload, edits), nil
}

// applyEdits returns payload with the (non-overlapping) edits made.
func applyEdits(payload []byte, edits []edit) []byte {
	slices.SortFunc(edits, func(a, b edit) int { return a.at.off - b.at.off })
	n := len(payload)
	for _, e := range edits {
		n += len(e.with) - (e.at.end - e.at.off)
	}
	out := make([]byte, 0, n)
	pos := 0
	for _, e := range edits {
		out = append(out, payload[pos:e.at.off]...)
		out = append(out, e.with...)
		pos = e.at.end
	}
	return append(out, payload[pos:]...)
}
