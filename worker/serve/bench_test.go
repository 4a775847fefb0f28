package serve

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/worker/train"
)

// TestMeasureBatching is a measurement, not a check: the engine in
// process on gpt-tiny (one CPU thread), closed-loop clients at concurrency
// 1 and 32, each request a 16-byte prompt and 64 output tokens; it logs
// output tokens/s for both and the ratio (issue 12's target: >= 6x).
//
//	ARK_SERVE_BENCH=1 go test -run TestMeasureBatching -v ./worker/serve
func TestMeasureBatching(t *testing.T) {
	if os.Getenv("ARK_SERVE_BENCH") == "" {
		t.Skip("set ARK_SERVE_BENCH=1 to measure")
	}
	cfg, err := train.Preset("gpt-tiny")
	if err != nil {
		t.Fatal(err)
	}
	d := cpu.New(1)
	defer d.Close()
	m, err := train.NewModel(d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(1); err != nil {
		t.Fatal(err)
	}
	eng := NewEngine(m.NewDecoder(), EngineConfig{MaxBatch: 32, MaxQueue: 256})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() { cancel(); <-done }()
	const outTokens, perClient = 64, 4
	run := func(clients int) float64 {
		start := time.Now()
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for r := range perClient {
					events, err := eng.Submit(ctx, Request{Prompt: train.Encode([]byte("ROMEO: my lord, ")), MaxTokens: outTokens, Temperature: 0.8, Seed: uint64(c*perClient + r + 1)})
					if err != nil {
						t.Error(err)
						return
					}
					for ev := range events {
						if ev.Done {
							if ev.Err != nil || ev.Tokens != outTokens {
								t.Errorf("request ended %+v", ev)
							}
							break
						}
					}
				}
			})
		}
		wg.Wait()
		return float64(clients*perClient*outTokens) / time.Since(start).Seconds()
	}
	run(4) // warm the buffers
	one := run(1)
	many := run(32)
	t.Logf("gpt-tiny, 1 CPU thread, %d output tokens per request: concurrency 1: %.0f tok/s; concurrency 32: %.0f tok/s; ratio %.1fx (max batch %d)",
		outTokens, one, many, many/one, eng.Stats().MaxBatchSeen)
}
