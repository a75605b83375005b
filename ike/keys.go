package ike

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
)

// prfSize is the output and preferred key size of PRF_HMAC_SHA2_256, the
// only PRF this package offers.
const prfSize = sha256.Size

// prf is PRF_HMAC_SHA2_256 (RFC 4868) over the concatenation of data.
func prf(key []byte, data ...[]byte) []byte { return prfHash(sha256.New, key, data...) }

// prfHash is HMAC with any hash; the known-answer tests use it with the
// SHA-1 vectors of NIST's CAVS.
func prfHash(h func() hash.Hash, key []byte, data ...[]byte) []byte {
	m := hmac.New(h, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

// errPRFPlusTooLong: prf+ has a one-byte counter, so it yields at most
// 255 blocks (RFC 7296 §2.13).
var errPRFPlusTooLong = errors.New("ike: prf+ output longer than 255 blocks")

// prfPlus is prf+ (RFC 7296 §2.13):
//
//	prf+ (K,S) = T1 | T2 | T3 | T4 | ...
//	T1 = prf (K, S | 0x01)
//	T2 = prf (K, T1 | S | 0x02)
func prfPlus(key, seed []byte, n int) ([]byte, error) {
	return prfPlusHash(sha256.New, key, seed, n)
}

func prfPlusHash(h func() hash.Hash, key, seed []byte, n int) ([]byte, error) {
	size := h().Size()
	if n > 255*size {
		return nil, errPRFPlusTooLong
	}
	out := make([]byte, 0, n+size)
	var t []byte
	for i := 1; len(out) < n; i++ {
		t = prfHash(h, key, t, seed, []byte{byte(i)})
		out = append(out, t...)
	}
	return out[:n], nil
}

// Suite is one IKE SA algorithm set: an encryption algorithm with its key
// size, an integrity algorithm (IntegNone for AES-GCM), the PRF and the DH
// group.
type Suite struct {
	Encr    uint16 `json:"encr"`
	KeyBits uint16 `json:"key_bits"`
	Integ   uint16 `json:"integ"`
	PRF     uint16 `json:"prf"`
	DH      uint16 `json:"dh"`
}

// String names the suite as strongSwan's proposal keywords do.
func (s Suite) String() string {
	enc := fmt.Sprintf("encr%d-%d", s.Encr, s.KeyBits)
	switch s.Encr {
	case EncrAESCBC:
		enc = fmt.Sprintf("aes%d", s.KeyBits)
	case EncrAESGCM16:
		enc = fmt.Sprintf("aes%dgcm16", s.KeyBits)
	}
	if s.Integ == IntegSHA256 {
		enc += "-sha256"
	}
	return enc + "-prfsha256-" + dhName(s.DH)
}

func dhName(g uint16) string {
	switch g {
	case DHMODP2048:
		return "modp2048"
	case DHECP256:
		return "ecp256"
	case DHCurve25519:
		return "curve25519"
	case DHNone:
		return "none"
	}
	return fmt.Sprintf("dh%d", g)
}

// aead reports whether the suite's cipher is combined mode (no integ key).
func (s Suite) aead() bool { return s.Encr == EncrAESGCM16 }

// encrKeyLen is the SK_e length: the AES key, plus a 4-byte salt for GCM
// (RFC 5282 §7.1).
func (s Suite) encrKeyLen() int {
	n := int(s.KeyBits) / 8
	if s.aead() {
		n += 4
	}
	return n
}

func (s Suite) integKeyLen() int {
	if s.Integ == IntegSHA256 {
		return sha256.Size
	}
	return 0
}

// Keys are the seven secrets of an IKE SA (RFC 7296 §2.14).
type Keys struct {
	D, Ai, Ar, Ei, Er, Pi, Pr []byte
}

// deriveIKEKeys splits prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) into the seven
// keys, in the order of RFC 7296 §2.14.
func deriveIKEKeys(s Suite, skeyseed, ni, nr []byte, spii, spir uint64) (Keys, error) {
	seed := append(append(append([]byte{}, ni...), nr...), spiBytes(spii, spir)...)
	ea, ee := s.integKeyLen(), s.encrKeyLen()
	km, err := prfPlus(skeyseed, seed, 3*prfSize+2*ea+2*ee)
	if err != nil {
		return Keys{}, err
	}
	take := func(n int) []byte { k := km[:n:n]; km = km[n:]; return k }
	var k Keys
	k.D = take(prfSize)
	k.Ai, k.Ar = take(ea), take(ea)
	k.Ei, k.Er = take(ee), take(ee)
	k.Pi, k.Pr = take(prfSize), take(prfSize)
	return k, nil
}

func spiBytes(spii, spir uint64) []byte {
	b := make([]byte, 16)
	for i := 0; i < 8; i++ {
		b[i] = byte(spii >> (56 - 8*i))
		b[8+i] = byte(spir >> (56 - 8*i))
	}
	return b
}

// skeyseedInit is SKEYSEED for a new IKE SA: prf(Ni | Nr, g^ir).
func skeyseedInit(ni, nr, shared []byte) []byte {
	return prf(append(append([]byte{}, ni...), nr...), shared)
}

// skeyseedRekey is SKEYSEED for a rekeyed IKE SA:
// prf(SK_d (old), g^ir (new) | Ni | Nr) (RFC 7296 §2.18).
func skeyseedRekey(oldD, shared, ni, nr []byte) []byte {
	return prf(oldD, shared, ni, nr)
}

// childKeyLen is the per-direction key material of an AES-GCM child SA:
// key plus 4-byte salt (RFC 4106 §8.1).
func childKeyLen(keyBits uint16) int { return int(keyBits)/8 + 4 }

// deriveChildKeys is KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) split into
// the initiator-to-responder key first, then the reverse (RFC 7296 §2.17).
// Each is the AES key followed by its 4-byte salt.
func deriveChildKeys(skd, shared, ni, nr []byte, keyBits uint16) (in, out []byte, err error) {
	n := childKeyLen(keyBits)
	seed := append(append(append([]byte{}, shared...), ni...), nr...)
	km, err := prfPlus(skd, seed, 2*n)
	if err != nil {
		return nil, nil, err
	}
	return km[:n:n], km[n:], nil
}

// pskAuth computes the AUTH data for shared-key authentication (RFC 7296
// §2.15): prf(prf(PSK, "Key Pad for IKEv2"), <SignedOctets>) where
// SignedOctets = RealMessage | Nonce of the other side | prf(SK_p, RestOfIDPayload).
func pskAuth(psk, message, otherNonce, skp []byte, id Identity) []byte {
	macedID := prf(skp, id.body())
	return prf(prf(psk, []byte("Key Pad for IKEv2")), message, otherNonce, macedID)
}
