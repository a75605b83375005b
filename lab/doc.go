// Package lab runs labs: it finds a lab by built-in name or file path
// (Resolve), turns a labfile.Lab into a topology plan (plan.go) and unit
// configurations (units.go), records running labs in their state directory
// under /run/falab/LAB, brings labs up and down (cleaning up even after a
// crash or a half-finished up), supervises the unit processes and the
// hosts' daemons (daemons.go; exec.go runs commands beside them), injects
// faults, starts and stops traffic, reports status and events, and checks
// the wire (which unit answers ARP for a host's gateway).
//
// Parsing and validating lab files is package labfile's job; scenarios are
// package scenario's. It must not import scenario, tui, cmd/falab or the
// data plane (firewall, afpacket, failover, replicate, unit): it talks to
// units through api and their config files only.
package lab
