// Package render turns api values into tables of text cells with
// ASA-style columns: the one definition of what `falab show` prints and
// of the TUI's table tabs (which may style the cells, never re-define the
// columns). For each table it says the columns, the cells of one entry,
// the key that matches an entry on the active with its copy on the
// standby, and the columns a two-unit view adds for the standby's copy.
// It also writes the ASA-format text of `falab show` (asa.go, failover.go):
// the lines an ASA prints, which an operator compares with a real one.
//
// It must not import anything but package api and the standard library: no
// data plane, no terminal library.
package render
