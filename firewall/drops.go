package firewall

import "fmt"

// DropReason says why the firewall discarded a frame, like a line of the
// ASA's "show asp drop".
type DropReason uint8

// Drop reasons. The zero value is not a drop.
const (
	dropNone                 DropReason = iota
	DropTruncated                       // frame or header shorter than its fields say
	DropBadIPHeader                     // IPv4 version, header length or total length wrong
	DropBadIPChecksum                   // IPv4 header checksum does not verify
	DropBadL4Header                     // TCP, UDP or ICMP header malformed
	DropTTLExpired                      // TTL would reach zero on forwarding
	DropNoRoute                         // no route to the destination
	DropNoAdjacency                     // next hop unresolved and its ARP queue full
	DropARPTimeout                      // next hop never answered ARP; queued frames dropped
	DropNoConnection                    // TCP segment or ICMP reply matching no connection
	DropACLDeny                         // denied by the ingress access list
	DropSecurityLevel                   // lower to higher (or equal) security level without an ACL
	DropNATExhausted                    // no PAT port left for the mapped address
	DropNotActive                       // unit is standby and does not forward
	DropInvalidTCPFlags                 // impossible TCP flag combination
	DropFragment                        // IPv4 fragments are not reassembled
	DropUnsupportedProtocol             // IP protocol or ICMP type the firewall does not handle
	DropUnsupportedEtherType            // neither IPv4 nor ARP
	DropNotForUs                        // destination MAC is not the unit's
	DropToSelf                          // addressed to the unit and not answered (only ping is)
	DropIntraInterface                  // would leave by the interface it came in on
	DropBadARP                          // ARP that is not Ethernet/IPv4 or is malformed
	DropTxError                         // the egress port failed to send
	DropNoPort                          // the egress interface has no attached port
	DropConnConflict                    // a new flow's reply tuple is owned by another connection
	DropBadSourceMAC                    // transparent mode: source MAC multicast, zero or one of the units' own
	DropARPConflict                     // ARP claims a known neighbour's address for another MAC (the old MAC is probed)
	DropARPAddrConflict                 // ARP from another station claims one of the unit's own addresses
	DropARPNonConnected                 // ARP for the unit from a sender off the interface's subnet
	DropInvalidNextHop                  // would ARP for an address that cannot be a neighbour (off-subnet, network, broadcast, zero)
	DropMartianSource                   // source 0/8, 127/8, multicast, 240/4, a directed broadcast or the unit's own address
	DropMartianDest                     // destination 0/8, 127/8, 240/4 or a connected subnet's network or broadcast address
	DropLandAttack                      // source equals destination
	DropRPFViolated                     // the route back to the source leaves by another interface (ip verify reverse-path)
	DropIPOptions                       // an IP option other than EOL, NOP and Router Alert
	DropICMPRedirect                    // ICMP redirects are never forwarded across the firewall
	numDropReasons
)

var dropNames = [numDropReasons]string{
	dropNone:                 "none",
	DropTruncated:            "truncated",
	DropBadIPHeader:          "bad-ip-header",
	DropBadIPChecksum:        "bad-ip-checksum",
	DropBadL4Header:          "bad-l4-header",
	DropTTLExpired:           "ttl-expired",
	DropNoRoute:              "no-route",
	DropNoAdjacency:          "no-adjacency",
	DropARPTimeout:           "arp-timeout",
	DropNoConnection:         "no-connection",
	DropACLDeny:              "acl-deny",
	DropSecurityLevel:        "security-level",
	DropNATExhausted:         "nat-exhausted",
	DropNotActive:            "not-active",
	DropInvalidTCPFlags:      "invalid-tcp-flags",
	DropFragment:             "ip-fragment",
	DropUnsupportedProtocol:  "unsupported-protocol",
	DropUnsupportedEtherType: "unsupported-ethertype",
	DropNotForUs:             "l2-not-for-us",
	DropToSelf:               "to-self",
	DropIntraInterface:       "intra-interface",
	DropBadARP:               "bad-arp",
	DropTxError:              "tx-error",
	DropNoPort:               "no-port",
	DropConnConflict:         "conn-conflict",
	DropBadSourceMAC:         "l2-bad-source",
	DropARPConflict:          "arp-conflict",
	DropARPAddrConflict:      "arp-addr-conflict",
	DropARPNonConnected:      "arp-nonconnected",
	DropInvalidNextHop:       "arp-invalid-target",
	DropMartianSource:        "martian-source",
	DropMartianDest:          "martian-destination",
	DropLandAttack:           "land-attack",
	DropRPFViolated:          "rpf-violated",
	DropIPOptions:            "ip-options",
	DropICMPRedirect:         "icmp-redirect",
}

// String returns the reason's name as "show asp drop" would print it.
func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// MarshalText makes the reason a readable JSON object key.
func (r DropReason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }
