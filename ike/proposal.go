package ike

// has reports whether p offers transform (t, id) with key length kl.
func (p Proposal) has(t TransformType, id, kl uint16) bool {
	for _, tr := range p.Transforms {
		if tr.Type == t && tr.ID == id && tr.KeyLength == kl && !tr.Unknown {
			return true
		}
	}
	return false
}

// hasType reports whether p has any transform of type t.
func (p Proposal) hasType(t TransformType) bool {
	for _, tr := range p.Transforms {
		if tr.Type == t {
			return true
		}
	}
	return false
}

// offersNone reports whether p allows "no transform" of type t: it lists
// none of that type, or lists the NONE ID (0).
func (p Proposal) offersNone(t TransformType) bool {
	return !p.hasType(t) || p.has(t, 0, 0)
}

func (s Suite) matches(p Proposal) bool {
	if p.Protocol != ProtoIKE || !supportedDH(s.DH) {
		return false
	}
	integ := p.has(TransformInteg, s.Integ, 0)
	if s.Integ == IntegNone {
		integ = p.offersNone(TransformInteg)
	}
	return p.has(TransformEncr, s.Encr, s.KeyBits) && p.has(TransformPRF, s.PRF, 0) &&
		integ && p.has(TransformDH, s.DH, 0)
}

// selectIKE picks, in the initiator's order, the first proposal one of our
// suites accepts, preferring one whose DH group is the group of the KE the
// initiator already sent (which saves an INVALID_KE_PAYLOAD round trip).
func selectIKE(props []Proposal, suites []Suite, keGroup uint16) (Suite, Proposal, bool) {
	for pass := 0; pass < 2; pass++ {
		for _, p := range props {
			for _, s := range suites {
				if s.matches(p) && (pass == 1 || s.DH == keGroup) {
					return s, p, true
				}
			}
		}
	}
	return Suite{}, Proposal{}, false
}

// proposal is the one-transform-per-type answer for s.
func (s Suite) proposal(number uint8, spi []byte) Proposal {
	ts := []Transform{{Type: TransformEncr, ID: s.Encr, KeyLength: s.KeyBits}, {Type: TransformPRF, ID: s.PRF}}
	if s.Integ != IntegNone {
		ts = append(ts, Transform{Type: TransformInteg, ID: s.Integ})
	}
	ts = append(ts, Transform{Type: TransformDH, ID: s.DH})
	return Proposal{Number: number, Protocol: ProtoIKE, SPI: spi, Transforms: ts}
}

// childMatch reports whether s accepts p, and with which DH group.
// keGroup is the group of the request's KE payload, DHNone without one.
// ignoreDH is set in IKE_AUTH, where no KE is exchanged and DH transforms
// in the offer do not apply (RFC 7296 §1.2).
func (s ChildSuite) childMatch(p Proposal, keGroup uint16, ignoreDH bool) (uint16, bool) {
	if p.Protocol != ProtoESP || len(p.SPI) != 4 {
		return 0, false
	}
	if !p.has(TransformEncr, s.Encr, s.KeyBits) || !p.offersNone(TransformInteg) {
		return 0, false
	}
	if p.hasType(TransformESN) && !p.has(TransformESN, ESNNone, 0) {
		return 0, false // we do not do extended sequence numbers
	}
	switch {
	case ignoreDH:
		return DHNone, true
	case keGroup == DHNone:
		return DHNone, s.DH == DHNone && p.offersNone(TransformDH)
	case s.DH == keGroup || s.DH == DHNone && supportedDH(keGroup):
		return keGroup, p.has(TransformDH, keGroup, 0)
	}
	return 0, false
}

// selectChild picks the first acceptable ESP proposal. If none fits the
// KE's group but one would fit with another group, wantGroup names it for
// an INVALID_KE_PAYLOAD answer.
func selectChild(props []Proposal, suites []ChildSuite, keGroup uint16, ignoreDH bool) (s ChildSuite, p Proposal, dh uint16, ok bool, wantGroup uint16) {
	for _, p := range props {
		for _, s := range suites {
			if dh, ok := s.childMatch(p, keGroup, ignoreDH); ok {
				return s, p, dh, true, 0
			}
		}
	}
	if keGroup != DHNone {
		for _, p := range props {
			for _, s := range suites {
				if s.DH != DHNone && s.DH != keGroup && p.has(TransformDH, s.DH, 0) {
					if _, ok := s.childMatch(p, s.DH, false); ok {
						return ChildSuite{}, Proposal{}, 0, false, s.DH
					}
				}
			}
		}
	}
	return ChildSuite{}, Proposal{}, 0, false, 0
}

// childProposal is the answer for s with our SPI.
func (s ChildSuite) childProposal(number uint8, spi []byte, dh uint16) Proposal {
	ts := []Transform{{Type: TransformEncr, ID: s.Encr, KeyLength: s.KeyBits}}
	if dh != DHNone {
		ts = append(ts, Transform{Type: TransformDH, ID: dh})
	}
	ts = append(ts, Transform{Type: TransformESN, ID: ESNNone})
	return Proposal{Number: number, Protocol: ProtoESP, SPI: spi, Transforms: ts}
}
