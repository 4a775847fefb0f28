package hfimport

import (
	"context"
	"strings"
	"testing"

	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/storage/filestore"
	"github.com/ark-sched/ark/worker/train"
	"github.com/ark-sched/ark/worker/train/hfimport/hftest"
)

// TestFineTuneImported: an imported model fine-tunes (full and LoRA) on
// text tokenized by its BPE, its held-out loss falls, and the fine-tuned
// checkpoint keeps the tokenizer.
func TestFineTuneImported(t *testing.T) {
	ctx := context.Background()
	dir, out := t.TempDir(), t.TempDir()
	if err := hftest.Write(dir, hftest.Model{Layers: 2, Heads: 2, Width: 32, Context: 16, Vocab: 300, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	res, err := Import(ctx, dir, "file://"+out+"/base")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := train.CheckpointConfig(ctx, res.URI, nil)
	if err != nil || cfg != res.Config {
		t.Fatalf("CheckpointConfig = %+v, %v; want %+v", cfg, err, res.Config)
	}
	text := []byte(strings.Repeat("Hello world and the king of the world is singing. ", 60))
	ds := train.NewDataset(text, 0.2)
	store, err := filestore.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		job  string
		lora *train.LoRAConfig
	}{{"full", nil}, {"lora", &train.LoRAConfig{Rank: 4}}} {
		t.Run(tt.job, func(t *testing.T) {
			d := cpu.New(1)
			defer d.Close()
			m, err := train.NewModel(d, cfg)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := train.New(ctx, m, nil, train.Options{
				ModelName: "imported", Data: ds, Steps: 30, Batch: 4, LR: 3e-3, Seed: 1,
				Store: store, Job: tt.job, Base: res.URI, LoRA: tt.lora,
			})
			if err != nil {
				t.Fatal(err)
			}
			before, err := m.Eval(ds, 4, 16)
			if err != nil {
				t.Fatal(err)
			}
			if m.Tokenizer().VocabSize() != 292 || before.Tokens >= len(ds.Val) {
				t.Fatalf("evaluated %d tokens of %d held-out bytes with a vocabulary of %d: not the imported BPE",
					before.Tokens, len(ds.Val), m.Tokenizer().VocabSize())
			}
			if _, err := tr.Run(ctx); err != nil {
				t.Fatal(err)
			}
			after, err := m.Eval(ds, 4, 16)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: held-out loss %.3f -> %.3f over %d BPE tokens", tt.job, before.Loss, after.Loss, after.Tokens)
			if !(after.Loss < before.Loss-0.5) {
				t.Fatalf("held-out loss %.3f -> %.3f: fine-tuning did not learn", before.Loss, after.Loss)
			}
			row, err := train.NewEvaluator(d, nil).Eval(ctx, "file://"+out+"/"+tt.job, ds, 4, 16)
			if err != nil {
				t.Fatal(err)
			}
			if row.Tokens != after.Tokens || row.Loss > after.Loss+1e-4 || row.Loss < after.Loss-1e-4 {
				t.Fatalf("the saved checkpoint evaluates to %+v, the trained model to %+v", row, after)
			}
			if tt.lora == nil {
				ft, _, err := train.LoadModel(ctx, d, "file://"+out+"/"+tt.job, nil)
				if err != nil {
					t.Fatal(err)
				}
				if ft.Tokenizer().VocabSize() != 292 {
					t.Fatalf("fine-tuned checkpoint lost the tokenizer: vocabulary %d", ft.Tokenizer().VocabSize())
				}
			}
		})
	}
}
