package serve

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/worker/train"
)

// BenchmarkBatching measures what continuous batching buys: the engine in
// process on gpt-tiny (one CPU thread), closed-loop clients at concurrency
// 1 and 32, each request a 16-byte prompt and 64 output tokens. It reports
// output tokens/s per concurrency (issue 12's target: 32 >= 6x 1); compare
// the two sub-benchmarks of one run. It reports the mean batch and the
// step-time batch too: in process, with no HTTP and no client between a
// request's end and the next, what the engine's own scheduling batches.
//
//	go test -run '^$' -bench Batching -benchtime 4x ./worker/serve
func BenchmarkBatching(b *testing.B) {
	cfg, err := train.Preset("gpt-tiny")
	if err != nil {
		b.Fatal(err)
	}
	d := cpu.New(1)
	defer d.Close()
	m, err := train.NewModel(d, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Init(1); err != nil {
		b.Fatal(err)
	}
	eng := NewEngine(m.NewDecoder(), EngineConfig{MaxBatch: 32, MaxQueue: 256})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() { cancel(); <-done }()
	const outTokens = 64
	// round runs one request per client, all at once, and waits for all.
	round := func(b *testing.B, clients, seed int) {
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				events, err := eng.Submit(ctx, Request{Prompt: train.Encode([]byte("ROMEO: my lord, ")), MaxTokens: outTokens, Temperature: 0.8, Seed: uint64(seed*clients + c + 1)})
				if err != nil {
					b.Error(err)
					return
				}
				for ev := range events {
					if ev.Done {
						if ev.Err != nil || ev.Tokens != outTokens {
							b.Errorf("request ended %+v", ev)
						}
						break
					}
				}
			})
		}
		wg.Wait()
	}
	round(b, 4, 0) // warm the buffers
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("concurrency=%d", clients), func(b *testing.B) {
			st0, ph0 := eng.Stats(), eng.phases.snapshot()
			start := time.Now()
			for i := range b.N {
				round(b, clients, i)
			}
			b.ReportMetric(float64(b.N*clients*outTokens)/time.Since(start).Seconds(), "out-tok/s")
			// The mean batch weights every step alike; the step-time
			// batch weights each by its duration (engine_phases.go).
			st1, ph1 := eng.Stats(), eng.phases.snapshot()
			if st1.Steps > st0.Steps && ph1.StepMs > ph0.StepMs {
				b.ReportMetric(float64(st1.StepTokens-st0.StepTokens)/float64(st1.Steps-st0.Steps), "mean-batch")
				b.ReportMetric((ph1.BatchRowMs-ph0.BatchRowMs)/(ph1.StepMs-ph0.StepMs), "step-time-batch")
			}
		})
	}
}
