package ike

import (
	"encoding/binary"
	"fmt"
	"io"
)

// handleCreateChild answers CREATE_CHILD_SA: a new or rekeyed child SA, or
// a rekey of the IKE SA itself (RFC 7296 §1.3).
func (r *Responder) handleCreateChild(sa *SA, inner []Payload) ([]Payload, []Event, error) {
	saP, nP := find(inner, PayloadSA), find(inner, PayloadNonce)
	if saP == nil || nP == nil {
		return []Payload{notifyPayload(NotifyInvalidSyntax, nil)}, nil, fmt.Errorf("%w: CREATE_CHILD_SA without SA or Nonce", ErrSyntax)
	}
	ni := nP.Body
	if len(ni) < minNonce || len(ni) > maxNonce {
		return []Payload{notifyPayload(NotifyInvalidSyntax, nil)}, nil, fmt.Errorf("%w: nonce of %d bytes", ErrSyntax, len(ni))
	}
	var ke *KE
	if keP := find(inner, PayloadKE); keP != nil {
		k, err := ParseKE(keP.Body)
		if err != nil {
			return []Payload{notifyPayload(NotifyInvalidSyntax, nil)}, nil, err
		}
		ke = &k
	}
	props, err := ParseSA(saP.Body)
	if err != nil {
		return []Payload{notifyPayload(NotifyInvalidSyntax, nil)}, nil, err
	}
	nr := make([]byte, prfSize)
	if _, err := io.ReadFull(r.cfg.Rand, nr); err != nil {
		return []Payload{notifyPayload(NotifyTemporaryFailure, nil)}, nil, err
	}
	if props[0].Protocol == ProtoIKE {
		return r.rekeyIKE(sa, props, ke, ni, nr)
	}
	old := -1
	for _, p := range inner {
		if n, err := ParseNotify(p.Body); p.Type == PayloadNotify && err == nil && n.Type == NotifyRekeySA {
			if old = sa.childByOutSPI(n.SPI); old < 0 {
				return []Payload{{Type: PayloadNotify, Body: appendNotify(nil, Notify{Protocol: ProtoESP, SPI: n.SPI, Type: NotifyChildSANotFound})}},
					nil, fmt.Errorf("%w: SPI %x", ErrChildNotFound, n.SPI)
			}
		}
	}
	childPs, child, err := r.negotiateChild(sa, inner, ni, nr, ke, false)
	if err != nil {
		return childPs, nil, err
	}
	reply := append([]Payload{childPs[0], {Type: PayloadNonce, Body: nr}}, childPs[1:]...)
	sa.children = append(sa.children, child)
	ev := Event{Kind: EventChildUp, IKE: sa.spir, Child: child}
	if old >= 0 {
		// The old child stays until the initiator deletes it, so that
		// packets in flight still decrypt (RFC 7296 §2.8).
		ev.Kind, ev.OldChild = EventChildRekeyed, sa.children[old]
	}
	return reply, []Event{ev}, nil
}

// rekeyIKE makes the new IKE SA of an IKE rekey (RFC 7296 §2.18) and moves
// the children to it. The old SA answers until the peer deletes it.
func (r *Responder) rekeyIKE(sa *SA, props []Proposal, ke *KE, ni, nr []byte) ([]Payload, []Event, error) {
	group := DHNone
	if ke != nil {
		group = ke.Group
	}
	suite, prop, ok := selectIKE(props, r.cfg.IKESuites, group)
	if !ok || len(prop.SPI) != 8 {
		return []Payload{notifyPayload(NotifyNoProposalChosen, nil)}, nil, ErrProposal
	}
	if ke == nil || suite.DH != ke.Group {
		return []Payload{notifyPayload(NotifyInvalidKE, binary.BigEndian.AppendUint16(nil, suite.DH))}, nil, ErrInvalidKE
	}
	dh, err := newDH(suite.DH, r.cfg.Rand)
	if err != nil {
		return []Payload{notifyPayload(NotifyNoProposalChosen, nil)}, nil, err
	}
	shared, err := dh.Shared(ke.Data)
	if err != nil {
		return []Payload{notifyPayload(NotifyInvalidSyntax, nil)}, nil, err
	}
	spir, err := r.newSPI()
	if err != nil {
		return []Payload{notifyPayload(NotifyTemporaryFailure, nil)}, nil, err
	}
	spii := binary.BigEndian.Uint64(prop.SPI)
	keys, err := deriveIKEKeys(suite, skeyseedRekey(sa.keys.D, shared, ni, nr), ni, nr, spii, spir)
	if err != nil {
		return []Payload{notifyPayload(NotifyNoProposalChosen, nil)}, nil, err
	}
	nsa := &SA{
		state: stateEstablished, spii: spii, spir: spir, suite: suite, keys: keys,
		local: sa.local, peer: sa.peer, natLocal: sa.natLocal, natPeer: sa.natPeer,
		peerID: sa.peerID, children: sa.children,
	}
	if err := nsa.initCiphers(); err != nil {
		return []Payload{notifyPayload(NotifyNoProposalChosen, nil)}, nil, err
	}
	sa.children = nil
	r.sas[spir] = nsa
	reply := []Payload{
		{Type: PayloadSA, Body: appendSA(nil, []Proposal{suite.proposal(prop.Number, binary.BigEndian.AppendUint64(nil, spir))})},
		{Type: PayloadNonce, Body: nr},
		{Type: PayloadKE, Body: appendKE(nil, KE{Group: suite.DH, Data: dh.Public()})},
	}
	return reply, []Event{{Kind: EventIKERekeyed, IKE: sa.spir, NewIKE: spir}}, nil
}

// handleInformational answers INFORMATIONAL: empty (a liveness check,
// RFC 7296 §2.4), Delete of children (answered with our SPIs of the
// same SAs, §1.4.1) or of the IKE SA itself. Notifies are ignored.
func (r *Responder) handleInformational(sa *SA, inner []Payload) ([]Payload, []Event) {
	var events []Event
	var ours [][]byte
	for _, p := range inner {
		if p.Type != PayloadDelete {
			continue
		}
		d, err := ParseDelete(p.Body)
		if err != nil {
			continue
		}
		switch d.Protocol {
		case ProtoIKE:
			return nil, r.downEvents(sa)
		case ProtoESP:
			for _, spi := range d.SPIs {
				i := sa.childByOutSPI(spi)
				if i < 0 {
					continue
				}
				c := sa.children[i]
				ours = append(ours, binary.BigEndian.AppendUint32(nil, c.InSPI))
				sa.children = append(sa.children[:i:i], sa.children[i+1:]...)
				events = append(events, Event{Kind: EventChildDown, IKE: sa.spir, Child: c})
			}
		}
	}
	if len(ours) == 0 {
		return nil, events
	}
	return []Payload{{Type: PayloadDelete, Body: appendDelete(nil, Delete{Protocol: ProtoESP, SPIs: ours})}}, events
}
