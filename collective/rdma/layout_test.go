package rdma

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// verbsHeader is where libibverbs-dev installs verbs.h.
const verbsHeader = "/usr/include/infiniband/verbs.h"

// TestABILayout compiles a C program against the real verbs.h and checks
// that every size, offset and constant of the mirror in abi.go matches.
// It skips where the header is not installed (apt-get install
// libibverbs-dev); CI installs it.
func TestABILayout(t *testing.T) {
	if _, err := os.Stat(verbsHeader); err != nil {
		t.Skipf("%s not installed (apt-get install libibverbs-dev): the mirrored verbs ABI is unchecked here", verbsHeader)
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		t.Skipf("no C compiler (%s): %v", cc, err)
	}
	entries := abiLayout()
	var src strings.Builder
	src.WriteString("#include <stddef.h>\n#include <stdio.h>\n#include <infiniband/verbs.h>\nint main(void) {\n")
	for _, e := range entries {
		var expr string
		switch {
		case e.Type == "const":
			expr = e.Member
		case e.Member == "":
			expr = fmt.Sprintf("sizeof(%s)", e.Type)
		default:
			expr = fmt.Sprintf("offsetof(%s, %s)", e.Type, e.Member)
		}
		fmt.Fprintf(&src, "\tprintf(\"%%ld\\n\", (long)(%s));\n", expr)
	}
	src.WriteString("\treturn 0;\n}\n")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "layout.c"), []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "layout")
	if out, err := exec.Command(cc, "-o", bin, filepath.Join(dir, "layout.c")).CombinedOutput(); err != nil {
		t.Fatalf("compile against %s: %v\n%s", verbsHeader, err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("run layout program: %v", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(entries) {
		t.Fatalf("layout program printed %d values, want %d", len(lines), len(entries))
	}
	for i, e := range entries {
		want, err := strconv.ParseInt(lines[i], 10, 64)
		if err != nil {
			t.Fatalf("line %d %q: %v", i, lines[i], err)
		}
		what := e.Type + " " + e.Member
		switch {
		case e.Type == "const":
			what = e.Member
		case e.Member == "":
			what = "sizeof(" + e.Type + ")"
		}
		if e.Value != want {
			t.Errorf("%s: mirror has %d, verbs.h has %d", what, e.Value, want)
		}
	}
	if !t.Failed() {
		t.Logf("%d sizes, offsets and constants match %s", len(entries), verbsHeader)
	}
}
