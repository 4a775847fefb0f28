package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReadSpecAbsolutePaths: the builtin runtime's local files are made
// absolute from where the user stands, each checkpoint of an eval job's
// list on its own; URIs are kept.
func TestReadSpecAbsolutePaths(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ base, want string }{
		{"examples/base/gpt-tiny", filepath.Join(wd, "examples/base/gpt-tiny")},
		{"a, s3://b/c/ft/10", filepath.Join(wd, "a") + ",s3://b/c/ft/10"},
		{"file:///x/y,b", "file:///x/y," + filepath.Join(wd, "b")},
		{"/abs/p", "/abs/p"},
	}
	for _, tc := range cases {
		path := filepath.Join(t.TempDir(), "eval.yaml")
		spec := "name: ev\nkind: eval\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {model: gpt-tiny, base: \"" + tc.base + "\", data: d.txt}}\n"
		if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		job, err := readSpec(path)
		if err != nil {
			t.Fatalf("%q: %v", tc.base, err)
		}
		if b := job.Task.Builtin; b.Base != tc.want || b.Data != filepath.Join(wd, "d.txt") {
			t.Errorf("%q: base %q data %q, want base %q", tc.base, b.Base, b.Data, tc.want)
		}
	}
}

// TestExampleSpecsValid: every spec in examples/ parses and validates as
// the README tells users to submit it.
func TestExampleSpecsValid(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example specs: %v", err)
	}
	for _, f := range files {
		if _, err := readSpec(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
