package spec

// RateLimit bounds the requests a builtin server takes for each model it
// serves, the base and every adapter apiece (a token bucket of PerModel
// requests a second, Burst deep): one busy specialist cannot take every
// batch slot from the others. A request past it gets 429 with the
// Retry-After its bucket needs.
type RateLimit struct {
	PerModel float64 `json:"perModel"`
	Burst    int     `json:"burst,omitempty"`
}

// validateRateLimit checks task.builtin.rateLimit of a defaulted job.
func validateRateLimit(j *Job, add func(path, format string, args ...any)) {
	b := j.Task.Builtin
	if b == nil || b.RateLimit == nil {
		return
	}
	r := b.RateLimit
	if j.Kind != KindInference {
		add("task.builtin.rateLimit", "is for inference jobs, not %s jobs", j.Kind)
	}
	if r.PerModel <= 0 || r.PerModel > 1e6 {
		add("task.builtin.rateLimit.perModel", "must be a rate in requests a second, above 0 and at most 1e6, got %g", r.PerModel)
	}
	if r.Burst < 0 || r.Burst > 1_000_000 {
		add("task.builtin.rateLimit.burst", "must be between 0 (one second's worth) and 1000000, got %d", r.Burst)
	}
}
