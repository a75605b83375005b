package firewall

import "fmt"

// DropReason says why the firewall discarded a frame, like a line of the
// ASA's "show asp drop".
type DropReason uint8

// Drop reasons. The zero value is not a drop.
const (
	dropNone                  DropReason = iota
	DropTruncated                        // frame or header shorter than its fields say
	DropBadIPHeader                      // IPv4 version, header length or total length wrong
	DropBadIPChecksum                    // IPv4 header checksum does not verify
	DropBadL4Header                      // TCP, UDP or ICMP header malformed
	DropTTLExpired                       // TTL would reach zero on forwarding
	DropNoRoute                          // no route to the destination
	DropNoAdjacency                      // next hop unresolved and its ARP queue full
	DropARPTimeout                       // next hop never answered ARP; queued frames dropped
	DropNoConnection                     // TCP segment or ICMP reply matching no connection
	DropACLDeny                          // denied by the ingress access list
	DropSecurityLevel                    // lower to higher (or equal) security level without an ACL
	DropNATExhausted                     // no PAT port left for the mapped address
	DropNotActive                        // unit is standby and does not forward
	DropInvalidTCPFlags                  // impossible TCP flag combination
	DropFragInvalid                      // fragment malformed: empty, not a multiple of 8, past 65535 bytes or inconsistent with its datagram
	DropFragOverlap                      // fragment overlaps another of its datagram (teardrop); the datagram is dropped
	DropFragDuplicate                    // fragment repeats one already held; the copy is dropped
	DropFragChainTooLong                 // datagram has more fragments than the chain limit
	DropFragQueueFull                    // the interface's reassembly queue or the unit's fragment memory is full
	DropFragTimeout                      // datagram not complete within the fragment timeout
	DropFragTooSmall                     // first fragment does not hold the whole L4 header (RFC 1858)
	DropFragNeeded                       // larger than the egress MTU with DF set; ICMP fragmentation needed sent
	DropUnsupportedProtocol              // IP protocol or ICMP type the firewall does not handle
	DropUnsupportedEtherType             // neither IPv4 nor ARP
	DropNotForUs                         // destination MAC is not the unit's
	DropToSelf                           // addressed to the unit and not answered (only ping is)
	DropIntraInterface                   // would leave by the interface it came in on
	DropBadARP                           // ARP that is not Ethernet/IPv4 or is malformed
	DropTxError                          // the egress port failed to send
	DropNoPort                           // the egress interface has no attached port
	DropConnConflict                     // a new flow's reply tuple is owned by another connection
	DropBadSourceMAC                     // transparent mode: source MAC multicast, zero or one of the units' own
	DropTCPSeqPastWindow                 // TCP segment outside the receiver's window (ASA tcp-seq-past-win); a forged or stale segment
	DropTCPInvalidAck                    // TCP ack of data never sent or far behind (ASA tcp-invalid-ack)
	DropTCPRSTNotExact                   // in-window TCP RST whose sequence is not the next expected one (RFC 5961 3.2; the host's challenge ACK makes a real peer resend it exactly)
	DropTCPNotSyn                        // non-SYN segment from a side whose SYN was never seen (ASA tcp-not-syn)
	DropConnWrongInterface               // matches a connection but arrived on another interface than the connection uses for that direction
	DropPortZero                         // TCP or UDP source or destination port 0, never legitimate
	DropUDPLength                        // UDP length field disagrees with the IP payload length (ASA invalid-udp-length)
	DropNATHostQuota                     // the real host holds its quota of PAT ports (Limits.PATPortsPerHost)
	DropEmbryonicLimit                   // a new TCP flow beyond the half-open connection limits (Limits.Embryonic*)
	DropMACLimit                         // transparent mode: a new station beyond the interface's MAC limit (Limits.MACsPerInterface)
	DropARPConflict                      // ARP claims a known neighbour's address for another MAC (the old MAC is probed)
	DropARPAddrConflict                  // ARP from another station claims one of the unit's own addresses
	DropARPNonConnected                  // ARP for the unit from a sender off the interface's subnet
	DropInvalidNextHop                   // would ARP for an address that cannot be a neighbour (off-subnet, network, broadcast, zero)
	DropMartianSource                    // source 0/8, 127/8, multicast, 240/4, a directed broadcast or the unit's own address
	DropMartianDest                      // destination 0/8, 127/8, 240/4 or a connected subnet's network or broadcast address
	DropLandAttack                       // source equals destination
	DropRPFViolated                      // the route back to the source leaves by another interface (ip verify reverse-path)
	DropIPOptions                        // an IP option other than EOL, NOP and Router Alert
	DropICMPRedirect                     // ICMP redirects are never forwarded across the firewall
	DropLeaseExpired                     // active, but its forwarding lease lapsed: the process was frozen and its role is not yet confirmed
	DropInspect                          // an application inspection engine refused the packet
	DropGTPMalformed                     // GTP: truncated, inconsistent length, missing mandatory IE
	DropGTPBadVersion                    // GTP: not GTPv1 on a GTPv1 port
	DropGTPUnknownMessage                // GTP: message type not defined for the port
	DropGTPUnexpectedResponse            // GTP: response matching no outstanding request
	DropGTPRequestLimit                  // GTP: outstanding requests at the request-queue limit
	DropGTPTunnelLimit                   // GTP: PDP contexts at the tunnel-limit
	DropGTPUnknownTEID                   // GTP: G-PDU or signalling towards a (GSN address, TEID) of no PDP context
	DropIPSRequest                       // the service module saw a signature in the flow (module.go)
	DropIPSFailClose                     // the service module could not inspect the segment and fails closed
	DropIPSReassemblyFull                // the service module's out-of-order buffer is full; the sender resends
	DropUAuthSteerFull                   // too many flows steered to the authentication listener at once
	DropUAuthListener                    // the unit's stack refused a segment steered to the authentication listener
	DropBoxError                         // the unit's own IP stack (box) refused a packet addressed to the unit
	DropESPNoSA                          // ESP (UDP 4500) to the unit with an SPI of no inbound SA
	DropESPAuth                          // ESP whose integrity check fails, or malformed (short, bad padding, not tunnel mode)
	DropESPReplay                        // ESP sequence number replayed or left of the anti-replay window
	DropESPPolicy                        // a decrypted packet outside its SA's traffic selectors
	DropESPLease                         // outbound ESP sequence lease exhausted (the standby has not acknowledged the next block)
	DropSIPMalformed                     // SIP inspection: not a SIP message its parser accepts
	DropSIPUnexpected                    // SIP inspection: a response, ACK, BYE or CANCEL matching no transaction or session
	DropSIPTableFull                     // SIP inspection: session, transaction or pinhole table full
	DropCTIQBENoSession                  // CTIQBE inspection (lab model): a message needing a session record this unit lacks (not replicated)
	DropCTIQBEMalformed                  // CTIQBE inspection (lab model): a message that does not decode or contradicts the session
	DropCTIQBEOutOfOrder                 // CTIQBE inspection (lab model): a segment past a gap in the stream
	DropCTIQBETableFull                  // CTIQBE inspection (lab model): connection or call table full
	DropBadOffload                       // a virtio_net_hdr (GSO, checksum offload) the frame contradicts or the firewall cannot honour
	numDropReasons
)

var dropNames = [numDropReasons]string{
	dropNone:                  "none",
	DropTruncated:             "truncated",
	DropBadIPHeader:           "bad-ip-header",
	DropBadIPChecksum:         "bad-ip-checksum",
	DropBadL4Header:           "bad-l4-header",
	DropTTLExpired:            "ttl-expired",
	DropNoRoute:               "no-route",
	DropNoAdjacency:           "no-adjacency",
	DropARPTimeout:            "arp-timeout",
	DropNoConnection:          "no-connection",
	DropACLDeny:               "acl-deny",
	DropSecurityLevel:         "security-level",
	DropNATExhausted:          "nat-exhausted",
	DropNotActive:             "not-active",
	DropInvalidTCPFlags:       "invalid-tcp-flags",
	DropFragInvalid:           "invalid-fragment",
	DropFragOverlap:           "fragment-overlap",
	DropFragDuplicate:         "fragment-duplicate",
	DropFragChainTooLong:      "fragment-chain-too-long",
	DropFragQueueFull:         "fragment-queue-full",
	DropFragTimeout:           "fragment-timeout",
	DropFragTooSmall:          "fragment-too-small",
	DropFragNeeded:            "fragmentation-needed",
	DropUnsupportedProtocol:   "unsupported-protocol",
	DropUnsupportedEtherType:  "unsupported-ethertype",
	DropNotForUs:              "l2-not-for-us",
	DropToSelf:                "to-self",
	DropIntraInterface:        "intra-interface",
	DropBadARP:                "bad-arp",
	DropTxError:               "tx-error",
	DropNoPort:                "no-port",
	DropConnConflict:          "conn-conflict",
	DropBadSourceMAC:          "l2-bad-source",
	DropTCPSeqPastWindow:      "tcp-seq-past-win",
	DropTCPInvalidAck:         "tcp-invalid-ack",
	DropTCPRSTNotExact:        "tcp-rst-not-exact",
	DropTCPNotSyn:             "tcp-not-syn",
	DropConnWrongInterface:    "conn-wrong-interface",
	DropPortZero:              "invalid-port-zero",
	DropUDPLength:             "invalid-udp-length",
	DropNATHostQuota:          "nat-host-quota",
	DropEmbryonicLimit:        "embryonic-limit",
	DropMACLimit:              "l2-mac-limit",
	DropARPConflict:           "arp-conflict",
	DropARPAddrConflict:       "arp-addr-conflict",
	DropARPNonConnected:       "arp-nonconnected",
	DropInvalidNextHop:        "arp-invalid-target",
	DropMartianSource:         "martian-source",
	DropMartianDest:           "martian-destination",
	DropLandAttack:            "land-attack",
	DropRPFViolated:           "rpf-violated",
	DropIPOptions:             "ip-options",
	DropICMPRedirect:          "icmp-redirect",
	DropLeaseExpired:          "failover-lease-expired",
	DropInspect:               "inspect-drop",
	DropGTPMalformed:          "gtp-malformed",
	DropGTPBadVersion:         "gtp-bad-version",
	DropGTPUnknownMessage:     "gtp-unknown-message",
	DropGTPUnexpectedResponse: "gtp-unexpected-response",
	DropGTPRequestLimit:       "gtp-request-limit",
	DropGTPTunnelLimit:        "gtp-tunnel-limit",
	DropGTPUnknownTEID:        "gtp-unknown-teid",
	DropIPSRequest:            "ips-request",
	DropIPSFailClose:          "ips-fail-close",
	DropIPSReassemblyFull:     "ips-reassembly-full",
	DropUAuthSteerFull:        "uauth-steer-full",
	DropUAuthListener:         "uauth-listener-error",
	DropBoxError:              "to-box-error",
	DropESPNoSA:               "ipsec-spi-unknown",
	DropESPAuth:               "ipsec-auth-failed",
	DropESPReplay:             "ipsec-replay",
	DropESPPolicy:             "ipsec-selector-mismatch",
	DropESPLease:              "ipsec-seq-lease-exhausted",
	DropSIPMalformed:          "sip-malformed",
	DropSIPUnexpected:         "sip-unexpected",
	DropSIPTableFull:          "sip-table-full",
	DropCTIQBENoSession:       "ctiqbe-no-session",
	DropCTIQBEMalformed:       "ctiqbe-malformed",
	DropCTIQBEOutOfOrder:      "ctiqbe-out-of-order",
	DropCTIQBETableFull:       "ctiqbe-table-full",
	DropBadOffload:            "bad-offload-header",
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
