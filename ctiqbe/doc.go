// Package ctiqbe is the lab's CTIQBE model: a lab model of CTIQBE's
// behaviour, not wire-compatible. CTIQBE (Cisco's TAPI/JTAPI protocol
// between a CTI device such as IP SoftPhone and a CallManager, TCP 2748)
// has no open specification, so this package invents a small
// length-prefixed protocol with the same shape: register, heartbeat,
// make-call with media ports, call setup, hang-up and its ack, unregister.
// Nothing here talks to a real CallManager.
//
// Its one job is that protocol, in three parts:
//
//   - the message codec ([Message], [MessageLen]) and the stream reader and
//     writer the agents use ([ReadMessage], [WriteMessage]);
//   - the inspection engine ([Engine]): what a firewall keeps per CTIQBE
//     connection (the session table and its calls), the RTP/RTCP pinholes it
//     opens from a call setup and closes at hang-up, and `show ctiqbe`;
//   - the two agents' protocol logic ([Phone], [ServeCallManager]), the
//     only code here that touches a socket, and only the net.Conn it is
//     given.
//
// The engine's state is not replicated, as on an ASA (Cisco documents
// that stateful failover of CTIQBE calls is not supported): it has no
// change records. After a failover the new active unit has the TCP
// connection and the media connections (those are ordinary connections)
// but no session record, so the next CTIQBE message on the connection,
// such as the hang-up, is dropped and counted as ctiqbe-no-session. That
// is the mission's SoftPhone story.
//
// The package is pure. It must not import falab's data plane (firewall,
// afpacket, replicate, unit) nor open sockets of its own. A firewall
// adapts its packets to [Packet] and the engine's [Pinhole]s to its own.
package ctiqbe
