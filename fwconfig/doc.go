// Package fwconfig is the firewall's configuration schema and its one
// validator: the interfaces, routes, NAT, access lists, timeouts and limits
// of one unit's data plane (the ASA's interface, route, nat, access-list,
// access-group and timeout commands), as plain data, and Validate, which
// reports every problem at once, each naming the field path that holds it
// (interfaces[1].mtu, nat[0].mapped).
//
// The data plane (package firewall) compiles a Config that Validate passed;
// the lab validates the config it resolves from a lab file with the same
// function and maps each path to the file's line. It is pure data, no I/O.
// It must not import any other falab package.
package fwconfig
