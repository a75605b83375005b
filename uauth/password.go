package uauth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Time    uint32 // passes over memory
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultParams are RFC 9106 section 4's second recommended option (for
// when 2 GiB per hash is too much): t=3, m=64 MiB, p=4.
var DefaultParams = Params{Time: 3, Memory: 64 * 1024, Threads: 4}

// Limits on parameters read from a lab file: a hash that asks for more is
// refused, so a configuration cannot make each login attempt cost gigabytes.
const (
	maxMemory = 256 * 1024 // KiB
	maxTime   = 10
	saltLen   = 16
	keyLen    = 32
)

// ErrBadHash is returned for a password hash that is not an argon2id PHC
// string within the limits above.
var ErrBadHash = errors.New("uauth: not an argon2id password hash")

// Hash is an argon2id password hash.
type Hash struct {
	Params
	Salt []byte
	Key  []byte
}

var b64 = base64.RawStdEncoding

// HashPassword hashes password with a fresh random salt.
func HashPassword(password string, p Params) (Hash, error) {
	if err := p.check(); err != nil {
		return Hash{}, err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return Hash{}, err
	}
	return Hash{Params: p, Salt: salt, Key: argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)}, nil
}

func (p Params) check() error {
	if p.Time == 0 || p.Time > maxTime || p.Threads == 0 || p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory {
		return fmt.Errorf("%w: parameters t=%d m=%d p=%d out of range", ErrBadHash, p.Time, p.Memory, p.Threads)
	}
	return nil
}

// String returns the PHC string form, as a lab file stores it:
// $argon2id$v=19$m=65536,t=3,p=4$SALT$KEY (base64 without padding).
func (h Hash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.Memory, h.Time, h.Threads,
		b64.EncodeToString(h.Salt), b64.EncodeToString(h.Key))
}

// ParseHash reads a PHC string written by String (or by any argon2id tool).
func ParseHash(s string) (Hash, error) {
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return Hash{}, ErrBadHash
	}
	var v int
	if _, err := fmt.Sscanf(f[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Hash{}, fmt.Errorf("%w: version %q", ErrBadHash, f[2])
	}
	var h Hash
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &h.Memory, &h.Time, &h.Threads); err != nil {
		return Hash{}, fmt.Errorf("%w: parameters %q", ErrBadHash, f[3])
	}
	if err := h.check(); err != nil {
		return Hash{}, err
	}
	var err error
	if h.Salt, err = b64.DecodeString(f[4]); err != nil || len(h.Salt) < 8 {
		return Hash{}, fmt.Errorf("%w: salt", ErrBadHash)
	}
	if h.Key, err = b64.DecodeString(f[5]); err != nil || len(h.Key) < 16 || len(h.Key) > 64 {
		return Hash{}, fmt.Errorf("%w: key", ErrBadHash)
	}
	return h, nil
}

// Verify reports whether password hashes to h, comparing in constant time.
func (h Hash) Verify(password string) bool {
	got := argon2.IDKey([]byte(password), h.Salt, h.Time, h.Memory, h.Threads, uint32(len(h.Key)))
	return subtle.ConstantTimeCompare(got, h.Key) == 1
}

// User is one entry of the LOCAL user database.
type User struct {
	Name string
	Hash Hash
}
