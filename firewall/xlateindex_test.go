package firewall

import (
	"math/rand/v2"
	"testing"
)

// TestXlateIndexAgainstAMap adds and removes xlates at random and checks
// lookups and iteration against a map, through growth, tombstones and
// rebuilds.
func TestXlateIndexAgainstAMap(t *testing.T) {
	var idx xlateIndex
	model := map[xlateKey]*xlate{}
	rng := rand.New(rand.NewPCG(3, 4))
	key := func() xlateKey {
		return xlateKey{kind: NATDynamicPAT, proto: 17, real: [4]byte{10, 0, 0, byte(rng.IntN(64))}, realPort: uint16(rng.IntN(500)), mappedIf: 1}
	}
	for step := range 50_000 {
		k := key()
		if x := model[k]; x != nil {
			if !idx.remove(x) {
				t.Fatalf("step %d: remove %v: not found", step, k)
			}
			delete(model, k)
		} else {
			x := &xlate{key: k}
			idx.put(x)
			model[k] = x
		}
		if got := idx.get(k); got != model[k] {
			t.Fatalf("step %d: get %v = %p, want %p", step, k, got, model[k])
		}
		if step%5000 == 0 {
			seen := 0
			for x := range idx.all() {
				if model[x.key] != x {
					t.Fatalf("step %d: iteration yields %v, not in the model", step, x.key)
				}
				seen++
			}
			if seen != len(model) || idx.live != len(model) {
				t.Fatalf("step %d: iteration yields %d, live %d, model %d", step, seen, idx.live, len(model))
			}
		}
	}
	if idx.remove(&xlate{key: key()}) {
		t.Errorf("removed an xlate never added")
	}
}
