package tui

import (
	"context"
	"strings"

	"github.com/falab/falab/api"
	"github.com/falab/falab/render"
)

// fetchVoice reads both units' voice tables for the Voice tab. A CTIQBE
// session missing on the standby is how it should be (its table is not
// replicated), so those rows carry no mark; the note says why.
func fetchVoice(ctx context.Context, src Source, r tableReq, d *tableData) []row {
	a, aerr := src.Voice(ctx, r.active)
	var sb api.Voice
	var serr error
	if r.standby != "" {
		sb, serr = src.Voice(ctx, r.standby)
	}
	ar, sr := render.VoiceRows(a), render.VoiceRows(sb)
	d.fill(len(ar), len(sr), aerr, serr, r.standby)
	rows := merge(ar, sr, d.standbyTotal >= 0, false, render.Voice.Key, render.Voice.PairCells)
	for i := range rows {
		if strings.HasPrefix(rows[i].key, "CTIQBE") {
			rows[i].mark = markNone
		}
	}
	return rows
}
