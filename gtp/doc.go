// Package gtp is GTPv1 inspection as an ASA's "inspect gtp" does it: the
// PDP context database and the GTP-U filter.
//
// It is pure: no sockets, no clock of its own, no goroutines. The caller
// hands it UDP payloads together with the packet's addresses (Control for
// UDP 2123, User for UDP 2152) and gets a Verdict back; it passes the
// current time where time matters (Control, Expire). GTPv1-C is parsed with
// github.com/wmnsk/go-gtp; GTP-U is read in place, without allocation,
// because it is the per-packet fast path.
//
// The database follows the ASA: a Create PDP Context Request makes a
// pending context keyed by TID (IMSI + NSAPI); the accepting response
// commits it with both GSNs' signalling and data addresses, the four TEIDs
// and the MS address; Update changes addresses and TEIDs (an SGSN change);
// Delete removes it. G-PDUs pass only towards a (GSN address, TEID) of a
// committed context. Anything malformed or unexpected is dropped with a
// DropReason (the name "show asp drop" would print) and changes no state.
//
// Replication: every commit, update and delete of a committed context is
// reported once as a Change (OnChange) while the inspector's lock is held,
// together with an update of the order-independent Digest. A standby
// installs the same records through Apply, so equal databases give equal
// digests. Pending contexts and outstanding requests are not replicated:
// the ASA replicates established PDP contexts only, and a request that was
// in flight at failover is retransmitted by its GSN (T3-RESPONSE) and seen
// afresh by the new active.
//
// GSN addresses are IPv4 (falab's data plane is IPv4 only); a message that
// names an IPv6 GSN is dropped as malformed.
//
// It must not import falab's data plane (firewall, unit,
// replicate) or anything that opens sockets; the lead wires it into the
// units' data plane.
package gtp
