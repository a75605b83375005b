package ike

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Nonce sizes: at least 16 bytes and half the PRF key size, at most 256
// (RFC 7296 §3.9). Ours is the PRF's preferred key size.
const (
	minNonce = 16
	maxNonce = 256
)

// ErrProposal: the peer offered nothing we accept.
var ErrProposal = errors.New("ike: no proposal chosen")

// handleInit answers IKE_SA_INIT: it selects a suite, does the DH, derives
// the keys and keeps a half-open SA for IKE_AUTH.
func (r *Responder) handleInit(m *Message, p Packet) Result {
	key := halfOpenKey{m.SPIi, p.Remote}
	if spir, ok := r.halfOpen[key]; ok {
		if sa := r.sas[spir]; sa != nil && m.MessageID == 0 && bytes.Equal(sa.initReq, m.Raw) {
			return Result{Reply: sa.initRsp, Retransmit: true, SA: spir}
		}
	}
	if m.MessageID != 0 {
		return Result{Err: fmt.Errorf("%w: IKE_SA_INIT with message ID %d", ErrMessageID, m.MessageID)}
	}
	ps, err := checkCritical(m.Payloads)
	var uc *UnsupportedCriticalError
	if errors.As(err, &uc) {
		return r.initError(m, NotifyUnsupportedCritical, []byte{byte(uc.Type)}, err)
	}
	saP, keP, nP := find(ps, PayloadSA), find(ps, PayloadKE), find(ps, PayloadNonce)
	if saP == nil || keP == nil || nP == nil {
		return r.initError(m, NotifyInvalidSyntax, nil, fmt.Errorf("%w: IKE_SA_INIT without SA, KE or Nonce", ErrSyntax))
	}
	props, err := ParseSA(saP.Body)
	if err != nil {
		return r.initError(m, NotifyInvalidSyntax, nil, err)
	}
	ke, err := ParseKE(keP.Body)
	if err != nil {
		return r.initError(m, NotifyInvalidSyntax, nil, err)
	}
	ni := nP.Body
	if len(ni) < minNonce || len(ni) > maxNonce {
		return r.initError(m, NotifyInvalidSyntax, nil, fmt.Errorf("%w: nonce of %d bytes", ErrSyntax, len(ni)))
	}
	suite, prop, ok := selectIKE(props, r.cfg.IKESuites, ke.Group)
	if !ok {
		return r.initError(m, NotifyNoProposalChosen, nil, ErrProposal)
	}
	if suite.DH != ke.Group {
		return r.initError(m, NotifyInvalidKE, binary.BigEndian.AppendUint16(nil, suite.DH),
			fmt.Errorf("ike: KE group %d, want %d", ke.Group, suite.DH))
	}
	sa, reply, err := r.newHalfOpen(m, p, suite, prop, ke, ni, ps)
	if err != nil {
		return r.initError(m, NotifyInvalidSyntax, nil, err)
	}
	r.addHalfOpen(sa)
	return Result{Reply: reply, SA: sa.spir}
}

// newHalfOpen does the DH and key derivation and builds the response.
func (r *Responder) newHalfOpen(m *Message, p Packet, suite Suite, prop Proposal, ke KE, ni []byte, ps []Payload) (*SA, []byte, error) {
	dh, err := newDH(suite.DH, r.cfg.Rand)
	if err != nil {
		return nil, nil, err
	}
	shared, err := dh.Shared(ke.Data)
	if err != nil {
		return nil, nil, err
	}
	spir, err := r.newSPI()
	if err != nil {
		return nil, nil, err
	}
	nr := make([]byte, prfSize)
	if _, err := io.ReadFull(r.cfg.Rand, nr); err != nil {
		return nil, nil, err
	}
	ni = append([]byte(nil), ni...)
	keys, err := deriveIKEKeys(suite, skeyseedInit(ni, nr, shared), ni, nr, m.SPIi, spir)
	if err != nil {
		return nil, nil, err
	}
	sa := &SA{
		state: stateHalfOpen, spii: m.SPIi, spir: spir, suite: suite, keys: keys,
		local: p.Local, peer: p.Remote, initPeer: p.Remote, nextID: 1, ni: ni, nr: nr,
		initReq: append([]byte(nil), m.Raw...),
	}
	if err := sa.initCiphers(); err != nil {
		return nil, nil, err
	}
	out := []Payload{
		{Type: PayloadSA, Body: appendSA(nil, []Proposal{suite.proposal(prop.Number, nil)})},
		{Type: PayloadKE, Body: appendKE(nil, KE{Group: suite.DH, Data: dh.Public()})},
		{Type: PayloadNonce, Body: nr},
	}
	if natDetect(ps) {
		sa.natPeer = !natMatches(ps, NotifyNATSourceIP, natHash(m.SPIi, 0, p.Remote))
		sa.natLocal = !natMatches(ps, NotifyNATDestinationIP, natHash(m.SPIi, 0, p.Local))
		out = append(out,
			notifyPayload(NotifyNATSourceIP, natHash(m.SPIi, spir, p.Local)),
			notifyPayload(NotifyNATDestinationIP, natHash(m.SPIi, spir, p.Remote)))
	}
	h := Header{SPIi: m.SPIi, SPIr: spir, Exchange: ExchangeIKESAInit, Flags: FlagResponse}
	sa.initRsp = encodeMessage(h, out)
	return sa, sa.initRsp, nil
}

// initError answers IKE_SA_INIT with one notify and keeps no state
// (RFC 7296 §2.6: a responder commits to nothing before it gets IKE_AUTH).
func (r *Responder) initError(m *Message, t NotifyType, data []byte, err error) Result {
	h := Header{SPIi: m.SPIi, Exchange: ExchangeIKESAInit, Flags: FlagResponse}
	return Result{Reply: encodeMessage(h, []Payload{notifyPayload(t, data)}), Err: err}
}

// natHash is SHA-1(SPIi | SPIr | IP | Port) (RFC 7296 §2.23).
func natHash(spii, spir uint64, ap netip.AddrPort) []byte {
	h := sha1.New()
	h.Write(spiBytes(spii, spir))
	h.Write(ap.Addr().Unmap().AsSlice())
	h.Write(binary.BigEndian.AppendUint16(nil, ap.Port()))
	return h.Sum(nil)
}

// natDetect reports whether the initiator does NAT detection.
func natDetect(ps []Payload) bool {
	for _, p := range ps {
		if n, err := ParseNotify(p.Body); p.Type == PayloadNotify && err == nil && n.Type == NotifyNATSourceIP {
			return true
		}
	}
	return false
}

// natMatches reports whether any notify of type t carries hash want.
func natMatches(ps []Payload, t NotifyType, want []byte) bool {
	for _, p := range ps {
		if p.Type != PayloadNotify {
			continue
		}
		if n, err := ParseNotify(p.Body); err == nil && n.Type == t && bytes.Equal(n.Data, want) {
			return true
		}
	}
	return false
}
