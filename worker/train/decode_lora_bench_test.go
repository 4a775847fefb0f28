package train

import (
	"fmt"
	"testing"

	"github.com/ark-sched/ark/kernels/cpu"
)

// BenchmarkDecodeStepAdapters is one decode step of 32 rows of gpt-tiny
// (one thread) with no adapter, every row on one adapter, and every row on
// its own (32 of rank 8): the cost of serving 1+N in one batch; and a step
// of one row, the base alone (what continuous batching is measured
// against: batch=1's tok/s against adapters=0's).
//
//	go test ./worker/train -run '^$' -bench DecodeStepAdapters
func BenchmarkDecodeStepAdapters(b *testing.B) {
	for _, model := range []string{"gpt-tiny", "gpt-small"} {
		b.Run(model, func(b *testing.B) { benchDecodeStep(b, model) })
	}
}

func benchDecodeStep(b *testing.B, model string) {
	cfg, err := Preset(model)
	if err != nil {
		b.Fatal(err)
	}
	d := cpu.New(1)
	defer d.Close()
	m, err := NewModel(d, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Init(1); err != nil {
		b.Fatal(err)
	}
	lc := LoRAConfig{Rank: 8}.WithDefaults()
	// slotRank 16 is ark task serve's default --max-lora-rank holding
	// these rank-8 adapters.
	for _, run := range []struct{ B, distinct, slotRank int }{{1, 0, 8}, {32, 0, 8}, {32, 1, 8}, {32, 32, 8}, {32, 32, 16}} {
		B, distinct := run.B, run.distinct
		b.Run(fmt.Sprintf("batch=%d/adapters=%d/slot-rank=%d", B, distinct, run.slotRank), func(b *testing.B) {
			dec := m.NewDecoder()
			if err := dec.SetAdapterSlots(B, run.slotRank); err != nil {
				b.Fatal(err)
			}
			for s := range B {
				w := &AdapterWeights{Cfg: lc, Model: cfg, Params: make([]float32, lc.NumParams(cfg))}
				for i := range w.Params {
					w.Params[i] = 0.01 * float32(i%7-3)
				}
				if err := dec.LoadSlot(s, w); err != nil {
					b.Fatal(err)
				}
			}
			rows, toks := make([]*Seq, B), make([]int32, B)
			for i := range rows {
				s, err := dec.NewSeq()
				if err != nil {
					b.Fatal(err)
				}
				s.Slot = -1
				if distinct > 0 {
					s.Slot = i % distinct
				}
				if _, err := dec.Prefill(s, Encode([]byte("ROMEO: "))); err != nil {
					b.Fatal(err)
				}
				rows[i], toks[i] = s, 'a'
			}
			b.ResetTimer()
			for range b.N {
				if rows[0].Len() >= cfg.Context-1 { // stay clear of the window slide
					b.StopTimer()
					for _, s := range rows {
						if _, err := dec.Prefill(s, Encode([]byte("ROMEO: "))); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
				if _, err := dec.Step(rows, toks); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*B)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkPrefillAdapters is a PrefillBatch of 32 prompts of 32 tokens
// with no adapter and with each prompt on its own adapter.
func BenchmarkPrefillAdapters(b *testing.B) {
	cfg, err := Preset("gpt-tiny")
	if err != nil {
		b.Fatal(err)
	}
	d := cpu.New(1)
	defer d.Close()
	m, err := NewModel(d, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Init(1); err != nil {
		b.Fatal(err)
	}
	const B = 32
	lc := LoRAConfig{Rank: 8}.WithDefaults()
	for _, distinct := range []int{0, B} {
		b.Run(fmt.Sprintf("adapters=%d", distinct), func(b *testing.B) {
			dec := m.NewDecoder()
			if err := dec.SetAdapterSlots(B, 8); err != nil {
				b.Fatal(err)
			}
			for s := range B {
				w := &AdapterWeights{Cfg: lc, Model: cfg, Params: make([]float32, lc.NumParams(cfg))}
				for i := range w.Params {
					w.Params[i] = 0.01 * float32(i%7-3)
				}
				if err := dec.LoadSlot(s, w); err != nil {
					b.Fatal(err)
				}
			}
			seqs, prompts := make([]*Seq, B), make([][]int32, B)
			for i := range seqs {
				s, err := dec.NewSeq()
				if err != nil {
					b.Fatal(err)
				}
				s.Slot = -1
				if distinct > 0 {
					s.Slot = i % distinct
				}
				seqs[i], prompts[i] = s, Encode([]byte("the king my lord of a sweet love"))
			}
			b.ResetTimer()
			for range b.N {
				if _, err := dec.PrefillBatch(seqs, prompts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*B*32)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
