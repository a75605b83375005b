// Package falab_test holds the house rules that span the whole module, as
// tests: every package states its one job and what it must not import
// (TestPackageDocs), and no function grows past maxFuncLines
// (TestFunctionLength). It has no code of its own. It must not import any
// falab package: it reads the source with go/parser instead.
package falab_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// importRule is the sentence every package doc comment must contain: what
// the package must not import, so a reader and a reviewer know the
// package's place in the arrows of docs/architecture.md ("Package rules").
const importRule = "It must not import"

// maxFuncLines is the longest a function may be, from its func line to its
// closing brace, in non-test files.
const maxFuncLines = 120

// longFuncs are the functions allowed over maxFuncLines, each with the
// reason. An entry is "dir.Func" or "dir.Recv.Method" (dir relative to the
// module root, Recv without its star). An entry whose function is gone or
// now short enough fails the test: remove it.
var longFuncs = map[string]string{
	"tui.Model.onKey": "TODO issue 12: split",
}

// goPackage is the non-test source of one directory.
type goPackage struct {
	dir   string // relative to the module root, slash-separated
	fset  *token.FileSet
	files map[string]*ast.File // by file name
}

// modulePackages parses the non-test .go files of every directory of the
// module (this test runs in the module root), skipping testdata and
// hidden directories.
func modulePackages(t *testing.T, mode parser.Mode) []*goPackage {
	t.Helper()
	byDir := map[string]*goPackage{}
	var dirs []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		p := byDir[dir]
		if p == nil {
			p = &goPackage{dir: dir, fset: token.NewFileSet(), files: map[string]*ast.File{}}
			byDir[dir] = p
			dirs = append(dirs, dir)
		}
		f, err := parser.ParseFile(p.fset, path, nil, mode)
		if err != nil {
			return err
		}
		p.files[name] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 10 {
		t.Fatalf("found only %d packages (%v): is the test running in the module root?", len(dirs), dirs)
	}
	slices.Sort(dirs)
	pkgs := make([]*goPackage, len(dirs))
	for i, d := range dirs {
		pkgs[i] = byDir[d]
	}
	return pkgs
}

// sortedNames returns the file names of p in order, so failures are
// reported in a stable order.
func (p *goPackage) sortedNames() []string {
	names := make([]string, 0, len(p.files))
	for n := range p.files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

var spaces = regexp.MustCompile(`\s+`)

// TestPackageDocs fails a package that has no doc comment, has it in more
// than one file, does not begin it "Package NAME" ("Command NAME" for a
// main package), or does not say what it must not import (importRule), as
// tailscale's pkgdoc_test.go does for the first.
func TestPackageDocs(t *testing.T) {
	for _, p := range modulePackages(t, parser.PackageClauseOnly|parser.ParseComments) {
		var withDoc []string
		var doc, pkgName string
		for _, name := range p.sortedNames() {
			f := p.files[name]
			pkgName = f.Name.Name
			if f.Doc != nil {
				withDoc = append(withDoc, name)
				doc = f.Doc.Text()
			}
		}
		switch {
		case len(withDoc) == 0:
			t.Errorf("%s: no package doc comment: say the package's one job and what it must not import", p.dir)
			continue
		case len(withDoc) > 1:
			t.Errorf("%s: package doc comments in %d files %v: keep one (go doc joins them in no useful order)", p.dir, len(withDoc), withDoc)
		}
		want := "Package " + pkgName + " "
		if pkgName == "main" {
			want = "Command " + filepath.Base(p.dir) + " "
		}
		if !strings.HasPrefix(doc, want) {
			t.Errorf("%s/%s: package doc begins %q, want it to begin %q", p.dir, withDoc[0], firstWords(doc, 4), want)
		}
		if !strings.Contains(spaces.ReplaceAllString(doc, " "), importRule+" ") {
			t.Errorf("%s/%s: package doc does not say what the package must not import (a sentence beginning %q)", p.dir, withDoc[0], importRule)
		}
	}
}

// firstWords returns the first n words of s.
func firstWords(s string, n int) string {
	w := strings.Fields(s)
	return strings.Join(w[:min(n, len(w))], " ")
}

// TestFunctionLength fails any function or method in a non-test file that
// is longer than maxFuncLines, unless longFuncs names it with a reason, and
// fails any longFuncs entry that no longer needs to be there.
func TestFunctionLength(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range modulePackages(t, parser.SkipObjectResolution) {
		for _, name := range p.sortedNames() {
			for _, decl := range p.files[name].Decls {
				fd, ok := decl.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				start, end := p.fset.Position(fd.Pos()), p.fset.Position(fd.End())
				lines := end.Line - start.Line + 1
				if lines <= maxFuncLines {
					continue
				}
				key := p.dir + "." + funcName(fd)
				seen[key] = true
				if _, ok := longFuncs[key]; !ok {
					t.Errorf("%s/%s:%d: %s is %d lines, over %d: split it (or list it in longFuncs with the reason)", p.dir, name, start.Line, funcName(fd), lines, maxFuncLines)
				}
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(longFuncs)) {
		if reason := longFuncs[key]; !seen[key] {
			t.Errorf("longFuncs lists %s (%s), which is gone or at most %d lines now: remove the entry", key, reason, maxFuncLines)
		}
	}
}

// funcName returns "Func" or "Recv.Method" (the receiver's type without
// its star or type parameters).
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	switch x := typ.(type) {
	case *ast.IndexExpr:
		typ = x.X
	case *ast.IndexListExpr:
		typ = x.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}
