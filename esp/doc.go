// Package esp is ESP in tunnel mode with AES-GCM (RFC 4303, RFC 4106) and
// its UDP encapsulation (RFC 3948): it turns an inner IPv4 packet into an
// ESP packet and back, checks the anti-replay window, and hands out
// outbound sequence numbers only inside a lease the caller grants.
//
// It does no I/O and knows nothing of IKE: keys, salts and SPIs come in as
// plain values (from ike.ChildRecord). It must not import ike, nor falab's
// data plane, which imports it.
//
// # Sequence numbers by lease
//
// With AES-GCM the IV is the sequence number (RFC 4106 §3.1 allows any
// value that never repeats), so a sequence number sent twice under one key
// is a repeated GCM nonce: it leaks the XOR of two plaintexts and lets an
// observer forge packets. A standby that takes over an SA must therefore
// start above every number the old active ever used, even those it sent
// after the last replication message.
//
// pfsync (OpenBSD) guesses: the new active jumps the replicated counter by a
// fixed 16384. That is safe only if the old active sent fewer than 16384
// packets since the last sync it got through, which at 1 Mpps is 16 ms of
// sync lag; a slow or lost sync message makes nonce reuse possible, and no
// one can tell afterwards. A lease turns the guess into an invariant: the
// sender may only use numbers below a limit (Grant) that the caller gives
// it after the standby acknowledged that limit, so the new active starts at
// the acknowledged limit and can never reuse a number, whatever the rate or
// the lag. The cost is bounded and visible: at most one lease of numbers
// is skipped at a takeover, and if acknowledgements stall the sender stops
// (ErrLeaseExhausted, counted) rather than risk reuse. NeedGrant says when
// to ask for the next block, early enough that a healthy link never stalls.
//
// Extended sequence numbers (RFC 4304) are not implemented: the SA's
// sequence space is 32 bits, and the sender refuses to wrap (RFC 4303
// §3.3.3); the peer must rekey before 2^32 packets, which IKE does.
package esp
