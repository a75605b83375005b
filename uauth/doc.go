// Package uauth is cut-through proxy authentication as an ASA's
// "aaa authentication match ACL inside LOCAL" does it, with the uauth table.
//
// One job: decide whether a source address has authenticated, and let it
// authenticate. The pieces:
//
//   - Rules are the "match" ACL: which new connections need an
//     authenticated source (Rules.Match).
//   - Users are the LOCAL database: names with argon2id password hashes in
//     the PHC string format; plain text is never kept.
//   - Table is the uauth table: one entry per authenticated source address
//     with its user and its two deadlines ("timeout uauth" absolute and
//     inactivity). Authorized is the per-connection check; it allocates
//     nothing and refreshes the inactivity timer.
//   - Handler is the listener ("aaa authentication listener http" or
//     "virtual http"): the firewall steers the first matching connection of
//     an unauthenticated source to it; it answers 401 with Basic
//     authentication, and on good credentials records the entry and
//     redirects (302) to the URL the client asked for, which it rebuilds
//     from the request's Host header and path. The client's next connection
//     to the real server then passes.
//
// Brute force is bounded twice: a source that fails MaxFailures times in a
// row is refused (429) for a backoff that doubles with each further failure,
// and at most MaxVerify argon2id verifications run at once (each costs the
// hash's memory), so a flood of guesses cannot exhaust the unit's memory.
//
// Never replicated. The ASA does not pass the uauth table to its standby
// unit: an authentication is made to one unit and dies with it. After a
// failover the connections that were already open carry on (they are in the
// replicated connection table), but the next new connection from the same
// user meets an empty table on the new active and must authenticate again.
// falab keeps that behaviour on purpose so a user can see it; this package
// therefore has no change records and no digest.
//
// Apart from Handler, the package is pure: no sockets, no goroutines, and
// time comes from the caller (now arguments, or Config.Now in the handler).
// It must not import falab's data plane (firewall, unit, replicate) or
// anything that opens sockets; the caller serves Handler on a net.Listener
// of its choosing.
package uauth
