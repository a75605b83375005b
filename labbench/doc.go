// Package labbench is `falab bench`: it measures the lab-level figures of
// falab (lab up/down time, forwarding rate, TCP throughput, new connections
// per second, memory per connection, failover gaps, TCP resume, bulk-sync
// time, replication lag) and prints each beside its target and, where one
// exists, beside the Linux kernel's figure on the same topology.
// It must not import tui or cmd/falab, nor any test fake (firewall/memport):
// its figures come from real labs on real ports.
//
// Every figure is measured, never estimated: a figure that cannot be
// measured is reported as n/a with the reason. Each measurement brings up
// its own lab under a unique name (never "default") and always tears it
// down, even on error or cancellation. The kernel baseline is the same lab
// built with lab.UpOptions{TopologyOnly: true}, with fw-a's kernel given
// the firewall's addresses, forwarding and an nftables masquerade rule.
//
// Figure 10 is the standard Linux HA pair on the same topology (each
// unit's namespace a kernel router with nftables, keepalived moving the
// addresses, conntrackd replicating the connection table), measured in the
// same run row for row like falab's pair: failover gaps, TCP resume and
// survival per direction, replication lag. Its rows are n/a, saying why,
// where keepalived or conntrackd is not installed.
//
// The machine the figures come from is usually shared, so the report
// carries the CPU count and the load average at the start and the end of
// the run; read the figures as noisy.
package labbench
