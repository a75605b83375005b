// Package e2e holds falab's end-to-end tests: they build the falab binary,
// bring real labs up in network namespaces, send real packets, inject real
// faults and tear everything down. They need root (CI runs as root) and skip,
// saying so, without it.
// It must not import the data plane or the unit process (firewall, afpacket,
// failover, replicate, unit): it drives the falab binary as a user would,
// and looks at the lab only through topo and capture.
package e2e
