// Package module is a security service module as in an ASA's AIP-SSM, CSC
// or SFR slot: an inspection engine beside the firewall, with its own flow
// state, that the firewall asks for a verdict on each TCP segment of the
// traffic it diverts to it.
//
// One job: reassemble each diverted TCP flow's two byte streams and look
// for signatures in them. The pieces:
//
//   - Reassembly per direction: in-order bytes are inspected at once;
//     retransmitted bytes (before the next expected sequence number) are
//     not inspected again; out-of-order segments within Window bytes are
//     copied aside and inspected when the gap fills. An out-of-order
//     segment is passed before it is inspected: the receiver cannot hand
//     its bytes to the application without the missing segment, and that
//     one is inspected (and dropped if it completes a signature) first.
//   - Signatures are byte strings matched by one Aho-Corasick automaton
//     whose state is carried from segment to segment, so a signature split
//     across any number of segments is found without keeping the stream.
//   - A per-flow verdict cache: once a signature is seen the flow is
//     "detected" and every later segment of it, either direction, is
//     dropped.
//   - Health: Up or Down (SetUp). While down, every segment follows the
//     fail mode.
//   - Fail mode ("fail-open" or "fail-close", as the ASA's "ips inline
//     fail-open|fail-close"): a mid-stream segment of a flow the module has
//     no state for, for example one that began before a failover made this
//     unit active, cannot be inspected; fail-open passes it and fail-close
//     drops it, and both count it as uninspected. The flow is remembered as
//     uninspected so all its later segments get the same verdict.
//
// Memory is bounded: at most MaxFlows flows (the least recently used is
// evicted; its later segments are then mid-stream and uninspected), at
// most Window bytes held out of order per direction and MaxBuffered bytes
// in all. The flow table is split into shards, each with its own lock and
// LRU list. An established flow's in-order segment allocates nothing.
//
// Never replicated. The ASA does not pass a module's state to the standby:
// the module is a separate card with its own memory, and the failover link
// carries the firewall's tables only. After a failover the new active's
// module sees the surviving flows mid-stream. A signature whose first half
// crossed the old active and whose second half crosses the new one is
// therefore missed, and the fail mode decides whether those flows keep
// running uninspected or stall. falab keeps that behaviour to show it.
//
// The package is pure: no sockets, no goroutines, no clock (the caller
// passes now). It must not import falab's data plane (firewall, unit,
// replicate); the lead wires it into the units.
package module
