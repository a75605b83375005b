// Package scenario reads scenario files (schema, parse and validate, with
// every mistake at its file, line and field: scenario.go) and plays them on
// a lab: the runner brings the lab up, runs the steps (traffic, faults,
// waits, chaos), polls expectations, collects the units' timelines, reports
// each step and always tears the lab down.
//
// It drives labs only through package lab and reads them through labfile.
// It must not import tui, cmd/falab or the data plane (firewall, afpacket,
// failover, replicate, unit); it sees units through api only.
package scenario
