// Package firewall is the data plane of one falab unit: a userspace,
// stateful IPv4 firewall, routed or transparent, modelled on the Cisco ASA.
// It must not import failover, replicate, unit, lab or afpacket: it knows
// nothing of roles, the peer, lab files or sockets (frames come and go
// through the Port interface).
//
// Frames arrive on named data interfaces (Ports), are parsed into one
// summary per packet (package header provides the zero-copy views), and go
// through ARP, routing, the connection table, NAT and the security policy
// before they leave on another Port. The engine knows nothing of failover
// roles or of the peer unit; the unit process flips SetActive and feeds
// replicated state through ApplyChange.
//
// In transparent mode (Config.Mode) the unit is instead a bump in the wire
// inside one subnet: a learning bridge between its data interfaces that
// passes IPv4 through the same connection table and policy, without NAT or
// routing, while the standby blocks every data frame (see bridge.go).
//
// Both modes run one packet path, path.go, read top to bottom: link,
// parse, sanity, fragments, lookup, policy for new flows, inspection,
// NAT, egress, transmit. Application inspection engines attach to it by
// protocol and port (RegisterInspector, inspect.go).
//
// Replicated tables (connections, xlates, ARP, bridge) change only through their
// own methods, and each change is reported once through Options.OnChange
// as a Change record while a per-firewall change lock is held, together
// with an update to that table's order-independent digest. A standby
// applies the same records through the same methods, so that equal
// entries yield equal digests on both units.
//
// Concurrency: one reader goroutine per Port runs the packet path; the
// connection table is sharded with one lock per shard; counters are atomic.
// All exported methods of Firewall are safe for concurrent use unless their
// comment says otherwise.
package firewall
