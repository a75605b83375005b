package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// KeyLen is the failover key's length in bytes.
const KeyLen = 32

// Key is a lab's failover key, shared by both units: it authenticates the
// hellos and the state stream. The lab makes it; the unit process reads it
// from the key file its config names (KeyFile) and hands it to the data
// plane.
type Key [KeyLen]byte

// NewKey returns a fresh random key (one per lab run).
func NewKey() (Key, error) {
	var k Key
	if _, err := io.ReadFull(rand.Reader, k[:]); err != nil {
		return Key{}, fmt.Errorf("generating failover key: %w", err)
	}
	return k, nil
}

// ErrBadKey reports a key string that is not 64 hex digits.
var ErrBadKey = errors.New("failover key must be 64 hex digits")

// ParseKey decodes a key written by Key.Hex.
func ParseKey(s string) (Key, error) {
	var k Key
	if len(s) != 2*KeyLen {
		return Key{}, fmt.Errorf("%w: got %d characters", ErrBadKey, len(s))
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return Key{}, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return k, nil
}

// Hex returns the key as 64 hex digits, the key file's form.
func (k Key) Hex() string { return hex.EncodeToString(k[:]) }

// String redacts the key so it never lands in a log by accident.
func (k Key) String() string { return "api.Key(redacted)" }

// WriteKeyFile stores k at path as one line of hex (mode 0600).
func WriteKeyFile(path string, k Key) error {
	return os.WriteFile(path, []byte(k.Hex()+"\n"), 0o600)
}

// ReadKeyFile reads a key file written by WriteKeyFile.
func ReadKeyFile(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, err
	}
	k, err := ParseKey(strings.TrimSpace(string(b)))
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// IsZero reports whether k is the zero key (never configured).
func (k Key) IsZero() bool { return k == Key{} }
