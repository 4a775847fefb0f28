package driver

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/spec"
)

func TestBuiltinCommand(t *testing.T) {
	b := &spec.BuiltinTask{Model: "gpt-tiny", Data: "/d.txt", Steps: 200, Batch: 8, LR: 3e-3, Base: "file:///c/job"}
	cases := []struct {
		name string
		cfg  TaskConfig
		want []string
		err  string
	}{
		{"finetune", TaskConfig{Kind: spec.KindFinetune, CPUMilli: 2000, CheckpointEvery: 50, CheckpointKeep: 2, Task: spec.Task{Builtin: b}},
			[]string{"task", "train", "--model", "gpt-tiny", "--data", "/d.txt", "--threads", "2", "--steps", "200", "--batch", "8", "--lr", "0.003", "--base", "file:///c/job", "--every", "50", "--keep", "2"}, ""},
		{"finetune with defaults", TaskConfig{Kind: spec.KindFinetune, CPUMilli: 500, Task: spec.Task{Builtin: &spec.BuiltinTask{Model: "gpt-tiny", Data: "/d.txt"}}},
			[]string{"task", "train", "--model", "gpt-tiny", "--data", "/d.txt", "--threads", "1"}, ""},
		{"eval", TaskConfig{Kind: spec.KindEval, Task: spec.Task{Builtin: b}},
			[]string{"task", "eval", "--ckpt", "file:///c/job", "--data", "/d.txt", "--batch", "8"}, ""},
		{"inference", TaskConfig{Kind: spec.KindInference, CPUMilli: 1000, Task: spec.Task{Builtin: b}},
			[]string{"task", "serve", "--ckpt", "file:///c/job", "--threads", "1"}, ""},
		{"lora finetune", TaskConfig{Kind: spec.KindFinetune, CPUMilli: 1000, Task: spec.Task{Builtin: &spec.BuiltinTask{Model: "gpt-tiny", Data: "/d.txt", Base: "file:///c/b", LoRA: &spec.LoRA{Rank: 8, Alpha: 16, Targets: []string{"attn", "mlp"}}}}},
			[]string{"task", "train", "--model", "gpt-tiny", "--data", "/d.txt", "--threads", "1", "--base", "file:///c/b", "--lora-rank", "8", "--lora-alpha", "16", "--lora-targets", "attn,mlp"}, ""},
		{"inference with adapters", TaskConfig{Kind: spec.KindInference, CPUMilli: 1000, Task: spec.Task{Builtin: &spec.BuiltinTask{Model: "gpt-tiny", Base: "file:///c/b", Adapters: []spec.Adapter{{Name: "legal", URI: "file:///c/legal"}, {Name: "med", URI: "s3://b/med", Pinned: true}}}}},
			[]string{"task", "serve", "--ckpt", "file:///c/b", "--threads", "1", "--adapter", "legal=file:///c/legal", "--adapter", "med=s3://b/med", "--pin", "med"}, ""},
		{"inference with rules", TaskConfig{Kind: spec.KindInference, CPUMilli: 1000, Task: spec.Task{Builtin: &spec.BuiltinTask{Model: "gpt-tiny", Base: "file:///c/b", Rules: []spec.Rule{{ID: "r1", On: "output", Keywords: []string{"x"}, Action: "mask"}}}}},
			[]string{"task", "serve", "--ckpt", "file:///c/b", "--threads", "1", "--rules-json", `[{"id":"r1","stage":"output","keywords":["x"],"action":"mask"}]`}, ""},
		{"inference with a rate limit", TaskConfig{Kind: spec.KindInference, CPUMilli: 1000, Task: spec.Task{Builtin: &spec.BuiltinTask{Model: "gpt-tiny", Base: "file:///c/b", RateLimit: &spec.RateLimit{PerModel: 2.5, Burst: 5}}}},
			[]string{"task", "serve", "--ckpt", "file:///c/b", "--threads", "1", "--model-rate", "2.5", "--model-burst", "5"}, ""},
		{"inference with bf16 weights", TaskConfig{Kind: spec.KindInference, CPUMilli: 1000, Task: spec.Task{Builtin: &spec.BuiltinTask{Model: "gpt-tiny", Base: "file:///c/b", Weights: spec.WeightsBF16}}},
			[]string{"task", "serve", "--ckpt", "file:///c/b", "--threads", "1", "--weights", "bf16"}, ""},
		{"batch", TaskConfig{Kind: spec.KindBatch, Task: spec.Task{Builtin: b}}, nil, "not batch"},
		{"no settings", TaskConfig{Kind: spec.KindFinetune}, nil, "no task.builtin"},
	}
	for _, tc := range cases {
		got, err := BuiltinCommand(tc.cfg)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %q (%v)\nwant %q", tc.name, got, err, tc.want)
		}
	}
}
