package fwconfig

import (
	"fmt"
	"net/netip"
	"slices"
)

// CryptoMap is one site-to-site IPsec peer, the equivalent of an ASA's
//
//	crypto ikev2 policy 10 / encryption aes-gcm-256 / prf sha256 / group 19
//	crypto ipsec ikev2 ipsec-proposal P / protocol esp encryption aes-gcm
//	access-list VPN extended permit ip LOCAL REMOTE
//	crypto map NAME SEQ match address VPN
//	crypto map NAME SEQ set peer PEER
//	crypto map NAME SEQ set ikev2 ipsec-proposal P
//	crypto map NAME interface IF
//	tunnel-group PEER ipsec-attributes / ikev2 {local,remote}-authentication pre-shared-key KEY
//
// The unit is the IKEv2 responder (it never initiates). Traffic matching
// MatchAddress is exempt from NAT (as with the usual identity NAT
// exemption) and leaves through the tunnel.
type CryptoMap struct {
	Name      string     `json:"name"`
	Seq       int        `json:"seq"`
	Interface string     `json:"interface"`
	Peer      netip.Addr `json:"peer"`
	// PreSharedKey authenticates both sides (RFC 7296 §2.15).
	PreSharedKey string `json:"pre_shared_key"`
	// IKEv2Policies are the IKE SA's proposals, most preferred first.
	IKEv2Policies []IKEv2Policy `json:"ikev2_policies"`
	// IPsecProposal lists the ESP encryptions accepted: aes-gcm (128 bits)
	// and aes-gcm-256 (RFC 4106; the data plane does AES-GCM only).
	IPsecProposal []string `json:"ipsec_proposal"`
	// MatchAddress is the crypto ACL: source (local) and destination
	// (remote) networks of the protected traffic.
	MatchAddress []CryptoACE `json:"match_address"`
}

// IKEv2Policy is one "crypto ikev2 policy".
type IKEv2Policy struct {
	Encryption string `json:"encryption"` // aes, aes-256, aes-gcm, aes-gcm-256
	Integrity  string `json:"integrity"`  // sha256, or null (empty) for GCM
	PRF        string `json:"prf"`        // sha256 (empty: sha256)
	Group      int    `json:"group"`      // DH group 14, 19 or 31
}

// CryptoACE is one "permit ip SOURCE DESTINATION" of a crypto ACL.
type CryptoACE struct {
	Source      netip.Prefix `json:"source"`
	Destination netip.Prefix `json:"destination"`
}

// Known algorithm keywords.
var (
	IKEv2Encryptions = []string{"aes", "aes-256", "aes-gcm", "aes-gcm-256"}
	IPsecEncryptions = []string{"aes-gcm", "aes-gcm-256"}
	IKEv2Groups      = []int{14, 19, 31}
)

// cryptoMaps checks the crypto maps.
func (v *checker) cryptoMaps() {
	for i, m := range v.c.CryptoMaps {
		f := fmt.Sprintf("crypto_maps[%d]", i)
		if m.Name == "" {
			v.errf(f+".name", "missing; expected the crypto map's name")
		}
		ic, ok := v.known(f+".interface", m.Interface)
		switch {
		case !m.Peer.Is4():
			v.errf(f+".peer", "%v is not an IPv4 address", m.Peer)
		case ok && ic.Prefix.IsValid() && !ic.Prefix.Masked().Contains(m.Peer) && !v.routedVia(m.Peer, m.Interface):
			v.errf(f+".peer", "%s is neither on %s's subnet nor routed through it (expected a route to the peer)", m.Peer, m.Interface)
		}
		if m.PreSharedKey == "" {
			v.errf(f+".pre_shared_key", "missing; expected the tunnel group's pre-shared key")
		}
		if len(m.IKEv2Policies) == 0 {
			v.errf(f+".ikev2_policies", "none; expected at least one (encryption, integrity, prf, group)")
		}
		for j, p := range m.IKEv2Policies {
			v.ikev2Policy(fmt.Sprintf("%s.ikev2_policies[%d]", f, j), p)
		}
		if len(m.IPsecProposal) == 0 {
			v.errf(f+".ipsec_proposal", "none; expected aes-gcm or aes-gcm-256")
		}
		for j, e := range m.IPsecProposal {
			if !slices.Contains(IPsecEncryptions, e) {
				v.errf(fmt.Sprintf("%s.ipsec_proposal[%d]", f, j), "%q is not supported (expected one of %v: the data plane does AES-GCM)", e, IPsecEncryptions)
			}
		}
		if len(m.MatchAddress) == 0 {
			v.errf(f+".match_address", "none; expected the protected networks (source: local, destination: remote)")
		}
		for j, a := range m.MatchAddress {
			g := fmt.Sprintf("%s.match_address[%d]", f, j)
			if !a.Source.IsValid() || !a.Source.Addr().Is4() {
				v.errf(g+".source", "%v is not an IPv4 network", a.Source)
			}
			if !a.Destination.IsValid() || !a.Destination.Addr().Is4() {
				v.errf(g+".destination", "%v is not an IPv4 network", a.Destination)
			}
		}
	}
}

func (v *checker) ikev2Policy(f string, p IKEv2Policy) {
	gcm := p.Encryption == "aes-gcm" || p.Encryption == "aes-gcm-256"
	switch {
	case !slices.Contains(IKEv2Encryptions, p.Encryption):
		v.errf(f+".encryption", "%q is not supported (expected one of %v)", p.Encryption, IKEv2Encryptions)
	case gcm && p.Integrity != "" && p.Integrity != "null":
		v.errf(f+".integrity", "%q with a GCM encryption (expected null: GCM has its own integrity)", p.Integrity)
	case !gcm && p.Integrity != "sha256":
		v.errf(f+".integrity", "%q is not supported with %s (expected sha256)", p.Integrity, p.Encryption)
	}
	if p.PRF != "" && p.PRF != "sha256" {
		v.errf(f+".prf", "%q is not supported (expected sha256)", p.PRF)
	}
	if !slices.Contains(IKEv2Groups, p.Group) {
		v.errf(f+".group", "%d is not supported (expected one of %v)", p.Group, IKEv2Groups)
	}
}

// routedVia reports whether a static route sends a to interface name.
func (v *checker) routedVia(a netip.Addr, name string) bool {
	for _, r := range v.c.Routes {
		if r.Interface == name && r.Prefix.Contains(a) {
			return true
		}
	}
	return false
}
