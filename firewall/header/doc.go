// Package header provides zero-copy views over the bytes of Ethernet, ARP,
// IPv4, ICMPv4, TCP and UDP headers, in the style of gVisor's
// pkg/tcpip/header: each view is a byte slice type with offset constants
// laid out under the RFC diagram, getters, setters and one validity check
// that must pass before any other method is called.
// It must not import any other falab package, firewall included: it is bytes
// and RFCs only.
//
// Addresses are handled as [4]byte and MAC addresses as byte slices into
// the frame so that reading or rewriting a header never allocates.
//
// The NAT helpers update checksums incrementally (RFC 1624) rather than
// recomputing them, so rewriting an address or a port costs the same for a
// 64-byte and a 1500-byte packet.
package header
