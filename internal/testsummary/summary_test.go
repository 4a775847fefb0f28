package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// stream builds a `go test -json` stream from short event descriptions.
func stream(t *testing.T, events ...event) string {
	t.Helper()
	var b strings.Builder
	for _, e := range events {
		js, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(js)
		b.WriteByte('\n')
	}
	return b.String()
}

const mod = "example.com/m"

func TestSummary(t *testing.T) {
	pkgA, pkgB := mod+"/a", mod+"/b"
	skipped := []event{
		{Action: "run", Package: pkgA, Test: "TestGPU"},
		{Action: "output", Package: pkgA, Test: "TestGPU", Output: "=== RUN   TestGPU\n"},
		{Action: "output", Package: pkgA, Test: "TestGPU", Output: "    gpu_test.go:12: setting up\n"},
		{Action: "output", Package: pkgA, Test: "TestGPU", Output: "    gpu_test.go:14: no CUDA device: libcuda.so.1 not found\n"},
		{Action: "output", Package: pkgA, Test: "TestGPU", Output: "--- SKIP: TestGPU (0.00s)\n"},
		{Action: "skip", Package: pkgA, Test: "TestGPU"},
	}
	passed := []event{
		{Action: "run", Package: pkgA, Test: "TestOK"},
		{Action: "run", Package: pkgA, Test: "TestOK/sub"},
		{Action: "pass", Package: pkgA, Test: "TestOK/sub"},
		{Action: "pass", Package: pkgA, Test: "TestOK"},
	}
	failed := []event{
		{Action: "run", Package: pkgB, Test: "TestBad"},
		{Action: "output", Package: pkgB, Test: "TestBad", Output: "    bad_test.go:3: got 1, want 2\n"},
		{Action: "output", Package: pkgB, Test: "TestBad", Output: "--- FAIL: TestBad (0.00s)\n"},
		{Action: "fail", Package: pkgB, Test: "TestBad"},
		{Action: "output", Package: pkgB, Output: "FAIL\n"},
		{Action: "fail", Package: pkgB, Elapsed: 0.5},
	}
	cat := func(parts ...[]event) []event {
		var out []event
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name     string
		events   []event
		allow    string
		strict   bool
		want     counts
		contains []string
		lacks    []string
	}{
		{"pass and an allowed skip",
			cat(passed, skipped, []event{{Action: "pass", Package: pkgA, Elapsed: 1.25}, {Action: "skip", Package: mod + "/c"}}),
			"^a TestGPU: no CUDA device # no GPU on CI\n", true,
			counts{pkgs: 2, pkgsNoTests: 1, passed: 2, skipped: 1},
			[]string{"ok  \texample.com/m/a\t1.250s", "?   \texample.com/m/c\t[no test files]",
				"a TestGPU: no CUDA device: libcuda.so.1 not found  [allowed: no GPU on CI]"},
			[]string{"setting up"}},
		{"a skip not on the list",
			cat(skipped, []event{{Action: "pass", Package: pkgA}}),
			"^a TestOther # something else\n", true,
			counts{pkgs: 1, skipped: 1, disallowed: 1},
			[]string{"a TestGPU: no CUDA device: libcuda.so.1 not found  [NOT ALLOWED]"}, nil},
		{"a failing test prints its output",
			cat(failed),
			"", false,
			counts{pkgs: 1, pkgsFailed: 1, failed: 1},
			[]string{"bad_test.go:3: got 1, want 2", "FAIL\texample.com/m/b\t0.500s", "failed (1):\n  b TestBad"}, nil},
		{"a build failure",
			[]event{
				{Action: "build-output", ImportPath: pkgB + " [" + pkgB + ".test]", Output: "b.go:1: syntax error\n"},
				{Action: "build-fail", ImportPath: pkgB + " [" + pkgB + ".test]"},
				{Action: "fail", Package: pkgB, FailedBuild: pkgB + " [" + pkgB + ".test]"}},
			"", false,
			counts{pkgs: 1, pkgsFailed: 1},
			[]string{"b.go:1: syntax error", "FAIL\texample.com/m/b [build failed]"}, nil},
		{"a package killed mid-test",
			[]event{{Action: "run", Package: pkgB, Test: "TestHang"}, {Action: "output", Package: pkgB, Output: "panic: test timed out after 15m0s\n"}},
			"", false,
			counts{pkgs: 1, pkgsFailed: 1, failed: 1},
			[]string{"panic: test timed out", "b TestHang"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rules []rule
			if tt.allow != "" {
				var err error
				if rules, err = parseAllow(strings.NewReader(tt.allow), "allow"); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			s := newSummary(&out)
			if err := s.read(strings.NewReader(stream(t, tt.events...))); err != nil {
				t.Fatal(err)
			}
			got := s.report(rules, mod, 0)
			if got != tt.want {
				t.Errorf("counts %+v, want %+v", got, tt.want)
			}
			for _, w := range tt.contains {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.lacks {
				if strings.Contains(out.String(), w) {
					t.Errorf("output has %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestSkipReason(t *testing.T) {
	tests := []struct {
		lines []string
		want  string
	}{
		{[]string{"=== RUN   TestX\n", "    x_test.go:9: S3 TESTS NOT RUN: set ARK_S3_ENDPOINT\n", "--- SKIP: TestX (0.00s)\n"}, "S3 TESTS NOT RUN: set ARK_S3_ENDPOINT"},
		{[]string{"    x_test.go:9: first line\n", "        continued\n"}, "first line continued"},
		{[]string{"--- SKIP: TestX (0.00s)\n"}, "(no reason given)"},
	}
	for _, tt := range tests {
		if got := skipReason(tt.lines); got != tt.want {
			t.Errorf("skipReason(%q) = %q, want %q", tt.lines, got, tt.want)
		}
	}
}

func TestParseAllowErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"^a TestX\n", `allow:1: want "PATTERN # why it is allowed"`},
		{"# comment\n\n^a (TestX # bad\n", "allow:3: error parsing regexp"},
		{"^a TestX # \n", `allow:1: want "PATTERN # why it is allowed"`},
	}
	for _, tt := range tests {
		_, err := parseAllow(strings.NewReader(tt.in), "allow")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseAllow(%q) = %v, want %q", tt.in, err, tt.want)
		}
	}
}

// Non-JSON lines (the toolchain's own messages) pass through.
func TestPassThrough(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out)
	if err := s.read(strings.NewReader("go: downloading example.com/x v1.0.0\n")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "go: downloading") {
		t.Errorf("output %q", out.String())
	}
}
