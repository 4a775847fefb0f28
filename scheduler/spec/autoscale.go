package spec

import (
	"fmt"
	"time"
)

// Autoscale lets the leader set a service's replica count from the load
// its replicas report (through their health check's answer, see
// docs/services.md): between Min and Max, aiming at Target per replica.
// It scales out once the load has been above the target for
// ScaleOutAfter, in once it has been below for ScaleInAfter, and to zero
// (Min 0) once no replica has had a request for IdleToZero; a request to
// a service at zero waits up to WakeTimeout for a replica.
type Autoscale struct {
	Min    int             `json:"min"`
	Max    int             `json:"max"`
	Target AutoscaleTarget `json:"target"`

	ScaleOutAfter Duration `json:"scaleOutAfter,omitempty"`
	ScaleInAfter  Duration `json:"scaleInAfter,omitempty"`
	IdleToZero    Duration `json:"idleToZero,omitempty"`
	WakeTimeout   Duration `json:"wakeTimeout,omitempty"`
}

// AutoscaleTarget is the load one replica should carry: requests running
// or waiting (QueueDepth), or the 90th percentile of the time to the first
// token in milliseconds (TTFTMsP90). Exactly one is set.
type AutoscaleTarget struct {
	QueueDepth float64 `json:"queueDepth,omitempty"`
	TTFTMsP90  float64 `json:"ttftMsP90,omitempty"`
}

// Defaults of an autoscaled service.
const (
	DefaultScaleOutAfter = Duration(15 * time.Second)
	DefaultScaleInAfter  = Duration(2 * time.Minute)
	DefaultIdleToZero    = Duration(10 * time.Minute)
	DefaultWakeTimeout   = Duration(2 * time.Minute)
)

func (a *Autoscale) defaults() {
	if a.ScaleOutAfter == 0 {
		a.ScaleOutAfter = DefaultScaleOutAfter
	}
	if a.ScaleInAfter == 0 {
		a.ScaleInAfter = DefaultScaleInAfter
	}
	if a.IdleToZero == 0 {
		a.IdleToZero = DefaultIdleToZero
	}
	if a.WakeTimeout == 0 {
		a.WakeTimeout = DefaultWakeTimeout
	}
}

// Clamp is n within [Min, Max].
func (a *Autoscale) Clamp(n int) int { return min(max(n, a.Min), a.Max) }

// validateAutoscale checks autoscale of a defaulted job.
func validateAutoscale(j *Job, add func(path, format string, args ...any)) {
	a := j.Autoscale
	if a == nil {
		return
	}
	if j.Kind != KindInference {
		add("autoscale", "is for inference jobs (services), not %s jobs", j.Kind)
		return
	}
	if a.Min < 0 || a.Min > a.Max {
		add("autoscale.min", "must be between 0 and autoscale.max (%d), got %d", a.Max, a.Min)
	}
	if a.Max < 1 || a.Max > MaxReplicas {
		add("autoscale.max", "must be between 1 and %d, got %d", MaxReplicas, a.Max)
	}
	t := a.Target
	switch {
	case t.QueueDepth < 0 || t.TTFTMsP90 < 0:
		add("autoscale.target", "must be positive, got queueDepth %g, ttftMsP90 %g", t.QueueDepth, t.TTFTMsP90)
	case (t.QueueDepth > 0) == (t.TTFTMsP90 > 0):
		add("autoscale.target", "must set exactly one of queueDepth (requests per replica) and ttftMsP90 (milliseconds)")
	}
	for _, d := range []struct {
		path string
		v    Duration
	}{{"autoscale.scaleOutAfter", a.ScaleOutAfter}, {"autoscale.scaleInAfter", a.ScaleInAfter}, {"autoscale.idleToZero", a.IdleToZero}, {"autoscale.wakeTimeout", a.WakeTimeout}} {
		if d.v < Duration(time.Second) {
			add(d.path, "must be at least 1s, got %s", time.Duration(d.v))
		}
	}
	if j.Replicas < a.Min || j.Replicas > a.Max {
		add("replicas", "must be within autoscale.min and autoscale.max (%d..%d) to start from, got %d", a.Min, a.Max, j.Replicas)
	}
}

// String says what the autoscaler aims at ("1..8 replicas, 4 requests
// each").
func (a *Autoscale) String() string {
	if a.Target.QueueDepth > 0 {
		return fmt.Sprintf("%d..%d replicas, %g requests each", a.Min, a.Max, a.Target.QueueDepth)
	}
	return fmt.Sprintf("%d..%d replicas, TTFT p90 %gms", a.Min, a.Max, a.Target.TTFTMsP90)
}
