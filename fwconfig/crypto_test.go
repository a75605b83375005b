package fwconfig

import (
	"net/netip"
	"slices"
	"testing"
)

func cryptoBase() Config {
	c := base()
	c.CryptoMaps = []CryptoMap{{
		Name: "outside_map", Seq: 10, Interface: "outside", Peer: netip.MustParseAddr("198.18.2.50"),
		PreSharedKey:  "secret",
		IKEv2Policies: []IKEv2Policy{{Encryption: "aes-gcm-256", PRF: "sha256", Group: 19}, {Encryption: "aes-256", Integrity: "sha256", Group: 14}},
		IPsecProposal: []string{"aes-gcm", "aes-gcm-256"},
		MatchAddress:  []CryptoACE{{Source: netip.MustParsePrefix("198.18.1.0/24"), Destination: netip.MustParsePrefix("10.2.0.0/16")}},
	}}
	return c
}

// TestCheckCryptoMaps: each mistake in a crypto map is reported at its
// field path, and nothing else is.
func TestCheckCryptoMaps(t *testing.T) {
	if ps := Check(cryptoBase()); len(ps) != 0 {
		t.Fatalf("base crypto config: %v", ps)
	}
	for _, tc := range []struct {
		name   string
		break_ func(m *CryptoMap)
		want   string
	}{
		{"unknown interface", func(m *CryptoMap) { m.Interface = "dmz" }, "crypto_maps[0].interface"},
		{"no peer", func(m *CryptoMap) { m.Peer = netip.Addr{} }, "crypto_maps[0].peer"},
		{"no key", func(m *CryptoMap) { m.PreSharedKey = "" }, "crypto_maps[0].pre_shared_key"},
		{"3des", func(m *CryptoMap) { m.IKEv2Policies[0].Encryption = "3des" }, "crypto_maps[0].ikev2_policies[0].encryption"},
		{"gcm with integrity", func(m *CryptoMap) { m.IKEv2Policies[0].Integrity = "sha256" }, "crypto_maps[0].ikev2_policies[0].integrity"},
		{"cbc without integrity", func(m *CryptoMap) { m.IKEv2Policies[1].Integrity = "" }, "crypto_maps[0].ikev2_policies[1].integrity"},
		{"group 2", func(m *CryptoMap) { m.IKEv2Policies[1].Group = 2 }, "crypto_maps[0].ikev2_policies[1].group"},
		{"esp cbc", func(m *CryptoMap) { m.IPsecProposal[1] = "aes-256" }, "crypto_maps[0].ipsec_proposal[1]"},
		{"no acl", func(m *CryptoMap) { m.MatchAddress = nil }, "crypto_maps[0].match_address"},
		{"bad acl", func(m *CryptoMap) { m.MatchAddress[0].Destination = netip.Prefix{} }, "crypto_maps[0].match_address[0].destination"},
	} {
		c := cryptoBase()
		tc.break_(&c.CryptoMaps[0])
		var paths []string
		for _, p := range Check(c) {
			paths = append(paths, p.Path)
		}
		if !slices.Equal(paths, []string{tc.want}) {
			t.Errorf("%s: problems at %v, want [%s]", tc.name, paths, tc.want)
		}
	}
}
