// Package scenario reads scenario files (schema, parse and validate, with
// every mistake at its file, line and field: scenario.go) and plays them on
// a lab: the runner brings the lab up, runs the steps (traffic, faults,
// waits, chaos), polls expectations, collects the units' timelines, reports
// each step and always tears the lab down.
//
// It drives labs through package lab, reads them through labfile, and reads
// hosts' neighbour caches with topo (for the ARP checks); it changes no
// kernel state itself. It must not import tui, cmd/falab or the data plane
// (firewall, afpacket, failover, replicate, unit); it sees units through
// api only.
package scenario
