package render

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/falab/falab/api"
)

// TestShowCrypto: both show crypto texts carry what an operator compares
// between the units: SPIs, message ID, counters, replay top and lease.
func TestShowCrypto(t *testing.T) {
	c := api.Crypto{Unit: "fw-b", Replicated: true,
		IKE: []api.IKESA{{Local: netip.MustParseAddrPort("198.18.2.1:4500"), Remote: netip.MustParseAddrPort("198.18.2.50:4500"),
			SPIi: "0000000000001111", SPIr: "0000000000002222", Suite: "aes256gcm16-prfsha256-ecp256", NextMessageID: 7,
			Children: []api.ChildSA{{InSPI: "c1000001", OutSPI: "d2000002", LocalTS: []string{"198.18.1.0/24"}, RemoteTS: []string{"198.19.20.0/24"}}}}},
		IPsec: []api.IPsecSA{{Interface: "outside", Local: netip.MustParseAddr("198.18.2.1"), Peer: netip.MustParseAddrPort("198.18.2.50:4500"),
			InSPI: "c1000001", OutSPI: "d2000002", Encaps: 11, Decaps: 12, NextSeq: 12, LeaseLimit: 65537, ReplayTop: 12, ReplayWindow: 1024}}}
	var b strings.Builder
	if err := ShowCryptoIKEv2SA(&b, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"standby's replicated copy", "198.18.2.50/4500", "0000000000002222", "next message id 7", "ESP spi in/out: 0xc1000001/0xd2000002"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("show crypto ikev2 sa lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := ShowCryptoIPsecSA(&b, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#pkts encaps: 11", "#pkts decaps: 12", "current inbound spi : C1000001", "highest sequence number accepted: 12", "leased up to: 65537"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("show crypto ipsec sa lacks %q:\n%s", want, b.String())
		}
	}
}
