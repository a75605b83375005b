package ike

import (
	"crypto/hmac"
	"fmt"
)

// handleAuth verifies the initiator's PSK AUTH, answers with ours and
// creates the first child SA. On failure the reply carries
// AUTHENTICATION_FAILED and the SA stays half-open; dispatch then drops it.
func (r *Responder) handleAuth(sa *SA, m *Message, inner []Payload) ([]Payload, []Event, error) {
	idP, authP := find(inner, PayloadIDi), find(inner, PayloadAuth)
	if idP == nil || authP == nil {
		return authFailed(), nil, fmt.Errorf("%w: IKE_AUTH without IDi or AUTH", ErrAuthFailed)
	}
	id, err := ParseIdentity(idP.Body)
	if err != nil {
		return authFailed(), nil, err
	}
	auth, err := ParseAuth(authP.Body)
	if err != nil {
		return authFailed(), nil, err
	}
	if auth.Method != AuthMethodPSK {
		return authFailed(), nil, fmt.Errorf("%w: auth method %d, not PSK", ErrAuthFailed, auth.Method)
	}
	want := pskAuth(r.cfg.PSK, sa.initReq, sa.nr, sa.keys.Pi, id)
	if !hmac.Equal(want, auth.Data) {
		return authFailed(), nil, fmt.Errorf("%w: AUTH of %s does not verify", ErrAuthFailed, id)
	}
	if rid := r.cfg.RemoteID; rid != nil && (rid.Type != id.Type || string(rid.Data) != string(id.Data)) {
		return authFailed(), nil, fmt.Errorf("%w: peer is %s, want %s", ErrAuthFailed, id, *rid)
	}
	var events []Event
	if hasNotify(inner, NotifyInitialContact) {
		events = r.dropPeerSAs(id.String(), sa.spir)
	}
	ours := pskAuth(r.cfg.PSK, sa.initRsp, sa.ni, sa.keys.Pr, r.cfg.LocalID)
	reply := []Payload{
		{Type: PayloadIDr, Body: r.cfg.LocalID.body()},
		{Type: PayloadAuth, Body: appendAuth(nil, Auth{Method: AuthMethodPSK, Data: ours})},
	}
	if hasNotify(inner, NotifyMessageIDSyncSupported) {
		// RFC 6311 §3: announced by both, or not used.
		reply = append(reply, notifyPayload(NotifyMessageIDSyncSupported, nil))
		sa.midSync = true
	}
	sa.state, sa.peerID = stateEstablished, id.String()
	delete(r.halfOpen, halfOpenKey{sa.spii, sa.initPeer})
	events = append(events, Event{Kind: EventIKEUp, IKE: sa.spir})
	if find(inner, PayloadSA) != nil {
		childPs, child, err := r.negotiateChild(sa, inner, sa.ni, sa.nr, nil, true)
		reply = append(reply, childPs...)
		if err != nil {
			// The IKE SA stands without a child (RFC 7296 §1.2).
			sa.ni, sa.nr, sa.initReq, sa.initRsp = nil, nil, nil, nil
			return reply, events, err
		}
		sa.children = append(sa.children, child)
		events = append(events, Event{Kind: EventChildUp, IKE: sa.spir, Child: child})
	}
	sa.ni, sa.nr, sa.initReq, sa.initRsp = nil, nil, nil, nil
	return reply, events, nil
}

func authFailed() []Payload { return []Payload{notifyPayload(NotifyAuthFailed, nil)} }

func hasNotify(ps []Payload, t NotifyType) bool {
	for _, p := range ps {
		if n, err := ParseNotify(p.Body); p.Type == PayloadNotify && err == nil && n.Type == t {
			return true
		}
	}
	return false
}

// dropPeerSAs deletes the other established SAs of peer: INITIAL_CONTACT
// says the peer has forgotten them (it rebooted; RFC 7296 §2.4).
func (r *Responder) dropPeerSAs(peer string, keep uint64) []Event {
	var events []Event
	for spi, other := range r.sas {
		if spi == keep || other.state != stateEstablished || other.peerID != peer {
			continue
		}
		events = append(events, r.downEvents(other)...)
		delete(r.sas, spi)
	}
	return events
}

// downEvents are the events of an IKE SA and its children going away.
func (r *Responder) downEvents(sa *SA) []Event {
	var events []Event
	for _, c := range sa.children {
		events = append(events, Event{Kind: EventChildDown, IKE: sa.spir, Child: c})
	}
	return append(events, Event{Kind: EventIKEDown, IKE: sa.spir})
}
