package cpu

import (
	"testing"

	"github.com/ark-sched/ark/kernels"
)

// TestSteadyStateAllocs: after a warm-up call, ops allocate nothing.
func TestSteadyStateAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	d := New(2)
	defer d.Close()
	const n, rows, cols = 70, 10, 33
	a, b, c, bias := mustAlloc(t, d, n*n), mustAlloc(t, d, n*n), mustAlloc(t, d, n*n), mustAlloc(t, d, n)
	x, y, m, r := mustAlloc(t, d, rows*cols), mustAlloc(t, d, rows*cols), mustAlloc(t, d, rows), mustAlloc(t, d, rows)
	w, wb := mustAlloc(t, d, cols), mustAlloc(t, d, cols)
	s := kernels.AttnShape{B: 2, T: 5, C: 6, Heads: 2}
	qkv, out, probs := mustAlloc(t, d, 2*5*18), mustAlloc(t, d, 2*5*6), mustAlloc(t, d, 2*2*25)
	acc := mustAlloc(t, d, 1)
	ids, _ := d.Alloc(kernels.Int32, rows)
	big, big2 := mustAlloc(t, d, 1<<16), mustAlloc(t, d, 1<<16)
	for name, op := range map[string]func() error{
		"matmul": func() error {
			return d.MatMul(c, a, b, bias, kernels.MatMulArgs{M: n, N: n, K: n, TransB: true, Alpha: 1})
		},
		"layernorm": func() error { return d.LayerNorm(y, m, r, x, w, wb, rows, cols, 1e-5) },
		"layernorm backward": func() error {
			return d.LayerNormBackward(y, w, wb, x, x, w, m, r, rows, cols)
		},
		"attention":          func() error { return d.Attention(out, probs, qkv, s) },
		"attention backward": func() error { return d.AttentionBackward(qkv, out, qkv, probs, s) },
		"add":                func() error { return d.Add(big, big, big2) },
		"sumsquares":         func() error { return d.SumSquares(acc, big) },
		"gelu":               func() error { return d.GELU(big2, big) },
		"cross-entropy":      func() error { return d.CrossEntropy(m, x, x, ids, rows, cols, 1) },
		"embedding":          func() error { return d.Embedding(x, ids, y, nil, 2, 5, cols) },
		"adamw": func() error {
			return d.AdamW(x, y, x, y, kernels.AdamWArgs{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, Step: 1})
		},
	} {
		if err := op(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := testing.AllocsPerRun(20, func() { _ = op() }); got != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, got)
		}
	}
}
