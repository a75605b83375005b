package ike

import (
	"crypto/ecdh"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// errBadPublic is a peer's DH public value that is malformed or degenerate.
var errBadPublic = errors.New("ike: invalid DH public value")

// dhKey is one side of a Diffie-Hellman exchange in the IKE encoding of its
// group: MODP values padded to the prime's length, ECP as x|y without the
// 0x04 prefix and the shared secret as x only (RFC 5903), Curve25519 as the
// raw 32 bytes (RFC 8031).
type dhKey interface {
	Public() []byte
	Shared(peer []byte) ([]byte, error)
}

// supportedDH reports whether the group is implemented.
func supportedDH(g uint16) bool {
	return g == DHMODP2048 || g == DHECP256 || g == DHCurve25519
}

func newDH(group uint16, rand io.Reader) (dhKey, error) {
	switch group {
	case DHMODP2048:
		return newMODP(rand)
	case DHECP256:
		k, err := ecdh.P256().GenerateKey(rand)
		if err != nil {
			return nil, err
		}
		return ecpKey{k}, nil
	case DHCurve25519:
		k, err := ecdh.X25519().GenerateKey(rand)
		if err != nil {
			return nil, err
		}
		return x25519Key{k}, nil
	}
	return nil, fmt.Errorf("ike: DH group %d not supported", group)
}

// modp2048 is the 2048-bit MODP group, generator 2 (RFC 3526 §3).
var modp2048, _ = new(big.Int).SetString(
	"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1"+
		"29024E088A67CC74020BBEA63B139B22514A08798E3404DD"+
		"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245"+
		"E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"+
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D"+
		"C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"+
		"83655D23DCA3AD961C62F356208552BB9ED529077096966D"+
		"670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"+
		"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9"+
		"DE2BCBF6955817183995497CEA956AE515D2261898FA0510"+
		"15728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)

const modpLen = 256

type modpKey struct{ x, y *big.Int }

func newMODP(rand io.Reader) (dhKey, error) {
	// A 256-bit exponent gives the group's ~112-bit strength twice over
	// (as strongSwan does) and keeps the exponentiation cheap.
	buf := make([]byte, 32)
	if _, err := io.ReadFull(rand, buf); err != nil {
		return nil, err
	}
	x := new(big.Int).SetBytes(buf)
	x.SetBit(x, 255, 1)
	return modpKey{x: x, y: new(big.Int).Exp(big.NewInt(2), x, modp2048)}, nil
}

func (k modpKey) Public() []byte { return k.y.FillBytes(make([]byte, modpLen)) }

func (k modpKey) Shared(peer []byte) ([]byte, error) {
	if len(peer) != modpLen {
		return nil, errBadPublic
	}
	y := new(big.Int).SetBytes(peer)
	pm1 := new(big.Int).Sub(modp2048, big.NewInt(1))
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(pm1) >= 0 {
		return nil, errBadPublic
	}
	return new(big.Int).Exp(y, k.x, modp2048).FillBytes(make([]byte, modpLen)), nil
}

type ecpKey struct{ k *ecdh.PrivateKey }

func (k ecpKey) Public() []byte { return k.k.PublicKey().Bytes()[1:] }

func (k ecpKey) Shared(peer []byte) ([]byte, error) {
	if len(peer) != 64 {
		return nil, errBadPublic
	}
	pub, err := ecdh.P256().NewPublicKey(append([]byte{4}, peer...))
	if err != nil {
		return nil, errBadPublic
	}
	s, err := k.k.ECDH(pub)
	if err != nil {
		return nil, errBadPublic
	}
	return s, nil
}

type x25519Key struct{ k *ecdh.PrivateKey }

func (k x25519Key) Public() []byte { return k.k.PublicKey().Bytes() }

func (k x25519Key) Shared(peer []byte) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(peer)
	if err != nil {
		return nil, errBadPublic
	}
	s, err := k.k.ECDH(pub)
	if err != nil { // all-zero output: a low-order point
		return nil, errBadPublic
	}
	return s, nil
}
