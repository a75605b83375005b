// Package render turns api values into tables of text cells with
// ASA-style columns: the one definition of what `falab show` prints and
// of the TUI's table tabs (which may style the cells, never re-define the
// columns). For each table it says the columns, the cells of one entry,
// the key that matches an entry on the active with its copy on the
// standby, and the columns a two-unit view adds for the standby's copy.
//
// It must not import anything but package api and the standard library: no
// data plane, no terminal library.
package render
