package lab

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/falab/falab/api"
)

// UnitClient returns the API client of a unit of a running lab.
func UnitClient(labName, unitName string) (*api.Client, error) {
	st, err := ReadState(labName)
	if err != nil {
		return nil, err
	}
	if _, ok := st.Units[unitName]; !ok {
		var names []string
		for n := range st.Units {
			names = append(names, n)
		}
		return nil, fmt.Errorf("lab %s has no unit %q (units: %s)", labName, unitName, strings.Join(names, ", "))
	}
	return api.NewClient(filepath.Join(Dir(labName), unitName+".sock")), nil
}

// UnitNames returns a running lab's units, primary first.
func UnitNames(labName string) ([]string, error) {
	_, l, err := LoadRunning(labName)
	if err != nil {
		return nil, err
	}
	return []string{l.Units[0].Name, l.Units[1].Name}, nil
}

// ActiveUnit returns the name of the unit that reports itself active (the
// first unit that answers, when none does).
func ActiveUnit(ctx context.Context, labName string) (string, error) {
	names, err := UnitNames(labName)
	if err != nil {
		return "", err
	}
	fallback := ""
	for _, n := range names {
		c, err := UnitClient(labName, n)
		if err != nil {
			return "", err
		}
		// A frozen unit accepts the connection and never answers: ask
		// each unit with its own short deadline.
		sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		s, err := c.Status(sctx)
		cancel()
		if err != nil {
			continue
		}
		if s.Active {
			return n, nil
		}
		if fallback == "" {
			fallback = n
		}
	}
	if fallback == "" {
		return "", fmt.Errorf("no unit of lab %s answers", labName)
	}
	return fallback, nil
}
