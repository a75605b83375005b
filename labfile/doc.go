// Package labfile reads lab files: the YAML schema (spec.go), a parser that
// remembers each field's line (parse.go), the validator that names every
// mistake with file, line and field (validate*.go), and the resolved lab
// (lab.go) that Load returns, with every default filled in. The firewall
// section is checked once, by fwconfig's own validator, at the lab's lines.
//
// It is pure: it takes bytes and returns a Lab or Problems, and does no
// I/O. Finding a lab by name or path, and running it, is package lab's job.
// It must not import os, os/exec, netlink, topo, the lab runtime (lab),
// scenario, or the data plane (firewall, unit); fwconfig and api (for the
// config and key types) are its only falab imports.
package labfile
