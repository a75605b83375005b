package ike

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
)

const (
	gcmIVLen   = 8  // explicit IV of AES-GCM in IKE (RFC 5282 §3.1)
	gcmICVLen  = 16 // AES-GCM-16
	cbcIVLen   = aes.BlockSize
	hmacICVLen = 16 // AUTH_HMAC_SHA2_256_128
)

// skCipher protects SK payloads in one direction: AES-GCM-16 (RFC 5282) or
// AES-CBC with HMAC-SHA-256-128 (RFC 7296 §3.14, RFC 4868).
type skCipher struct {
	gcm   cipher.AEAD
	salt  []byte
	cbc   cipher.Block
	integ []byte
}

func newSKCipher(s Suite, encKey, integKey []byte) (*skCipher, error) {
	if s.aead() {
		n := len(encKey) - 4
		block, err := aes.NewCipher(encKey[:n])
		if err != nil {
			return nil, err
		}
		g, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		return &skCipher{gcm: g, salt: encKey[n:]}, nil
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	if s.Integ != IntegSHA256 {
		return nil, fmt.Errorf("ike: integrity algorithm %d not supported", s.Integ)
	}
	return &skCipher{cbc: block, integ: integKey}, nil
}

func (c *skCipher) overhead() (iv, icv int) {
	if c.gcm != nil {
		return gcmIVLen, gcmICVLen
	}
	return cbcIVLen, hmacICVLen
}

// seal builds the whole encrypted message: header, SK payload holding ps.
// The IV is random: with GCM, a counter or the message ID would repeat if a
// standby that took over recomputed a response the old active had sent
// with different content under the same keys.
func (c *skCipher) seal(h Header, ps []Payload, rand io.Reader) ([]byte, error) {
	inner := appendPayloads(nil, ps)
	ivLen, icvLen := c.overhead()
	padLen := 0
	if c.cbc != nil {
		padLen = (aes.BlockSize - (len(inner)+1)%aes.BlockSize) % aes.BlockSize
	}
	plain := append(inner, make([]byte, padLen+1)...)
	plain[len(plain)-1] = byte(padLen)
	skLen := payloadHeaderLen + ivLen + len(plain) + icvLen
	h.NextPayload = PayloadSK
	h.Length = uint32(HeaderLen + skLen)
	first := PayloadNone
	if len(ps) > 0 {
		first = ps[0].Type
	}
	b := appendHeader(make([]byte, 0, h.Length), h)
	b = append(b, byte(first), 0)
	b = binary.BigEndian.AppendUint16(b, uint16(skLen))
	aadEnd := len(b)
	iv := make([]byte, ivLen)
	if _, err := io.ReadFull(rand, iv); err != nil {
		return nil, err
	}
	b = append(b, iv...)
	if c.gcm != nil {
		nonce := append(append(make([]byte, 0, 12), c.salt...), iv...)
		return c.gcm.Seal(b, nonce, plain, b[:aadEnd]), nil
	}
	ctStart := len(b)
	b = append(b, plain...)
	cipher.NewCBCEncrypter(c.cbc, iv).CryptBlocks(b[ctStart:], b[ctStart:])
	m := hmac.New(sha256.New, c.integ)
	m.Write(b)
	return m.Sum(b)[:len(b)+hmacICVLen], nil
}

// open checks and decrypts the SK payload sk of message raw and returns the
// inner payload chain. It never modifies raw.
func (c *skCipher) open(raw []byte, sk Payload) ([]Payload, error) {
	ivLen, icvLen := c.overhead()
	body := sk.Body
	if len(body) < ivLen+icvLen+1 {
		return nil, fmt.Errorf("%w: encrypted payload of %d bytes", ErrShort, len(body))
	}
	iv, ct := body[:ivLen], body[ivLen:]
	var plain []byte
	if c.gcm != nil {
		nonce := append(append(make([]byte, 0, 12), c.salt...), iv...)
		var err error
		plain, err = c.gcm.Open(nil, nonce, ct, raw[:sk.Offset+payloadHeaderLen])
		if err != nil {
			return nil, ErrIntegrity
		}
	} else {
		ct, icv := ct[:len(ct)-icvLen], ct[len(ct)-icvLen:]
		m := hmac.New(sha256.New, c.integ)
		m.Write(raw[:len(raw)-icvLen])
		if subtle.ConstantTimeCompare(m.Sum(nil)[:icvLen], icv) != 1 {
			return nil, ErrIntegrity
		}
		if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
			return nil, fmt.Errorf("%w: CBC ciphertext of %d bytes", ErrSyntax, len(ct))
		}
		plain = make([]byte, len(ct))
		cipher.NewCBCDecrypter(c.cbc, iv).CryptBlocks(plain, ct)
	}
	pad := int(plain[len(plain)-1])
	if pad+1 > len(plain) {
		return nil, fmt.Errorf("%w: pad length %d", ErrSyntax, pad)
	}
	inner := plain[:len(plain)-1-pad]
	return parseChain(inner, 0, sk.Next)
}
