package hfimport

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/ark-sched/ark/worker/train"
	"github.com/ark-sched/ark/worker/train/hfimport/hftest"
)

func small() hftest.Model {
	return hftest.Model{Layers: 2, Heads: 2, Width: 32, Context: 16, Vocab: 300, Seed: 7}
}

// TestImportRefuses: what Ark would not compute exactly is refused, the
// error naming the setting or tensor and the shapes.
func TestImportRefuses(t *testing.T) {
	edit := func(f func(map[string]hftest.Tensor, map[string]any)) hftest.Model {
		m := small()
		m.Edit = f
		return m
	}
	setCfg := func(k string, v any) hftest.Model {
		return edit(func(_ map[string]hftest.Tensor, c map[string]any) { c[k] = v })
	}
	tests := []struct {
		name  string
		m     hftest.Model
		after func(dir string) error // changes the files once written
		want  string
		is    error
	}{
		{"architecture", setCfg("model_type", "llama"), nil, `model_type is "llama", Ark runs "gpt2" only`, ErrUnsupported},
		{"activation", setCfg("activation_function", "relu"), nil, `activation_function is "relu"`, ErrUnsupported},
		{"epsilon", setCfg("layer_norm_epsilon", 1e-6), nil, "layer_norm_epsilon is 1e-06, Ark runs 1e-5", ErrUnsupported},
		{"inner width", setCfg("n_inner", 100), nil, "n_inner is 100, Ark runs 4 x n_embd = 128", ErrUnsupported},
		{"untied", setCfg("tie_word_embeddings", false), nil, "tie_word_embeddings is false", ErrUnsupported},
		{"layer scaling", setCfg("scale_attn_by_inverse_layer_idx", true), nil, "scale_attn_by_inverse_layer_idx is true", ErrUnsupported},
		{"heads", setCfg("n_head", 3), nil, "width 32 not divisible by heads 3", train.ErrConfig},
		{"missing tensor", edit(func(ts map[string]hftest.Tensor, _ map[string]any) { delete(ts, "h.1.mlp.c_fc.weight") }), nil,
			`model.safetensors has no tensor "h.1.mlp.c_fc.weight" (want shape [32 128])`, ErrUnsupported},
		{"shape", edit(func(ts map[string]hftest.Tensor, _ map[string]any) {
			w := ts["h.0.attn.c_attn.weight"]
			ts["h.0.attn.c_attn.weight"] = hftest.Tensor{Shape: []uint64{96, 32}, Data: w.Data}
		}), nil, `tensor "h.0.attn.c_attn.weight" has shape [96 32], want [32 96]`, ErrUnsupported},
		{"wpe shorter than context", setCfg("n_positions", 32), nil, `tensor "wpe.weight" has shape [16 32], want [32 32]`, ErrUnsupported},
		{"extra layer", edit(func(ts map[string]hftest.Tensor, _ map[string]any) {
			ts["h.2.ln_1.weight"] = ts["h.1.ln_1.weight"]
			ts["score.weight"] = ts["ln_f.bias"]
		}), nil, "tensors a GPT-2 of 2 layers does not: h.2.ln_1.weight, score.weight", ErrUnsupported},
		{"untied head", edit(func(ts map[string]hftest.Tensor, _ map[string]any) {
			w := ts["wte.weight"]
			head := append([]float32(nil), w.Data...)
			head[5]++
			ts["lm_head.weight"] = hftest.Tensor{Shape: w.Shape, Data: head}
		}), nil, "lm_head.weight differs from wte.weight", ErrUnsupported},
		{"vocab smaller than tokenizer", func() hftest.Model { m := small(); m.Vocab = 280; return m }(), nil,
			"tokenizer.json has 292 tokens, config.json vocab_size 280", ErrUnsupported},
		{"no tokenizer", small(), func(dir string) error { return os.Remove(filepath.Join(dir, "tokenizer.json")) },
			"has no tokenizer: want tokenizer.json, or vocab.json and merges.txt", ErrUnsupported},
		{"sharded", small(), func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte("{}"), 0o644)
		}, "sharded safetensors", ErrUnsupported},
		{"no weights", small(), func(dir string) error { return os.Remove(filepath.Join(dir, "model.safetensors")) },
			"convert pytorch_model.bin first", os.ErrNotExist},
		{"truncated weights", small(), func(dir string) error {
			p := filepath.Join(dir, "model.safetensors")
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, fi.Size()-4)
		}, "model.safetensors: metadata incomplete buffer", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := hftest.Write(dir, tt.m); err != nil {
				t.Fatal(err)
			}
			if tt.after != nil {
				if err := tt.after(dir); err != nil {
					t.Fatal(err)
				}
			}
			want := tt.want
			_, err := Import(context.Background(), dir, "file://"+t.TempDir()+"/m")
			if err == nil || !strings.Contains(err.Error(), want) || tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %q (%v)", err, want, tt.is)
			}
		})
	}
}

func TestImportIntoUsedLocation(t *testing.T) {
	dir, out := t.TempDir(), "file://"+t.TempDir()+"/gpt2"
	if err := hftest.Write(dir, small()); err != nil {
		t.Fatal(err)
	}
	res, err := Import(context.Background(), dir, out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(res.URI, "/gpt2/000000000000") || res.Tokens != 292 || res.Params != res.Config.NumParams() {
		t.Fatalf("result %+v", res)
	}
	if _, err := Import(context.Background(), dir, out); err == nil || !strings.Contains(err.Error(), "already holds 1 checkpoint(s)") {
		t.Fatalf("second import: err = %v", err)
	}
}

func TestToFloat32(t *testing.T) {
	half := []byte{0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x7c, 0x00, 0x80} // 1, -2, 65504, 2^-24, +inf, -0
	got, err := toFloat32(safetensors.F16, half)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, -2, 65504, float32(math.Ldexp(1, -24)), float32(math.Inf(1)), float32(math.Copysign(0, -1))}
	for i := range want {
		if got[i] != want[i] || math.Signbit(float64(got[i])) != math.Signbit(float64(want[i])) {
			t.Errorf("f16 %d: %v, want %v", i, got[i], want[i])
		}
	}
	if bf, _ := toFloat32(safetensors.BF16, []byte{0x80, 0x3f, 0x49, 0x40}); bf[0] != 1 || bf[1] != 3.140625 {
		t.Errorf("bf16: %v", bf)
	}
	if _, err := toFloat32(safetensors.I32, make([]byte, 4)); err == nil || !strings.Contains(err.Error(), "dtype I32: want F32, F16, BF16 or F64") {
		t.Errorf("i32: err = %v", err)
	}
}
