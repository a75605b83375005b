// Package api is the contract between a unit process and everything that
// talks to it: the CLI, the TUI and the lab. It holds the wire types of the
// unit's HTTP API (plain JSON structs with snake_case field names), the
// API's client, the unit process's config file schema and the failover key
// file format.
//
// It must not import a data-plane package (firewall, failover, replicate,
// unit, afpacket): the unit process converts its data-plane values into these
// types, so a change inside the data plane does not change the wire, and a
// client never links the data plane in.
package api
