package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

func TestFileTail(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var many strings.Builder
	for i := range 50 {
		fmt.Fprintf(&many, "line %d\n", i)
	}
	cases := []struct {
		name, text, want string
	}{
		{"short", "boom\n", "boom"},
		{"blank lines at the end", "a\nb\n\n\n", "a\nb"},
		{"last ten lines", many.String(), "line 40\nline 41\nline 42\nline 43\nline 44\nline 45\nline 46\nline 47\nline 48\nline 49"},
		{"empty", "", ""},
	}
	for _, tc := range cases {
		if got := fileTail(write(tc.name, tc.text), TailLines, TailBytes); got != tc.want {
			t.Errorf("%s: tail %q, want %q", tc.name, got, tc.want)
		}
	}
	// The partial first line of a cut is dropped; a single long line is
	// cut to TailBytes from the end, at a rune.
	if got := fileTail(write("cut", strings.Repeat("ü", 3*TailBytes)+"\nthe end"), TailLines, TailBytes); got != "the end" {
		t.Errorf("cut tail: %q, want the whole lines only", got)
	}
	got := fileTail(write("long", "start "+strings.Repeat("ü", 3*TailBytes)+" end"), TailLines, TailBytes)
	if len(got) > TailBytes || len(got) < TailBytes-2 || !strings.HasSuffix(got, "ü end") || !strings.HasPrefix(got, "ü") {
		t.Errorf("long line: %d bytes, want at most %d ending in \"ü end\"", len(got), TailBytes)
	}
	if got := fileTail(filepath.Join(dir, "missing"), TailLines, TailBytes); got != "" {
		t.Errorf("missing file: %q", got)
	}
}

func TestWithStderrTail(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logPath(dir, "stderr"), []byte("ValueError: bad lr\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	failed := api.AllocStatusUpdate{Status: api.AllocFailed}
	if u := withStderrTail(failed, dir, ""); u.StderrTail != "ValueError: bad lr" {
		t.Errorf("failed task: tail %q", u.StderrTail)
	}
	if u := withStderrTail(failed, dir, "job cancelled"); u.StderrTail != "" {
		t.Errorf("stopped task carries a tail %q; its stderr says nothing of why it stopped", u.StderrTail)
	}
	if u := withStderrTail(api.AllocStatusUpdate{Status: api.AllocSucceeded}, dir, ""); u.StderrTail != "" {
		t.Errorf("succeeded task carries a tail %q", u.StderrTail)
	}
}
