package api

import (
	"context"
	"net/netip"
)

// Crypto is a unit's IKE and IPsec SA table: the IKE SAs it holds (the
// active's own, or the standby's replicated copy) and the child SAs in its
// data plane (installed on the active only).
type Crypto struct {
	Unit   string `json:"unit"`
	Active bool   `json:"active"`
	// Replicated says whether the table rides the state link
	// (failover.replicate.ipsec).
	Replicated bool      `json:"replicated"`
	IKE        []IKESA   `json:"ike"`
	IPsec      []IPsecSA `json:"ipsec"`
}

// IKESA is one IKEv2 SA (show crypto ikev2 sa).
type IKESA struct {
	CryptoMap     string         `json:"crypto_map,omitempty"`
	Local         netip.AddrPort `json:"local"`
	Remote        netip.AddrPort `json:"remote"`
	SPIi          string         `json:"spi_i"`
	SPIr          string         `json:"spi_r"`
	Suite         string         `json:"suite"`
	PeerID        string         `json:"peer_id"`
	NATPeer       bool           `json:"nat_peer"`
	NextMessageID uint32         `json:"next_message_id"`
	Children      []ChildSA      `json:"children"`
}

// ChildSA is a child SA as its IKE SA records it.
type ChildSA struct {
	InSPI    string   `json:"in_spi"`
	OutSPI   string   `json:"out_spi"`
	Suite    string   `json:"suite"`
	LocalTS  []string `json:"local_ts"`
	RemoteTS []string `json:"remote_ts"`
}

// IPsecSA is a child SA in the data plane with its counters (show crypto
// ipsec sa).
type IPsecSA struct {
	Interface    string         `json:"interface"`
	Local        netip.Addr     `json:"local"`
	Peer         netip.AddrPort `json:"peer"`
	InSPI        string         `json:"in_spi"`
	OutSPI       string         `json:"out_spi"`
	LocalTS      []string       `json:"local_ts"`
	RemoteTS     []string       `json:"remote_ts"`
	Encaps       uint64         `json:"encaps"`
	Decaps       uint64         `json:"decaps"`
	EncapBytes   uint64         `json:"encap_bytes"`
	DecapBytes   uint64         `json:"decap_bytes"`
	ReplayDrops  uint64         `json:"replay_drops"`
	AuthDrops    uint64         `json:"auth_drops"`
	LeaseDrops   uint64         `json:"lease_drops"`
	PolicyDrops  uint64         `json:"policy_drops"`
	NextSeq      uint64         `json:"next_seq"`
	LeaseLimit   uint64         `json:"lease_limit"`
	ReplayTop    uint32         `json:"replay_top"`
	ReplayWindow int            `json:"replay_window"`
}

// Crypto returns the unit's IKE and IPsec SAs.
func (c *Client) Crypto(ctx context.Context) (Crypto, error) {
	var out Crypto
	return out, c.do(ctx, "GET", "/v1/crypto", nil, &out)
}
