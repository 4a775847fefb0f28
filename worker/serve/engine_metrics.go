package serve

import (
	"sync"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// The figures a replica reports about itself in its health answer
// ("metrics"), which its agent exports on /metrics with the job, rank and
// node labels (docs/metrics.md, "Task"): histograms of the time to the
// first token and of the time per output token after it, requests by
// adapter, and the rules' actions.

var (
	// ttftBounds and tpotBounds are the histograms' upper bounds, in
	// seconds, near vLLM's.
	ttftBounds = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	tpotBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
)

// histogram counts observations into fixed buckets.
type histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []uint64 // one past bounds: above them all
	sum    float64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(h.bounds) && s > h.bounds[i] {
		i++
	}
	h.mu.Lock()
	h.counts[i]++
	h.sum += s
	h.mu.Unlock()
}

func (h *histogram) snapshot() *api.Histogram {
	h.mu.Lock()
	defer h.mu.Unlock()
	return &api.Histogram{Bounds: h.bounds, Counts: append([]uint64(nil), h.counts...), Sum: h.sum}
}

// counts is a set of counters by name.
type counts struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (c *counts) add(k string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]uint64{}
	}
	c.m[k]++
	c.mu.Unlock()
}

func (c *counts) snapshot() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// engineFigures are the engine's histograms and per-adapter counts.
type engineFigures struct {
	ttft, tpot *histogram
	byAdapter  counts // requests queued, by adapter ("" the base)
}

func newEngineFigures() engineFigures {
	return engineFigures{ttft: newHistogram(ttftBounds), tpot: newHistogram(tpotBounds)}
}

// finished records a request's time per output token: from its first
// token to its last, over the tokens after the first.
func (f *engineFigures) finished(p *pending) {
	if p.ntok > 1 && !p.first.IsZero() {
		f.tpot.observe(time.Since(p.first) / time.Duration(p.ntok-1))
	}
}

// Metrics are the replica's figures for its agent.
func (s *Server) Metrics() *api.TaskMetrics {
	st := s.eng.Stats()
	return &api.TaskMetrics{Serve: &api.ServeMetrics{
		Running: st.Running, Waiting: st.Queued, OutputTokens: st.Tokens,
		TTFT: s.eng.fig.ttft.snapshot(), TPOT: s.eng.fig.tpot.snapshot(),
		Requests: s.eng.fig.byAdapter.snapshot(), RuleActions: s.ruleActions.snapshot(),
	}}
}
