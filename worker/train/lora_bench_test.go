package train

import (
	"context"
	"testing"

	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/storage/filestore"
)

// BenchmarkFineTuneStep compares one training step of a full fine-tune
// with a LoRA fine-tune (rank 8, alpha 16, attn+mlp) of the same model and
// batch: go test ./worker/train -bench FineTuneStep -run '^$'. It reports
// the trainable parameters and tokens/s.
func BenchmarkFineTuneStep(b *testing.B) {
	for _, model := range []string{"gpt-tiny", "gpt-small"} {
		cfg, err := Preset(model)
		if err != nil {
			b.Fatal(err)
		}
		for _, mode := range []string{"full", "lora"} {
			b.Run(model+"/"+mode, func(b *testing.B) {
				d := cpu.New(1)
				defer d.Close()
				m, err := NewModel(d, cfg)
				if err != nil {
					b.Fatal(err)
				}
				o := Options{Data: NewDataset(testText, 0.1), Steps: 1 << 30, Batch: 8, LR: 1e-3, Seed: 1}
				if mode == "lora" {
					// The base: one step of training (the step's cost does
					// not depend on the base's values).
					dir := b.TempDir()
					store, err := filestore.Open(dir)
					if err != nil {
						b.Fatal(err)
					}
					bm, err := NewModel(d, cfg)
					if err != nil {
						b.Fatal(err)
					}
					btr, err := New(context.Background(), bm, nil, Options{ModelName: model, Data: o.Data, Steps: 1, Batch: 1, LR: 1e-3, Store: store, Job: "base"})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := btr.Run(context.Background()); err != nil {
						b.Fatal(err)
					}
					o.Base = "file://" + dir + "/base"
					a, err := NewAdapter(d, cfg, LoRAConfig{Rank: 8, Alpha: 16})
					if err != nil {
						b.Fatal(err)
					}
					defer a.Free()
					if err := m.SetAdapter(a); err != nil {
						b.Fatal(err)
					}
				}
				tr, err := New(context.Background(), m, nil, o)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				if _, _, err := tr.Step(ctx, 1); err != nil { // warm: activations allocated
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := range b.N {
					if _, _, err := tr.Step(ctx, 2+i); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*o.Batch*cfg.Context)/b.Elapsed().Seconds(), "tok/s")
				b.ReportMetric(float64(m.trainable().n), "trainable")
			})
		}
	}
}
