package kernelstest

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ark-sched/ark/kernels"
)

// gradCheck compares analytic with central differences of loss at x.
func gradCheck(t *testing.T, name string, x []float64, loss func() float64, analytic []float64) {
	t.Helper()
	const h = 1e-5
	for i := range x {
		old := x[i]
		x[i] = old + h
		lp := loss()
		x[i] = old - h
		lm := loss()
		x[i] = old
		num := (lp - lm) / (2 * h)
		if d := math.Abs(num - analytic[i]); d > 1e-6*(1+math.Abs(num)) {
			t.Fatalf("%s: d/dx[%d]: analytic %.9g, numeric %.9g", name, i, analytic[i], num)
		}
	}
}

func randn64(r *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	return x
}

func dotf(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func TestReferenceGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))

	t.Run("matmul", func(t *testing.T) {
		p := kernels.MatMulArgs{M: 3, N: 4, K: 5, TransB: true, Alpha: 1}
		a, b, bias := randn64(r, 15), randn64(r, 20), randn64(r, 4)
		g := randn64(r, 12)
		loss := func() float64 { return dotf(g, refMatMul(a, b, bias, nil, p)) }
		// dA = g * B (B is N x K here), dB = g^T * A, dbias = colsum(g).
		da := refMatMul(g, b, nil, nil, kernels.MatMulArgs{M: 3, N: 5, K: 4, Alpha: 1})
		db := refMatMul(g, a, nil, nil, kernels.MatMulArgs{M: 4, N: 5, K: 3, TransA: true, Alpha: 1})
		dbias := make([]float64, 4)
		for i := range g {
			dbias[i%4] += g[i]
		}
		gradCheck(t, "a", a, loss, da)
		gradCheck(t, "b", b, loss, db)
		gradCheck(t, "bias", bias, loss, dbias)
	})

	t.Run("layernorm", func(t *testing.T) {
		rows, cols := 3, 7
		in, w, b := randn64(r, rows*cols), randn64(r, cols), randn64(r, cols)
		g := randn64(r, rows*cols)
		loss := func() float64 {
			out, _, _ := refLayerNorm(in, w, b, rows, cols, 1e-5)
			return dotf(g, out)
		}
		din, dw, db := refLayerNormBackward(g, in, w, rows, cols, 1e-5)
		gradCheck(t, "in", in, loss, din)
		gradCheck(t, "weight", w, loss, dw)
		gradCheck(t, "bias", b, loss, db)
	})

	t.Run("gelu", func(t *testing.T) {
		x := randn64(r, 9)
		x = append(x, 3, -3, 0.1)
		g := randn64(r, len(x))
		loss := func() float64 {
			var s float64
			for i, v := range x {
				s += g[i] * refGELU(v)
			}
			return s
		}
		dx := make([]float64, len(x))
		for i, v := range x {
			dx[i] = g[i] * refGELUGrad(v)
		}
		gradCheck(t, "x", x, loss, dx)
	})

	t.Run("attention", func(t *testing.T) {
		s := kernels.AttnShape{B: 2, T: 4, C: 6, Heads: 2}
		qkv := randn64(r, s.B*s.T*3*s.C)
		g := randn64(r, s.B*s.T*s.C)
		loss := func() float64 {
			out, _ := refAttention(qkv, s)
			return dotf(g, out)
		}
		gradCheck(t, "qkv", qkv, loss, refAttentionBackward(g, qkv, s))
	})

	t.Run("embedding", func(t *testing.T) {
		ids := []int32{2, 0, 2, 1, 4, 2}
		wte, wpe := randn64(r, 5*3), randn64(r, 3*3)
		g := randn64(r, 6*3)
		loss := func() float64 { return dotf(g, refEmbedding(ids, wte, wpe, 2, 3, 3)) }
		dwte, dwpe := refEmbeddingBackward(g, ids, 5, 3, 3)
		gradCheck(t, "wte", wte, loss, dwte)
		gradCheck(t, "wpe", wpe, loss, dwpe)
	})

	t.Run("cross-entropy", func(t *testing.T) {
		targets := []int32{3, 0, -1, 6}
		logits := randn64(r, 4*7)
		loss := func() float64 {
			l, _ := refCrossEntropy(logits, targets, 7, 1)
			return l[0] + l[1] + l[2] + l[3]
		}
		_, d := refCrossEntropy(logits, targets, 7, 1)
		gradCheck(t, "logits", logits, loss, d)
	})
}
