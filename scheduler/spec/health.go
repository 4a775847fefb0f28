package spec

import (
	"fmt"
	"time"
)

// Health is how the agent checks that a service replica serves: one of
// an HTTP GET (2xx or 3xx passes), a TCP connect or a command (exit 0
// passes), every Interval, each within Timeout. A replica is ready (sent
// traffic) once a check passes, and is stopped and replaced after
// Failures checks in a row fail. The builtin server needs none: its
// replicas are checked with GET /v1/health.
type Health struct {
	HTTP *HTTPCheck `json:"http,omitempty"`
	TCP  *TCPCheck  `json:"tcp,omitempty"`
	Exec *ExecCheck `json:"exec,omitempty"`
	// Interval between checks (default 5s), Timeout of one (default 2s),
	// Failures in a row that stop the replica (default 3).
	Interval Duration `json:"interval,omitempty"`
	Timeout  Duration `json:"timeout,omitempty"`
	Failures int      `json:"failures,omitempty"`
	// StartupTimeout restarts a replica that has not passed a check
	// that long after it started (a model that never loads); 0 waits
	// for ever.
	StartupTimeout Duration `json:"startupTimeout,omitempty"`
}

// HTTPCheck gets Path on the replica's node at Port (0: the replica's
// service port, ARK_PORT).
type HTTPCheck struct {
	Path string `json:"path"`
	Port int    `json:"port,omitempty"`
}

// TCPCheck connects to Port on the replica's node (0: its service port).
type TCPCheck struct {
	Port int `json:"port,omitempty"`
}

// ExecCheck runs Command in the replica's directory, with its
// environment.
type ExecCheck struct {
	Command []string `json:"command"`
}

// Defaults and bounds of health checks.
const (
	DefaultHealthInterval = Duration(5 * time.Second)
	DefaultHealthTimeout  = Duration(2 * time.Second)
	DefaultHealthFailures = 3
	maxHealthFailures     = 100
)

// BuiltinHealth is the check of a builtin inference replica.
func BuiltinHealth() *Health {
	return &Health{HTTP: &HTTPCheck{Path: "/v1/health"}, Interval: Duration(time.Second), Timeout: DefaultHealthTimeout, Failures: DefaultHealthFailures}
}

func (h *Health) defaults() {
	if h.Interval == 0 {
		h.Interval = DefaultHealthInterval
	}
	if h.Timeout == 0 {
		h.Timeout = DefaultHealthTimeout
	}
	if h.Failures == 0 {
		h.Failures = DefaultHealthFailures
	}
}

// validateHealth checks task.health of a defaulted job.
func validateHealth(j *Job, add func(path, format string, args ...any)) {
	h := j.Task.Health
	if h == nil {
		return
	}
	if j.Kind != KindInference {
		add("task.health", "is for inference jobs (services), not %s jobs", j.Kind)
	}
	kinds := 0
	if h.HTTP != nil {
		kinds++
		if len(h.HTTP.Path) == 0 || h.HTTP.Path[0] != '/' {
			add("task.health.http.path", "must start with /, got %q", h.HTTP.Path)
		}
		checkPort(add, "task.health.http.port", h.HTTP.Port)
	}
	if h.TCP != nil {
		kinds++
		checkPort(add, "task.health.tcp.port", h.TCP.Port)
	}
	if h.Exec != nil {
		kinds++
		if len(h.Exec.Command) == 0 || h.Exec.Command[0] == "" {
			add("task.health.exec.command", "must name a program")
		}
	}
	if kinds != 1 {
		add("task.health", "must declare exactly one of http, tcp, exec, got %d", kinds)
	}
	if h.Interval < Duration(100*time.Millisecond) {
		add("task.health.interval", "must be at least 100ms, got %s", time.Duration(h.Interval))
	}
	if h.Timeout <= 0 || h.Timeout > h.Interval {
		add("task.health.timeout", "must be positive and at most the interval (%s), got %s", time.Duration(h.Interval), time.Duration(h.Timeout))
	}
	if h.StartupTimeout < 0 || (h.StartupTimeout > 0 && h.StartupTimeout < h.Interval) {
		add("task.health.startupTimeout", "must be 0 (none) or at least the interval (%s), got %s", time.Duration(h.Interval), time.Duration(h.StartupTimeout))
	}
	if h.Failures < 1 || h.Failures > maxHealthFailures {
		add("task.health.failures", "must be between 1 and %d, got %d", maxHealthFailures, h.Failures)
	}
}

func checkPort(add func(path, format string, args ...any), path string, port int) {
	if port < 0 || port > 65535 {
		add(path, "must be a TCP port (1..65535, or 0 for the replica's service port), got %d", port)
	}
}

// String says what a check does ("GET :0/v1/health").
func (h *Health) String() string {
	switch {
	case h.HTTP != nil:
		return fmt.Sprintf("GET :%d%s", h.HTTP.Port, h.HTTP.Path)
	case h.TCP != nil:
		return fmt.Sprintf("TCP :%d", h.TCP.Port)
	case h.Exec != nil:
		return fmt.Sprintf("exec %q", h.Exec.Command)
	}
	return "none"
}
