// Package puretest holds the checks that keep a package pure: no clock,
// no global randomness, no forbidden dependency. Tests of scheduler/
// placement, scheduler/sched and scheduler/state call them.
package puretest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// clockAndRandomness are the functions a pure package must not call:
// the caller passes times and seeded generators in.
var clockAndRandomness = map[string]map[string]bool{
	"time":         {"Now": true, "Since": true, "Until": true, "After": true, "Tick": true, "NewTimer": true, "NewTicker": true, "Sleep": true},
	"math/rand":    {"Int": true, "Intn": true, "Int63": true, "Float64": true, "Perm": true, "Shuffle": true, "Uint64": true},
	"math/rand/v2": {"Int": true, "IntN": true, "N": true, "Float64": true, "Perm": true, "Shuffle": true, "Uint64": true},
	"crypto/rand":  {"Read": true, "Int": true, "Text": true},
}

// NoClock fails t for every call, in the non-test Go files of the current
// directory, that reads the time of day or global randomness.
func NoClock(t *testing.T) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		checked++
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Local names of the watched imports in this file.
		local := map[string]string{}
		for _, imp := range f.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if _, ok := clockAndRandomness[path]; !ok {
				continue
			}
			n := filepath.Base(path)
			if path == "math/rand/v2" {
				n = "rand"
			}
			if imp.Name != nil {
				n = imp.Name.Name
			}
			local[n] = path
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok {
				if path, ok := local[id.Name]; ok && clockAndRandomness[path][sel.Sel.Name] {
					t.Errorf("%s: %s.%s: this package must not read the clock or global randomness", fset.Position(sel.Pos()), path, sel.Sel.Name)
				}
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}

// Edge is one import: From imports To.
type Edge struct{ From, To string }

// Deps returns every import edge of the current directory's package and
// its dependencies (go list -deps). It skips t when go is not on PATH.
func Deps(t *testing.T) []Edge {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	var edges []Edge
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[min(1, len(f)):] {
			edges = append(edges, Edge{f[0], imp})
		}
	}
	return edges
}

// Under reports whether package path p is prefix or under it.
func Under(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }
