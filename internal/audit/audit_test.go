package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path string, n int) {
	t.Helper()
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range n {
		if err := l.Append(Entry{Phase: PhaseRequest, Request: "r", Method: "POST", Route: "POST /v1/jobs", Target: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestChainAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	write(t, path, 3)
	write(t, path, 2) // a restart continues the chain
	n, err := VerifyFile(path)
	if err != nil || n != 5 {
		t.Fatalf("VerifyFile = %d, %v; want 5 entries", n, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

// Every way of tampering is caught, at the line where it happened.
func TestVerifyCatchesTampering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	write(t, path, 4)
	orig, _ := os.ReadFile(path)
	lines := strings.SplitAfter(strings.TrimSuffix(string(orig), "\n"), "\n")
	tests := []struct {
		name     string
		lines    []string
		wantLine int
		want     string
	}{
		{"a line removed", []string{lines[0], lines[2], lines[3]}, 2, "removed, reordered or edited"},
		{"lines swapped", []string{lines[0], lines[2], lines[1], lines[3]}, 2, "removed, reordered or edited"},
		{"a field edited", []string{lines[0], strings.Replace(lines[1], `"target":"b"`, `"target":"x"`, 1), lines[2], lines[3]}, 2, "the line was edited"},
		{"the last line torn", []string{lines[0], lines[1], lines[2], lines[3][:20]}, 4, "does not end"},
		{"a line re-spaced", []string{lines[0], strings.Replace(lines[1], `","`, `", "`, 1), lines[2], lines[3]}, 2, "not in the form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(bytes.NewReader([]byte(strings.Join(tt.lines, ""))))
			var ce *ChainError
			if !errors.As(err, &ce) || ce.Line != tt.wantLine || !strings.Contains(ce.Msg, tt.want) {
				t.Errorf("Verify = %v, want line %d: %q", err, tt.wantLine, tt.want)
			}
		})
	}
	// A tampered file is not appended to.
	if err := os.WriteFile(path, []byte(lines[0]+lines[2]), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Errorf("Open of a tampered log: %v", err)
	}
}

func TestOutcome(t *testing.T) {
	for code, want := range map[int]string{200: OutcomeOK, 201: OutcomeOK, 401: OutcomeDenied, 403: OutcomeDenied, 429: OutcomeDenied, 400: OutcomeFailed, 500: OutcomeFailed} {
		if got := Outcome(code); got != want {
			t.Errorf("Outcome(%d) = %s, want %s", code, got, want)
		}
	}
}

// FuzzVerify: whatever a file holds, Verify answers without panicking, and
// a log it accepts re-verifies after a fresh append.
func FuzzVerify(f *testing.F) {
	path := filepath.Join(f.TempDir(), "seed.log")
	l, err := Open(path)
	if err != nil {
		f.Fatal(err)
	}
	for range 2 {
		if err := l.Append(Entry{Phase: PhaseRequest, Method: "POST", Route: "POST /v1/jobs"}); err != nil {
			f.Fatal(err)
		}
	}
	l.Close()
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"seq":1,"prev":"x","hash":"y"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		last, err := Verify(bytes.NewReader(data))
		if err != nil {
			return
		}
		p := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(p)
		if err != nil {
			t.Fatalf("Verify accepted it but Open did not: %v", err)
		}
		if err := l.Append(Entry{Phase: PhaseRequest}); err != nil {
			t.Fatal(err)
		}
		l.Close()
		n, err := VerifyFile(p)
		want := 1
		if last != nil {
			want = int(last.Seq) + 1
		}
		if err != nil || n != want {
			t.Fatalf("after an append: %d entries, %v; want %d", n, err, want)
		}
	})
}
