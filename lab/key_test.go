package lab

import (
	"testing"

	"github.com/falab/falab/api"
)

// TestFailoverKey: a passphrase gives the same key for the same lab every
// time and different keys in different labs; a raw hex key is used as it
// is; no key gives a fresh random one.
func TestFailoverKey(t *testing.T) {
	get := func(lab, text string) api.Key {
		t.Helper()
		k, err := FailoverKey(lab, text)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	a1, a2 := get("default", "correct horse"), get("default", "correct horse")
	if a1 != a2 {
		t.Error("the same lab and passphrase gave two keys")
	}
	if get("other", "correct horse") == a1 {
		t.Error("two labs with the same passphrase share a key")
	}
	if get("default", "correct horsf") == a1 {
		t.Error("two passphrases gave the same key")
	}
	if a1.IsZero() {
		t.Error("zero key")
	}

	const raw = "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef"
	want, err := api.ParseKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := get("default", raw); got != want {
		t.Errorf("raw key: got %s, want the key itself", got.Hex())
	}
	if r1, r2 := get("default", ""), get("default", ""); r1 == r2 || r1.IsZero() {
		t.Error("no key should give a fresh random key each time")
	}
}
