//go:build race

package firewall

// raceEnabled: the race detector instruments crypto/cipher, whose GCM then
// allocates; allocation counts are asserted without it.
const raceEnabled = true
