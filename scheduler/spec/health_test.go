package spec

import (
	"strings"
	"testing"
	"time"
)

const inferenceYAML = `
name: svc
kind: inference
replicas: 2
resources: {gpus: 1}
task:
  driver: exec
  exec: {command: [serve]}
`

// TestHealthSpec: a declared check gets its defaults; a bad one is
// refused with field paths.
func TestHealthSpec(t *testing.T) {
	j, err := Parse([]byte(inferenceYAML + "  health: {http: {path: /healthz, port: 8080}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := j.Task.Health
	if h.HTTP.Path != "/healthz" || h.HTTP.Port != 8080 || h.Interval != Duration(5*time.Second) || h.Timeout != Duration(2*time.Second) || h.Failures != 3 {
		t.Fatalf("health %+v", h)
	}
	for _, tc := range []struct{ health, want string }{
		{"{}", "task.health: must declare exactly one of http, tcp, exec, got 0"},
		{"{tcp: {}, exec: {command: [true]}}", "task.health: must declare exactly one of http, tcp, exec, got 2"},
		{"{http: {path: healthz}}", `task.health.http.path: must start with /, got "healthz"`},
		{"{tcp: {port: 70000}}", "task.health.tcp.port: must be a TCP port"},
		{"{exec: {command: []}}", "task.health.exec.command: must name a program"},
		{"{tcp: {}, interval: 10ms}", "task.health.interval: must be at least 100ms"},
		{"{tcp: {}, interval: 1s, timeout: 2s}", "task.health.timeout: must be positive and at most the interval"},
		{"{tcp: {}, failures: -1}", "task.health.failures: must be between 1 and 100"},
		{"{tcp: {}, retries: 3}", "task.health.retries: unknown field"},
	} {
		_, err := Parse([]byte(inferenceYAML + "  health: " + tc.health + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("health %s: %v, want %q", tc.health, err, tc.want)
		}
	}
	batch := strings.Replace(inferenceYAML, "kind: inference", "kind: batch", 1)
	if _, err := Parse([]byte(batch + "  health: {tcp: {}}\n")); err == nil || !strings.Contains(err.Error(), "task.health: is for inference jobs") {
		t.Errorf("health on a batch job: %v", err)
	}
}
