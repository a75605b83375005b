// Package ike is an IKEv2 responder (RFC 7296) with pre-shared-key
// authentication: the message codec, the key derivation and the SA state
// machine that answers a peer's IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA and
// INFORMATIONAL requests.
//
// Its one job is to turn an IKE request into a response and a list of
// events (a child SA came up, was rekeyed, went away). It does no I/O: the
// caller reads UDP datagrams (stripping the RFC 3948 non-ESP marker on port
// 4500), passes them to Responder.Handle and sends what comes back. It
// initiates one exchange only, RFC 6311's message ID sync after a takeover
// (Responder.MIDSyncRequest; the caller sends it and may send it again), so
// it never retransmits on its own; it only resends its cached response when
// the peer retransmits a request (RFC 7296 §2.1).
//
// The state of an established IKE SA is exportable (SA.Export returns a
// Record) so that a standby can take over with Responder.Import and answer
// the peer's next DPD, rekey or Delete with the right message ID and keys,
// without the peer noticing.
//
// The package uses the standard library only. It must not import falab's
// data plane (firewall, afpacket, replicate, unit) nor the esp package:
// child SAs leave it as plain key records that the caller installs.
package ike
