package ike

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors of child SA negotiation; the reply carries the matching notify.
var (
	ErrTSUnacceptable = errors.New("ike: traffic selectors unacceptable")
	ErrInvalidKE      = errors.New("ike: KE group not acceptable")
	ErrChildNotFound  = errors.New("ike: child SA to rekey not found")
)

// negotiateChild selects an ESP proposal, narrows the selectors and derives
// the keys of a new child SA. It returns the reply's SA, [KE], TSi and TSr
// payloads, or one error notify. ke is the request's KE (nil if none);
// ignoreDH is set in IKE_AUTH.
func (r *Responder) negotiateChild(sa *SA, inner []Payload, ni, nr []byte, ke *KE, ignoreDH bool) ([]Payload, ChildRecord, error) {
	var none ChildRecord
	saP, tsiP, tsrP := find(inner, PayloadSA), find(inner, PayloadTSi), find(inner, PayloadTSr)
	if saP == nil || tsiP == nil || tsrP == nil {
		return []Payload{notifyPayload(NotifyInvalidSyntax, nil)}, none, fmt.Errorf("%w: child without SA or TS", ErrSyntax)
	}
	props, err := ParseSA(saP.Body)
	if err != nil {
		return []Payload{notifyPayload(NotifyInvalidSyntax, nil)}, none, err
	}
	tsi, err := ParseTS(tsiP.Body)
	if err != nil {
		return []Payload{notifyPayload(NotifyInvalidSyntax, nil)}, none, err
	}
	tsr, err := ParseTS(tsrP.Body)
	if err != nil {
		return []Payload{notifyPayload(NotifyInvalidSyntax, nil)}, none, err
	}
	keGroup := DHNone
	if ke != nil {
		keGroup = ke.Group
	}
	suite, prop, dhGroup, ok, want := selectChild(props, r.cfg.ChildSuites, keGroup, ignoreDH)
	if !ok {
		if want != 0 {
			return []Payload{notifyPayload(NotifyInvalidKE, binary.BigEndian.AppendUint16(nil, want))}, none, ErrInvalidKE
		}
		return []Payload{notifyPayload(NotifyNoProposalChosen, nil)}, none, ErrProposal
	}
	remoteTS, localTS := narrow(tsi, r.cfg.RemoteNets), narrow(tsr, r.cfg.LocalNets)
	if len(remoteTS) == 0 || len(localTS) == 0 {
		return []Payload{notifyPayload(NotifyTSUnacceptable, nil)}, none, ErrTSUnacceptable
	}
	var shared []byte
	var out []Payload
	if dhGroup != DHNone {
		dh, err := newDH(dhGroup, r.cfg.Rand)
		if err != nil {
			return []Payload{notifyPayload(NotifyNoProposalChosen, nil)}, none, err
		}
		if shared, err = dh.Shared(ke.Data); err != nil {
			return []Payload{notifyPayload(NotifyInvalidSyntax, nil)}, none, err
		}
		out = append(out, Payload{Type: PayloadKE, Body: appendKE(nil, KE{Group: dhGroup, Data: dh.Public()})})
	}
	spi, err := r.newChildSPI()
	if err != nil {
		return []Payload{notifyPayload(NotifyTemporaryFailure, nil)}, none, err
	}
	in, outKey, err := deriveChildKeys(sa.keys.D, shared, ni, nr, suite.KeyBits)
	if err != nil {
		return []Payload{notifyPayload(NotifyNoProposalChosen, nil)}, none, err
	}
	n := int(suite.KeyBits) / 8
	child := ChildRecord{
		InSPI: spi, OutSPI: binary.BigEndian.Uint32(prop.SPI), Suite: ChildSuite{Encr: suite.Encr, KeyBits: suite.KeyBits, DH: dhGroup},
		InKey: in[:n], InSalt: in[n:], OutKey: outKey[:n], OutSalt: outKey[n:],
		LocalTS: localTS, RemoteTS: remoteTS,
	}
	reply := []Payload{{Type: PayloadSA, Body: appendSA(nil, []Proposal{suite.childProposal(prop.Number, binary.BigEndian.AppendUint32(nil, spi), dhGroup)})}}
	reply = append(reply, out...)
	reply = append(reply,
		Payload{Type: PayloadTSi, Body: appendTS(nil, remoteTS)},
		Payload{Type: PayloadTSr, Body: appendTS(nil, localTS)})
	return reply, child, nil
}
