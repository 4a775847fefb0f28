package placement

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoClockOrGlobalRandomness keeps the engine a function of its input:
// no file of the package reads the time of day or unseeded randomness (the
// leader passes times in: RunInfo's seconds, and policies take a seed).
func TestNoClockOrGlobalRandomness(t *testing.T) {
	banned := map[string]map[string]bool{
		"time":         {"Now": true, "Since": true, "Until": true, "After": true, "Tick": true, "NewTimer": true, "NewTicker": true, "Sleep": true},
		"math/rand":    {"Int": true, "Intn": true, "Int63": true, "Float64": true, "Perm": true, "Shuffle": true, "Uint64": true},
		"math/rand/v2": {"Int": true, "IntN": true, "N": true, "Float64": true, "Perm": true, "Shuffle": true, "Uint64": true},
		"crypto/rand":  {"Read": true, "Int": true, "Text": true},
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		// Local names of the watched imports in this file.
		local := map[string]string{}
		for _, imp := range f.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if _, ok := banned[path]; !ok {
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
		if len(local) == 0 {
			checked++
			continue
		}
		f, err = parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			id, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			if path, ok := local[id.Name]; ok && banned[path][sel.Sel.Name] {
				t.Errorf("%s: %s.%s: placement must not read the clock or global randomness", fset.Position(sel.Pos()), path, sel.Sel.Name)
			}
			return true
		})
		checked++
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}
