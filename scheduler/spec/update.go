package spec

import (
	"fmt"
	"time"
)

// Update is how a service (an inference job) rolls out a new version of
// its spec (Nomad's update block): MaxParallel replicas are replaced at a
// time, each new replica started next to the old one it replaces (the
// old one stops once the new one has stayed healthy MinHealthyTime), so
// the service never serves with fewer replicas than it asked for.
// Canary > 0 first starts that many new replicas next to the old ones and
// waits for `ark job promote`. A rollout that makes no progress for
// ProgressDeadline, or whose new replica ends by itself, fails; with
// AutoRevert the job then goes back to its last version that rolled out.
//
// StopFirst replaces a replica by stopping the old one first and placing
// the new one in its place (Kubernetes' maxSurge 0): no spare GPU is
// needed, and the service serves MaxParallel replicas short meanwhile.
// Canaries still run next to the old replicas.
type Update struct {
	MaxParallel      int      `json:"maxParallel,omitempty"`
	MinHealthyTime   Duration `json:"minHealthyTime,omitempty"`
	ProgressDeadline Duration `json:"progressDeadline,omitempty"`
	Canary           int      `json:"canary,omitempty"`
	AutoRevert       bool     `json:"autoRevert,omitempty"`
	StopFirst        bool     `json:"stopFirst,omitempty"`
}

// Defaults of a service's update strategy (Nomad's).
const (
	DefaultMaxParallel      = 1
	DefaultMinHealthyTime   = Duration(10 * time.Second)
	DefaultProgressDeadline = Duration(10 * time.Minute)
	// DefaultShutdownDelay is how long a stopped service replica keeps
	// serving before its task is signalled: every server's endpoint stops
	// routing to it first (task.shutdownDelay).
	DefaultShutdownDelay = Duration(2 * time.Second)
	maxShutdownDelay     = Duration(10 * time.Minute)
)

func (u *Update) defaults() {
	if u.MaxParallel == 0 {
		u.MaxParallel = DefaultMaxParallel
	}
	if u.MinHealthyTime == 0 {
		u.MinHealthyTime = DefaultMinHealthyTime
	}
	if u.ProgressDeadline == 0 {
		u.ProgressDeadline = DefaultProgressDeadline
	}
}

// UpdateOf is j's update strategy, defaulted (a spec without one gets
// the defaults).
func UpdateOf(j *Job) Update {
	var u Update
	if j.Update != nil {
		u = *j.Update
	}
	u.defaults()
	return u
}

// validateUpdate checks update and task.shutdownDelay of a defaulted job.
func validateUpdate(j *Job, add func(path, format string, args ...any)) {
	if d := j.Task.ShutdownDelay; d < 0 || d > maxShutdownDelay {
		add("task.shutdownDelay", "must be between 0 and %s, got %s", time.Duration(maxShutdownDelay), time.Duration(d))
	}
	u := j.Update
	if u == nil {
		return
	}
	if j.Kind != KindInference {
		add("update", "is for inference jobs (services), not %s jobs: their spec cannot change while they run", j.Kind)
		return
	}
	if u.MaxParallel < 1 || u.MaxParallel > MaxReplicas {
		add("update.maxParallel", "must be between 1 and %d, got %d", MaxReplicas, u.MaxParallel)
	}
	if u.MinHealthyTime < 0 || u.MinHealthyTime > u.ProgressDeadline {
		add("update.minHealthyTime", "must be between 0 and the progress deadline (%s), got %s", time.Duration(u.ProgressDeadline), time.Duration(u.MinHealthyTime))
	}
	if u.ProgressDeadline < Duration(time.Second) {
		add("update.progressDeadline", "must be at least 1s, got %s", time.Duration(u.ProgressDeadline))
	}
	if u.Canary < 0 || u.Canary > j.Replicas {
		add("update.canary", "must be between 0 and replicas (%d), got %d", j.Replicas, u.Canary)
	}
}

// String says what the strategy does ("1 at a time, healthy 10s").
func (u Update) String() string {
	s := fmt.Sprintf("%d at a time, healthy %s, deadline %s", u.MaxParallel, time.Duration(u.MinHealthyTime), time.Duration(u.ProgressDeadline))
	if u.Canary > 0 {
		s += fmt.Sprintf(", %d canary", u.Canary)
	}
	if u.AutoRevert {
		s += ", auto-revert"
	}
	if u.StopFirst {
		s += ", stop first"
	}
	return s
}
