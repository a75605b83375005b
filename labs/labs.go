// Package labs holds falab's built-in lab files (*.yaml) and scenario files
// (scenarios/*.yaml), embedded in the
// binary so that `falab up` with no argument needs no file on disk.
// It must not import any other falab package: it is data.
package labs

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yaml scenarios/*.yaml
var files embed.FS

// Default is the lab `falab up` builds when given no argument.
const Default = "default"

// Get returns the built-in lab file with that name (without .yaml).
func Get(name string) ([]byte, bool) {
	b, err := files.ReadFile(name + ".yaml")
	return b, err == nil
}

// Names lists the built-in labs, sorted.
func Names() []string {
	ents, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Scenario returns the built-in scenario file with that name.
func Scenario(name string) ([]byte, bool) {
	b, err := files.ReadFile("scenarios/" + name + ".yaml")
	return b, err == nil
}

// Scenarios lists the built-in scenarios, sorted.
func Scenarios() []string {
	ents, _ := fs.ReadDir(files, "scenarios")
	var out []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
