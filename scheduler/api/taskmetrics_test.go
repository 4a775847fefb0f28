package api

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/spec"
)

func TestTaskMetricsCheck(t *testing.T) {
	h := func(bounds []float64, counts []uint64, sum float64) *Histogram {
		return &Histogram{Bounds: bounds, Counts: counts, Sum: sum}
	}
	for _, tc := range []struct {
		name string
		m    TaskMetrics
		path string // "" when valid
	}{
		{"empty", TaskMetrics{}, ""},
		{"train", TaskMetrics{Train: &TrainMetrics{Step: 3, Loss: 2.1, TokensPerSecond: 900}}, ""},
		{"negative step", TaskMetrics{Train: &TrainMetrics{Step: -1}}, "metrics.train.step"},
		{"NaN loss", TaskMetrics{Train: &TrainMetrics{Loss: math.NaN()}}, "metrics.train.loss"},
		{"infinite rate", TaskMetrics{Train: &TrainMetrics{TokensPerSecond: math.Inf(1)}}, "metrics.train.tokensPerSecond"},
		{"serve", TaskMetrics{Serve: &ServeMetrics{Running: 1, TTFT: h([]float64{0.1, 1}, []uint64{1, 2, 0}, 1.3),
			Requests: map[string]uint64{"": 1, "sql.v2": 2}, RuleActions: map[string]uint64{"mask": 1}}}, ""},
		{"negative waiting", TaskMetrics{Serve: &ServeMetrics{Waiting: -2}}, "metrics.serve"},
		{"counts short", TaskMetrics{Serve: &ServeMetrics{TTFT: h([]float64{1}, []uint64{1}, 1)}}, "metrics.serve.ttftSeconds"},
		{"bounds not increasing", TaskMetrics{Serve: &ServeMetrics{TPOT: h([]float64{1, 1}, []uint64{1, 1, 1}, 1)}}, "metrics.serve.tpotSeconds"},
		{"no bounds", TaskMetrics{Serve: &ServeMetrics{TPOT: h(nil, []uint64{1}, 1)}}, "metrics.serve.tpotSeconds"},
		{"too many bounds", TaskMetrics{Serve: &ServeMetrics{TPOT: h(make([]float64, 33), make([]uint64, 34), 0)}}, "metrics.serve.tpotSeconds"},
		{"NaN sum", TaskMetrics{Serve: &ServeMetrics{TPOT: h([]float64{1}, []uint64{1, 1}, math.NaN())}}, "metrics.serve.tpotSeconds"},
		{"counts overflow", TaskMetrics{Serve: &ServeMetrics{TPOT: h([]float64{1}, []uint64{math.MaxUint64, 1}, 1)}}, "metrics.serve.tpotSeconds"},
		{"adapter with a quote", TaskMetrics{Serve: &ServeMetrics{Requests: map[string]uint64{`a"b`: 1}}}, `metrics.serve.requests["a\"b"]`},
		{"adapter too long", TaskMetrics{Serve: &ServeMetrics{Requests: map[string]uint64{strings.Repeat("a", 65): 1}}}, "metrics.serve.requests"},
		{"reserved adapter label", TaskMetrics{Serve: &ServeMetrics{Requests: map[string]uint64{OtherAdapters: 1}}}, "metrics.serve.requests"},
		{"unknown action", TaskMetrics{Serve: &ServeMetrics{RuleActions: map[string]uint64{"allow": 1}}}, `metrics.serve.ruleActions["allow"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Check()
			if tc.path == "" {
				if err != nil {
					t.Fatalf("valid figures refused: %v", err)
				}
				return
			}
			var fe spec.FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Path, tc.path) {
				t.Fatalf("got %v, want a field error at %s", err, tc.path)
			}
		})
	}
}
