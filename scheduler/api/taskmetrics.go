package api

import (
	"fmt"
	"math"
	"regexp"

	"github.com/ark-sched/ark/scheduler/spec"
)

// TaskMetrics are the figures a task reports to its agent, which exports
// them on its /metrics with the job, namespace, rank and node labels it
// knows itself (docs/metrics.md, "Task"). The builtin trainer sends them
// in its task reports (TaskReport.Metrics); the builtin server answers
// them in its health check's JSON ("metrics"), which the agent already
// reads for the replica's load. The schema is fixed: a task names no
// family and no label of its own, only adapter names (checked, and
// capped by the agent) and rule actions (block, mask, route).
type TaskMetrics struct {
	Train *TrainMetrics `json:"train,omitempty"`
	Serve *ServeMetrics `json:"serve,omitempty"`
}

// TrainMetrics are a training rank's latest figures.
type TrainMetrics struct {
	Step            int64   `json:"step"`
	Loss            float64 `json:"loss"`
	TokensPerSecond float64 `json:"tokensPerSecond"`
}

// ServeMetrics are an inference replica's figures: gauges now, counters
// and histograms since it started.
type ServeMetrics struct {
	Running      int    `json:"running"`
	Waiting      int    `json:"waiting"`
	OutputTokens uint64 `json:"outputTokens"`
	// TTFT is the time to the first token, TPOT the time per output
	// token after the first, of each finished request, in seconds.
	TTFT *Histogram `json:"ttftSeconds,omitempty"`
	TPOT *Histogram `json:"tpotSeconds,omitempty"`
	// Requests are the requests submitted, by adapter ("" the base).
	Requests map[string]uint64 `json:"requests,omitempty"`
	// RuleActions are the intervention rules' actions, by action.
	RuleActions map[string]uint64 `json:"ruleActions,omitempty"`
}

// Histogram is a Prometheus histogram as a task sends it: Counts[i] are
// the observations <= Bounds[i] and above the bound before (not
// cumulative); the last count, one past the bounds, is above them all.
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Sum    float64   `json:"sum"`
}

// Limits on what a task reports: what keeps one task from blowing up its
// agent's series.
const (
	MaxHistogramBuckets = 32
	// MaxTaskAdapters adapters of a replica get their own series; the
	// agent folds the others into OtherAdapters.
	MaxTaskAdapters = 16
	OtherAdapters   = "_other"
	// BaseAdapter is the adapter label of requests to the base model.
	BaseAdapter = "_base"
	// maxMapKeys bounds the maps a report may carry at all.
	maxMapKeys = 1024
)

var adapterKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`) // spec's adapter names

// Check reports the first problem of m, with its field path under
// "metrics".
func (m *TaskMetrics) Check() error {
	bad := func(path, format string, args ...any) error {
		return spec.FieldError{Path: "metrics." + path, Msg: fmt.Sprintf(format, args...)}
	}
	if t := m.Train; t != nil {
		switch {
		case t.Step < 0:
			return bad("train.step", "must be >= 0, got %d", t.Step)
		case !finite(t.Loss) || t.Loss < 0:
			return bad("train.loss", "must be a finite number >= 0, got %g", t.Loss)
		case !finite(t.TokensPerSecond) || t.TokensPerSecond < 0:
			return bad("train.tokensPerSecond", "must be a finite number >= 0, got %g", t.TokensPerSecond)
		}
	}
	s := m.Serve
	if s == nil {
		return nil
	}
	if s.Running < 0 || s.Waiting < 0 {
		return bad("serve", "running and waiting must be >= 0, got %d and %d", s.Running, s.Waiting)
	}
	for name, h := range map[string]*Histogram{"ttftSeconds": s.TTFT, "tpotSeconds": s.TPOT} {
		if err := h.check(); err != nil {
			return bad("serve."+name, "%v", err)
		}
	}
	if len(s.Requests) > maxMapKeys {
		return bad("serve.requests", "at most %d adapters, got %d", maxMapKeys, len(s.Requests))
	}
	for k := range s.Requests {
		if k != "" && !adapterKeyRE.MatchString(k) {
			return bad(fmt.Sprintf("serve.requests[%q]", k), "not an adapter name (letters, digits, '.', '_', '-'; at most 64)")
		}
	}
	for k := range s.RuleActions {
		switch k {
		case spec.RuleBlock, spec.RuleMask, spec.RuleRoute:
		default:
			return bad(fmt.Sprintf("serve.ruleActions[%q]", k), "must be %s, %s or %s", spec.RuleBlock, spec.RuleMask, spec.RuleRoute)
		}
	}
	return nil
}

func (h *Histogram) check() error {
	if h == nil {
		return nil
	}
	switch {
	case len(h.Bounds) == 0 || len(h.Bounds) > MaxHistogramBuckets:
		return fmt.Errorf("1 to %d bounds, got %d", MaxHistogramBuckets, len(h.Bounds))
	case len(h.Counts) != len(h.Bounds)+1:
		return fmt.Errorf("%d counts for %d bounds, want one more count than bounds", len(h.Counts), len(h.Bounds))
	case !finite(h.Sum) || h.Sum < 0:
		return fmt.Errorf("sum must be a finite number >= 0, got %g", h.Sum)
	}
	for i, b := range h.Bounds {
		if !finite(b) || (i > 0 && b <= h.Bounds[i-1]) {
			return fmt.Errorf("bounds must be finite and increasing, got %v", h.Bounds)
		}
	}
	var n uint64
	for _, c := range h.Counts {
		if n+c < n {
			return fmt.Errorf("counts overflow")
		}
		n += c
	}
	return nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
