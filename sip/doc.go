// Package sip is SIP inspection as an ASA's "inspect sip" does it: it
// parses SIP messages carried over UDP or TCP, tracks sessions (dialogs,
// keyed by Call-ID), transactions (keyed by the top Via branch and the
// CSeq method) and the media pinholes the SDP offers and answers ask for,
// and rewrites SDP and Via/Contact addresses under NAT.
//
// It is pure: no sockets, no clock of its own, no goroutines. The caller
// hands Inspect one payload at a time with its addresses and the current
// time, and gets back a Result: the drop reason (zero: pass), the pinholes
// to open and to close, and the replication records the packet produced.
// Rewrite is a separate pure function, so that the data plane can call it
// once NAT of payloads exists there.
//
// The parser is this package's own, not github.com/emiago/sipgo's: an
// inspection engine reads hostile bytes on the forwarding path, so it must
// be bounded (MaxMessageSize, MaxHeaders, MaxVias, MaxMedia), strict
// (CRLF line ends only, no folding, no control bytes, no duplicated
// single-valued header, Content-Length equal to the body it announces) and
// cheap: Parse fills a caller's Message with offsets into the payload and
// allocates nothing. sipgo's parser is built for a user agent: it copies
// every header into strings, accepts what a tolerant endpoint should, and
// would be a new dependency for the few headers inspection needs. SDP is
// parsed here too rather than with github.com/pion/sdp/v3, for the same
// reasons (o=, c=, m= only, and their byte offsets, which Rewrite needs and
// an unmarshal-to-structs parser does not keep).
//
// Rewrite edits the Request-URI host, every Via sent-by, the first
// Contact's host:port and the SDP o=/c= addresses and m= ports, and sets
// Content-Length; it leaves From and To (which carry no routing) and host
// names alone.
//
// Anything malformed is dropped as "sip-malformed"; a response, ACK, BYE
// or CANCEL that matches no transaction or session is dropped as
// "sip-unexpected"; a full table drops as "sip-table-full". A dropped
// message changes no state.
//
// Replication: the session, transaction and pinhole tables each produce
// Change records (versioned, length-checked binary), a standby applies them
// with Apply, and Digests returns an order-independent digest per table,
// so that active and standby can be compared. Idle times are local to each
// unit and are not part of the records or the digests. Whether the
// engine's state is replicated at all is the caller's choice.
//
// Addresses are IPv4 (falab's data plane is IPv4 only); an SDP that names
// an IPv6 address is dropped as malformed. Over TCP, one payload must hold
// whole messages: the caller does no stream reassembly for SIP yet.
//
// It must not import falab's data plane (firewall, unit,
// replicate) or anything that opens sockets; it reaches the packets through the
// firewall's inspection hook.
package sip
