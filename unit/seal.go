package unit

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"

	"github.com/falab/falab/replicate"
)

// Hellos and data-interface probes are authenticated with the lab's
// failover key, so that a host on a data network cannot forge a probe
// answer (and so hold off a takeover) nor a hello. Each message is
// timestamp(8) | body | HMAC-SHA256(key', timestamp|body)[:16]; a message
// older than maxSealAge is refused, so a recorded hello cannot be replayed
// later. Both units share one machine's clock.
const (
	sealMACLen = 16
	maxSealAge = 2 * time.Second
)

func sealKey(key replicate.Key, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, key[:], nil, "falab "+purpose, 32)
	if err != nil {
		panic(err) // only for impossible lengths
	}
	return k
}

func seal(key replicate.Key, purpose string, body []byte) []byte {
	out := make([]byte, 8, 8+len(body)+sealMACLen)
	binary.BigEndian.PutUint64(out, uint64(time.Now().UnixNano()))
	out = append(out, body...)
	m := hmac.New(sha256.New, sealKey(key, purpose))
	m.Write(out)
	return m.Sum(out)[:len(out)+sealMACLen]
}

// Reasons open refuses a message.
var (
	errSealAuth  = errors.New("failed authentication (wrong failover key?)")
	errSealStale = errors.New("too old (sent more than 2s ago)")
)

func open(key replicate.Key, purpose string, msg []byte) ([]byte, bool) {
	b, err := openErr(key, purpose, msg)
	return b, err == nil
}

// openErr is open with the reason: a stale message (a frozen unit's
// backlog, a replay) is not an authentication failure.
func openErr(key replicate.Key, purpose string, msg []byte) ([]byte, error) {
	if len(msg) < 8+sealMACLen {
		return nil, errSealAuth
	}
	body, mac := msg[:len(msg)-sealMACLen], msg[len(msg)-sealMACLen:]
	m := hmac.New(sha256.New, sealKey(key, purpose))
	m.Write(body)
	if !hmac.Equal(m.Sum(nil)[:sealMACLen], mac) {
		return nil, errSealAuth
	}
	ts := time.Unix(0, int64(binary.BigEndian.Uint64(body)))
	if age := time.Since(ts); age > maxSealAge || age < -maxSealAge {
		return nil, errSealStale
	}
	return body[8:], nil
}

func sealHello(key replicate.Key, b []byte) []byte { return seal(key, "hello", b) }
