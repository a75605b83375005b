// Package failover is the role state machine of an ASA-style Active/Standby
// failover pair.
// It must not import any other falab package, nor anything that does I/O
// (net, os): it is pure.
//
// It is pure in the way etcd's raft is: it does no I/O, starts no goroutines
// and never reads the wall clock. The unit process feeds a Machine events
// (hellos from the peer, link and interface status, results of data-interface
// probes, operator commands, bulk sync results) together with the current
// time, calls Tick when NextDeadline passes, and performs the Actions it gets
// back, in order: sending hellos on the failover link, putting replicated
// state in place, announcing addresses, probing the data interfaces,
// requesting bulk sync and logging transitions.
//
// # States
//
// The states are those `show failover` reports: Disabled, Negotiation,
// Bulk Sync, Standby Ready, Just Active, Active and Failed. Cold Standby and
// Sync Config are not modelled: falab units have no configuration to copy, so
// a unit that becomes standby goes straight to Bulk Sync.
//
// # Rules
//
//   - Startup: a unit negotiates for Config.NegotiationWindow. It becomes
//     standby if it hears an active peer (no preemption: a recovered unit never
//     takes the active role back), active if it hears nobody, and if both units
//     negotiate at once the primary becomes active.
//   - Standby: it requests bulk sync and reaches Standby Ready only when told
//     the digests matched (BulkSyncDone); a mismatch or a gap (SyncLost) sends
//     it back to Bulk Sync.
//   - Detection: a peer silent for UnitHold, a closed failover connection or a
//     lost failover-link carrier is a sign, not a verdict. The machine asks the
//     unit to probe the peer over the data interfaces (ProbeDataInterfaces) and
//     declares the peer failed only if it does not answer there. If it answers,
//     the failover link is declared failed and nobody takes over (no split
//     brain). A standby still in Bulk Sync does take over, as on the ASA, and
//     the reason says sessions may be lost.
//   - A peer that says it stopped being active (its hello now reports
//     Negotiation, Failed or a standby state) is taken over from at once,
//     without a probe: it has told us.
//   - Interface monitoring: the active fails (state Failed) when the standby
//     reports more of the monitored interfaces up than the active has; a Failed
//     unit returns to standby when its interfaces recover or on Reset.
//   - Two actives (a frozen active thaws, a cut link heals): the unit with the
//     higher term stays active, because it took over later and carries the
//     newest state; on equal terms the primary stays active. Every takeover
//     takes a term one above any term the unit has seen, and hellos carry it.
//
// Every transition carries a reason and the time it happened at.
package failover
