package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestLineIsTheEntrysJSON: Append writes each entry's line by putting the
// hash into the JSON encoded once with an empty hash; the line must be
// byte for byte json.Marshal of the entry with its hash, for any text the
// fields hold (escaped quotes, HTML characters, other scripts), and its
// hash the one hashOf computes.
func TestLineIsTheEntrysJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"", "job-1", `q"uo\te`, "<a&b>", "téléchargé 日本", "\x01\n"} {
		if err := l.Append(Entry{Phase: PhaseResponse, Request: "r", Method: "POST", Route: "POST /v1/jobs", Target: target, Code: 201, Outcome: OutcomeOK}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	lines := logLines(t, path)
	if len(lines) != 6 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, line := range lines {
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		want, _ := json.Marshal(e)
		if !bytes.Equal(line, want) {
			t.Errorf("line %d:\n%s\nwant\n%s", i+1, line, want)
		}
		if h, _ := hashOf(e); h != e.Hash {
			t.Errorf("line %d: hash %s, want %s", i+1, e.Hash, h)
		}
	}
	if n, err := VerifyFile(path); err != nil || n != 6 {
		t.Fatalf("VerifyFile = %d, %v", n, err)
	}
}

// logLines reads the log at path, a line each.
func logLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}
