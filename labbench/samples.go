package labbench

import (
	"errors"
	"fmt"
	"strings"
)

// samples collects one row's repetitions, each an independent lab and
// fault, and the errors of those that failed, so that the row can print
// its n, min, median and max and never rest a verdict on one run.
type samples struct {
	vals   []float64
	errs   []error
	detail []string
}

// add records one repetition: its value and a note on it, or why it
// measured nothing.
func (s *samples) add(v float64, err error, detail string) {
	if err != nil {
		s.errs = append(s.errs, err)
		return
	}
	s.vals = append(s.vals, v)
	if detail != "" {
		s.detail = append(s.detail, detail)
	}
}

// row makes the row id from s: the repetitions it measured (of runs
// attempted), each one's note and the failures, or n/a with why none was
// measured.
func (s *samples) row(item int, id, name, unit string, t *Target, runs int, how string) Figure {
	if len(s.vals) == 0 {
		err := errors.Join(s.errs...)
		if err == nil {
			err = errors.New("not run")
		}
		return notMeasured(item, id, name, unit, t, err)
	}
	detail := fmt.Sprintf("%s; %d of %d runs", how, len(s.vals), runs)
	if len(s.detail) > 0 {
		detail += ": " + strings.Join(s.detail, "; ")
	}
	if len(s.errs) > 0 {
		detail += fmt.Sprintf("; %d runs failed: %s", len(s.errs), errText(errors.Join(s.errs...)))
	}
	return repeated(item, id, name, unit, s.vals, t, detail)
}
