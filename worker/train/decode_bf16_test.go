package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ark-sched/ark/kernels/cpu"
)

// TestDecodeBF16Weights: a decoder whose weights are packed in bfloat16
// gives logits within bfloat16's rounding of the float32 decoder's (8 bits
// of mantissa a weight: a relative error of a few parts in a thousand),
// and it must be chosen before the weights are packed.
func TestDecodeBF16Weights(t *testing.T) {
	m := perturbedModel(t)
	T := m.Cfg.Context
	toks := Encode(testText[3 : 3+T])
	run := func(half bool) [][]float32 {
		dec := m.NewDecoder()
		if half {
			if err := dec.SetWeightsBF16(); err != nil {
				t.Fatal(err)
			}
		}
		s, err := dec.NewSeq()
		if err != nil {
			t.Fatal(err)
		}
		first, err := dec.Prefill(s, toks[:4])
		if err != nil {
			t.Fatal(err)
		}
		out := [][]float32{append([]float32(nil), first...)}
		for pos := 4; pos < T; pos++ {
			got, err := dec.Step([]*Seq{s}, toks[pos:pos+1])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, append([]float32(nil), got...))
		}
		if half {
			if err := dec.SetWeightsBF16(); err == nil || !strings.Contains(err.Error(), "already packed") {
				t.Errorf("SetWeightsBF16 after a step: %v, want an error", err)
			}
		}
		return out
	}
	full, half := run(false), run(true)
	differ, worst := false, 0.0
	for pos := range full {
		var num, den float64
		for v := range full[pos] {
			d := float64(half[pos][v] - full[pos][v])
			num += d * d
			den += float64(full[pos][v]) * float64(full[pos][v])
			differ = differ || d != 0
		}
		rel := math.Sqrt(num / den)
		worst = max(worst, rel)
		if rel > 2e-2 {
			t.Errorf("position %d: bf16 logits off the float32 ones by %.2g (relative), want under 2e-2", pos, rel)
		}
	}
	t.Logf("largest relative error of a position's logits: %.2g", worst)
	if !differ {
		t.Error("bf16 and float32 weights gave the same logits to the bit: the bf16 packing was not used")
	}
}

// TestDecodeBF16WeightsHeldOut: on the shipped base (gpt-tiny, trained),
// the loss of teacher-forced decoding over held-out text (the first 2,048
// bytes of the fine-tuning corpus, which the base never saw) moves by
// under 0.01 nats a token with the weights in bfloat16.
func TestDecodeBF16WeightsHeldOut(t *testing.T) {
	base, err := filepath.Abs("../../examples/base/gpt-tiny")
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile("../../examples/data/shakespeare.txt")
	if err != nil {
		t.Skipf("no fine-tuning corpus: %v", err)
	}
	d := cpu.New(1)
	defer d.Close()
	m, _, err := LoadModel(context.Background(), d, "file://"+base, nil)
	if err != nil {
		t.Skipf("no shipped base: %v", err)
	}
	toks := Encode(text[:2048])
	loss := func(half bool) float64 {
		dec := m.NewDecoder()
		if half {
			if err := dec.SetWeightsBF16(); err != nil {
				t.Fatal(err)
			}
		}
		T := m.Cfg.Context
		var nll float64
		n := 0
		for w := 0; w+T <= len(toks); w += T { // windows of the context, each from its start
			s, err := dec.NewSeq()
			if err != nil {
				t.Fatal(err)
			}
			logits, err := dec.Prefill(s, toks[w:w+1])
			for pos := w + 1; pos < w+T && err == nil; pos++ {
				nll += crossEntropy(logits, toks[pos])
				n++
				logits, err = dec.Step([]*Seq{s}, toks[pos:pos+1])
			}
			if err != nil {
				t.Fatal(err)
			}
			dec.Release(s)
		}
		return nll / float64(n)
	}
	full, half := loss(false), loss(true)
	t.Logf("held-out loss: float32 weights %.4f, bf16 %.4f nats a token", full, half)
	if math.Abs(half-full) > 0.01 {
		t.Errorf("held-out loss %.4f with bf16 weights, %.4f with float32: want within 0.01", half, full)
	}
}

// crossEntropy is -log softmax(logits)[target].
func crossEntropy(logits []float32, target int32) float64 {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = max(mx, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - mx)
	}
	return mx + math.Log(sum) - float64(logits[target])
}
