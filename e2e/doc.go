// Package e2e holds falab's end-to-end tests: they build the falab binary,
// bring real labs up in network namespaces, send real packets, inject real
// faults and tear everything down. They need root (CI runs as root) and skip,
// saying so, without it.
package e2e
