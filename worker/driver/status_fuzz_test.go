package driver

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadStatus checks the reader of the supervisor's status file (in the
// allocation's directory, where a task running as the agent's user could
// write): what it accepts is an exit the supervisor could have recorded and
// survives a write and read unchanged; a task reads as succeeded only when
// the file says exit code 0 with no signal and no error; and whatever it
// refuses reads as no record at all.
func FuzzReadStatus(f *testing.F) {
	for _, st := range []exitStatus{{}, {ExitCode: 3}, {ExitCode: -1, Signal: "SIGKILL"}, {ExitCode: 127, Error: "start /bin/nope: no such file"}} {
		b, _ := json.Marshal(st)
		f.Add(b)
	}
	for _, s := range []string{"null", "{}", `{"exitCode":0,"signal":"SIGTERM"}`, `{"exitCode":1e3}`, `{"exitCode":"0"}`, `{"exitCode":0}{"exitCode":1}`, ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeStatus(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "status file: ") {
				t.Fatalf("decodeStatus(%q): error %q does not name the status file", data, err)
			}
			return
		}
		if st.ExitCode < -1 || st.ExitCode > 255 || (st.Signal != "" && st.ExitCode != -1) {
			t.Fatalf("decodeStatus(%q) accepted an exit no process has: %+v", data, st)
		}
		var raw map[string]any // encoding/json matches keys case-insensitively
		if err := json.Unmarshal(data, &raw); err != nil || !hasKeyFold(raw, "exitCode") {
			t.Fatalf("decodeStatus(%q) = %+v without an exitCode in the file", data, st)
		}
		// The agent's path: the file in an allocation's directory.
		dir := t.TempDir()
		if err := writeJSONAtomic(filepath.Join(dir, statusFile), st); err != nil {
			t.Fatal(err)
		}
		res, ok := readStatus(dir)
		if !ok || res.ExitCode != st.ExitCode || res.Signal != st.Signal || (res.Err == nil) != (st.Error == "") {
			t.Fatalf("status %+v written and read back as %+v, %v", st, res, ok)
		}
		if res.Succeeded() != (st.ExitCode == 0 && st.Signal == "" && st.Error == "") {
			t.Fatalf("status %+v reads as succeeded=%v", st, res.Succeeded())
		}
		if err := os.WriteFile(filepath.Join(dir, statusFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if res2, ok := readStatus(dir); !ok || res2.ExitCode != res.ExitCode || res2.Signal != res.Signal {
			t.Fatalf("readStatus of %q = %+v, %v; decodeStatus said %+v", data, res2, ok, st)
		}
	})
}

func hasKeyFold(m map[string]any, key string) bool {
	for k, v := range m {
		if strings.EqualFold(k, key) && v != nil {
			return true
		}
	}
	return false
}
