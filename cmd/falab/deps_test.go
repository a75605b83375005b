package main

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dataPlane are the packages only the unit process may link: everything
// else talks to a unit through package api.
var dataPlane = []string{
	"github.com/falab/falab/firewall",
	"github.com/falab/falab/firewall/header",
	"github.com/falab/falab/afpacket",
	"github.com/falab/falab/failover",
	"github.com/falab/falab/replicate",
	"github.com/falab/falab/unit",
}

// unitEntryFile is the one file of cmd/falab that imports the data plane:
// the internal `falab unit` verb.
const unitEntryFile = "unitproc.go"

// TestClientsLinkNoDataPlane: the TUI, the lab, the renderer and the API
// reach no data-plane package, even indirectly.
func TestClientsLinkNoDataPlane(t *testing.T) {
	for _, pkg := range listDeps(t, "../../tui", "../../lab", "../../render", "../../api", "../../fwconfig") {
		if slices.Contains(dataPlane, pkg.ImportPath) {
			t.Errorf("%s is a dependency of the clients (tui, lab, render, api, fwconfig); they must use package api", pkg.ImportPath)
		}
	}
}

// TestContractPackagesStayPure: fwconfig imports nothing of falab, api
// only fwconfig, render only api, as their doc comments promise.
func TestContractPackagesStayPure(t *testing.T) {
	const mod = "github.com/falab/falab/"
	for dir, allowed := range map[string][]string{
		"fwconfig": {"fwconfig"},
		"api":      {"api", "fwconfig"},
		"render":   {"render", "api", "fwconfig"},
	} {
		for _, pkg := range listDeps(t, "../../"+dir) {
			p, ok := strings.CutPrefix(pkg.ImportPath, mod)
			if ok && !slices.Contains(allowed, p) {
				t.Errorf("%s depends on %s (allowed: %v)", dir, pkg.ImportPath, allowed)
			}
		}
	}
}

// TestOnlyUnitEntryImportsDataPlane: of cmd/falab's own files, only
// unitproc.go imports a data-plane package.
func TestOnlyUnitEntryImportsDataPlane(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if f == unitEntryFile || strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if slices.Contains(dataPlane, p) {
				t.Errorf("%s imports %s: only %s may (use package api)", f, p, unitEntryFile)
			}
		}
	}
}

// TestBinaryHasNoTestFakes: the falab binary links no test fake.
func TestBinaryHasNoTestFakes(t *testing.T) {
	const memport = "github.com/falab/falab/firewall/memport"
	for _, pkg := range listDeps(t, ".") {
		if pkg.ImportPath == memport {
			t.Errorf("the falab binary links %s, a test fake", memport)
		}
	}
}

type listedPackage struct {
	ImportPath string
}

// listDeps runs go list -deps -json on dirs.
func listDeps(t *testing.T, dirs ...string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-deps", "-json"}, dirs...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list listed nothing")
	}
	return pkgs
}
