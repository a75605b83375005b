// Package traffic holds falab's traffic generators: the programs that run
// inside the lab's host namespaces during a scenario and measure, exactly,
// what survived a fault (a killed or frozen firewall unit).
// It must not import any other falab package: its agents run inside the
// hosts' namespaces and see the firewall only as the network does.
//
// Each kind has a server side and a client side, run as separate processes
// by `falab agent <kind> --role server|client ...` (see [RunAgent]):
//
//   - tcp-stream: N long-lived TCP connections, each carrying a
//     deterministic byte stream ([Pattern]) that the receiver checks byte by
//     byte ([StreamVerifier]).
//   - udp-probe: sequence-numbered probes echoed by the server; the client
//     counts loss, reordering and duplicates ([SeqTracker]).
//   - http: a large generated body served by net/http and downloaded at a
//     bounded rate, verified as it arrives.
//   - ping: ICMP echo to a target; loss and the longest gap.
//   - softphone (client) and callmanager (server): the CTIQBE lab model
//     (a lab model of CTIQBE's behaviour, not wire-compatible; package
//     ctiqbe) on TCP 2748: register, heartbeat, one call with echoed
//     RTP-like media, hang-up and ack, unregister. The softphone's report
//     carries a [VoiceReport] with the call's timeline; its voice state is
//     "unregistered: callmanager unreachable" when the hang-up got no ack.
//
// Every agent writes one JSON [Report] per line every --report-every and a
// last one with "final": true; with --report-file it writes each over that
// file instead ([ReportFile]), which so holds only the latest and stays
// bounded however long the agent runs (each report is cumulative, and each
// flow's lists are capped). The scenario engine reads them with
// [ParseReport] and reduces them with [Summarize].
//
// # What "survived" means
//
// The verdict of a scenario rests on these definitions, applied by
// [Summarize] and [FlowReport.Survived]:
//
//   - A flow is established when its connection completed (TCP: the
//     three-way handshake and the flow header were sent; HTTP: the response
//     headers arrived; udp-probe and ping: the first echo came back).
//   - A flow survived a fault at time F if it was established before F, and
//     at the end it is alive or completed: not reset, not stalled, and every
//     byte it received matched the expected stream (not corrupt).
//   - reset: the connection broke (ECONNRESET, a write error, or EOF before
//     the side that ends the flow announced the end).
//   - stalled: no progress (no verified byte, no echo) for at least --stall
//     at the moment of the report. A flow that stalled and then resumed is
//     alive again; the pause is kept in its longest gap. A flow stalled at
//     the moment the run ends stays stalled in the final report, even if the
//     closing handshake then succeeds.
//   - completed: the flow ended by the agreed close (tcp-stream: the client
//     sends FIN after its last byte, the server answers with its own after
//     reading everything) or, for http, the whole body arrived and verified.
//   - corrupt: a received byte did not match the expected stream (a changed
//     or missing byte). It is terminal: the flow is closed.
//   - longest gap: the longest time between two consecutive receptions
//     (chunks, echoes), including the gap still open at the report time.
//
// Servers cannot tell a client that went away from a client that ended, so
// a server's flows stay alive (or turn stalled) after their client is gone;
// stop the clients first, then the servers.
//
// The sender's view of a one-way flow is weak (the kernel accepts bytes into
// its send buffer long after the path died), so the receiving side is the
// authority: with --direction both (the default) each side verifies what it
// receives.
//
// # NAT checks
//
// Servers record the source address:port they see for every flow
// ([FlowReport.Peers]), so a scenario can check that NAT kept the same
// mapped address and port across the failover: a flow whose Peers has more
// than one entry was re-mapped.
package traffic
