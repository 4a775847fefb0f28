package driver

import (
	"context"
	"errors"
	"time"

	"github.com/ark-sched/ark/scheduler/spec"
)

// TaskConfig is everything a driver needs to start one task.
type TaskConfig struct {
	// AllocID names the allocation, for logs and errors.
	AllocID string
	// Kind is the job's kind (finetune, eval, inference, batch).
	Kind string
	// Task is the task spec.
	Task spec.Task
	// CPUMilli and MemoryBytes are what the allocation holds: the limits
	// of its cgroup (when Cgroups is set), and the builtin runtime sizes
	// its thread pool from the CPU.
	CPUMilli    int64
	MemoryBytes int64
	// PidsMax is the cgroup's pids.max where the pids controller is there
	// (0: DefaultPidsMax).
	PidsMax int64
	// Cgroups, when set, runs the task in its own cgroup v2 with those
	// limits.
	Cgroups *Cgroups
	// CheckpointEvery and CheckpointKeep are the job's checkpoint policy.
	CheckpointEvery, CheckpointKeep int
	// Env is the complete environment of the task, as KEY=VALUE.
	Env []string
	// Dir is the allocation's directory; the task runs in Dir/work unless
	// its spec names a work dir.
	Dir string
	// Stdout and Stderr are the files the task's output goes to, rotated
	// at LogMaxBytes (default 64 MiB) keeping LogKeep older files
	// (default 3).
	Stdout, Stderr string
	LogMaxBytes    int64
	LogKeep        int
	// User, when set, is the (unprivileged) user the task runs as; the
	// agent must run as root to switch to it.
	User string
}

// Result is how a task ended.
type Result struct {
	// ExitCode is the process's exit status, or -1 when a signal ended it.
	ExitCode int
	// Signal names the signal that ended it ("SIGKILL"), if any.
	Signal string
	// Err is set when the task could not be waited on at all.
	Err error
}

// Succeeded reports whether the task exited 0.
func (r Result) Succeeded() bool { return r.Err == nil && r.Signal == "" && r.ExitCode == 0 }

// Handle is a running task.
type Handle interface {
	// Pid is the task's process (group leader) ID.
	Pid() int
	// Done is closed when the task has ended.
	Done() <-chan struct{}
	// Result is how it ended; valid once Done is closed.
	Result() Result
	// Stop asks the task to end: SIGTERM to its process group, then
	// SIGKILL after grace. It returns once the task has ended or ctx ends.
	Stop(ctx context.Context, grace time.Duration) error
}

// Driver starts tasks.
type Driver interface {
	Name() string
	Start(ctx context.Context, cfg TaskConfig) (Handle, error)
}

// ErrUnsupported is returned for a task no driver of this build can run.
var ErrUnsupported = errors.New("unsupported task driver")
