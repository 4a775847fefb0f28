package main

import (
	"strings"
	"testing"
)

// TestSpecErrorsInOnePass: a spec with a value of the wrong type and two
// other problems is refused (exit 2) with all three named by field path,
// before any server is asked.
func TestSpecErrorsInOnePass(t *testing.T) {
	spec := writeSpec(t, "name: x\nkind: batch\nreplicas: two\nresources: {gpus: -1}\ntask: {driver: exec, exec: {command: [\"true\"]}}\nrestart: {maxRestarts: -3}\n")
	for _, cmd := range [][]string{{"job", "validate", spec}, {"job", "submit", spec}} {
		code, out, _ := runArk(t, append(cmd, "--addr", "http://127.0.0.1:1")...)
		if code != exitUsage {
			t.Errorf("ark %s: exit %d, want %d\n%s", strings.Join(cmd[:2], " "), code, exitUsage, out)
		}
		for _, want := range []string{
			`replicas: must be an integer, got string "two"`,
			"resources.gpus: must be >= 1, got -1",
			"restart.maxRestarts: must be between 0 and 100, got -3",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("ark %s output lacks %q:\n%s", strings.Join(cmd[:2], " "), want, out)
			}
		}
	}
}
