package render

import (
	"io"
	"strings"
	"unicode/utf8"
)

// Column is one column of a table.
type Column struct {
	Title string
	// Width is the column's width on a screen (the TUI's); Text sizes
	// columns to their content instead.
	Width int
	Right bool // right-aligned: a number
	// Wide columns are shown only when the screen is wide enough.
	Wide bool
	// PerUnit marks a unit's own value of a replicated entry (a state,
	// a counter): a two-unit view shows None there when only the standby
	// holds the entry.
	PerUnit bool
}

// None is the cell of a value that is not there.
const None = "—"

// Table is a table of text cells.
type Table struct {
	Columns []Column
	Rows    [][]string
}

// Text writes t as aligned text: a header line, then one line per row,
// columns two spaces apart, numbers right-aligned.
func (t Table) Text(w io.Writer) error {
	widths := make([]int, len(t.Columns))
	for i, c := range t.Columns {
		widths[i] = utf8.RuneCountInString(c.Title)
	}
	for _, r := range t.Rows {
		for i, cell := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(cell))
			}
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i, c := range t.Columns {
			cell := ""
			if i < len(cells) {
				cell = cells[i]
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i > 0 {
				b.WriteString("  ")
			}
			if c.Right {
				b.WriteString(pad + cell)
			} else if i < len(t.Columns)-1 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString(cell) // no trailing blanks
			}
		}
		b.WriteByte('\n')
	}
	titles := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		titles[i] = c.Title
	}
	line(titles)
	for _, r := range t.Rows {
		line(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// StandbyColumn is a column that a two-unit view adds for the standby's
// copy of an entry.
type StandbyColumn struct {
	Column
	// From is the column whose cell the standby's copy shows here; -1
	// says whether the standby holds the entry at all: "same",
	// "missing" or "only there".
	From int
	// After is the column this one follows.
	After int
}

// Spec is one table: its columns and how an entry of type T fills them.
type Spec[T any] struct {
	Columns []Column
	// Key identifies an entry on both units.
	Key func(*T) string
	// Cells are one entry's cells, one per column.
	Cells func(*T) []string
	// Standby are the columns a two-unit view adds.
	Standby []StandbyColumn
}

// Table renders one unit's entries.
func (s *Spec[T]) Table(entries []T) Table {
	t := Table{Columns: s.Columns, Rows: make([][]string, len(entries))}
	for i := range entries {
		t.Rows[i] = s.Cells(&entries[i])
	}
	return t
}

// PairColumns are the columns of a two-unit view: the table's own, each
// standby column after the one it follows.
func (s *Spec[T]) PairColumns() []Column {
	out := make([]Column, 0, len(s.Columns)+len(s.Standby))
	for i, c := range s.Columns {
		out = append(out, c)
		for _, sc := range s.Standby {
			if sc.After == i {
				out = append(out, sc.Column)
			}
		}
	}
	return out
}

// PairCells is one row of a two-unit view: active is the active's entry
// and standby the standby's copy; either may be nil (not both).
func (s *Spec[T]) PairCells(active, standby *T) []string {
	e := active
	if e == nil {
		e = standby
	}
	own := s.Cells(e)
	if active == nil {
		for i, c := range s.Columns {
			if c.PerUnit {
				own[i] = None
			}
		}
	}
	var sb []string
	if standby != nil {
		sb = s.Cells(standby)
	}
	out := make([]string, 0, len(own)+len(s.Standby))
	for i, cell := range own {
		out = append(out, cell)
		for _, sc := range s.Standby {
			if sc.After == i {
				out = append(out, standbyCell(sc.From, active != nil, sb))
			}
		}
	}
	return out
}

func standbyCell(from int, onActive bool, sb []string) string {
	switch {
	case from >= 0 && sb == nil:
		return None
	case from >= 0:
		return sb[from]
	case !onActive:
		return "only there"
	case sb == nil:
		return "missing"
	}
	return "same"
}
