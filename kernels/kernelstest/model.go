package kernelstest

import (
	"math"

	"github.com/ark-sched/ark/kernels"
)

// testTinyModel builds a one-block decoder (embedding, layernorm,
// attention, projection with a residual, GELU, tied output embedding,
// cross-entropy), checks its whole gradient along a random direction
// against a central difference, then trains it on one fixed batch with
// AdamW and gradient clipping and requires the loss to fall. It checks that the ops compose — every backward accumulates where
// the next expects it — and is the smallest picture of how a trainer drives
// a Device: parameters and gradients each in one buffer sliced per tensor
// (one AdamW call, one contiguous range to all-reduce), gradients zeroed
// with Fill, backward ops adding into them.
func testTinyModel(e *env) {
	const (
		B, T, C, H, V = 2, 6, 8, 2, 11
		N             = B * T
	)
	d := e.d
	sizes := []int{V * C, T * C, C, C, 3 * C * C, 3 * C, C * C, C} // wte wpe lnw lnb wqkv bqkv wproj bproj
	total := 0
	for _, s := range sizes {
		total += s
	}
	params, grads := e.alloc(total), e.alloc(total)
	m, v := e.alloc(total), e.alloc(total)
	slices := func(b kernels.Buffer) []kernels.Buffer {
		out, off := make([]kernels.Buffer, len(sizes)), 0
		for i, s := range sizes {
			var err error
			out[i], err = d.Slice(b, off, s)
			e.must(err)
			off += s
		}
		return out
	}
	p, g := slices(params), slices(grads)
	wte, wpe, lnw, lnb, wqkv, bqkv, wproj, bproj := p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]
	dwte, dwpe, dlnw, dlnb, dwqkv, dbqkv, dwproj, dbproj := g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]

	init := e.randn(total)
	for i := range init {
		init[i] *= 0.3
	}
	e.must(kernels.WriteFloat32(d, params, init))
	e.must(d.Fill(lnw, 1))
	e.must(d.Fill(lnb, 0))

	ids, targets := make([]int32, N), make([]int32, N)
	for i := range ids {
		ids[i] = int32(e.rng.IntN(V))
		targets[i] = int32((int(ids[i])*3 + i%T) % V) // learnable from token and position
	}
	idb, tgb := e.upInt(ids), e.upInt(targets)
	shape := kernels.AttnShape{B: B, T: T, C: C, Heads: H}

	x, h, mean, rstd := e.alloc(N*C), e.alloc(N*C), e.alloc(N), e.alloc(N)
	qkv, att, probs := e.alloc(N*3*C), e.alloc(N*C), e.alloc(B*H*T*T)
	proj, y, gl, logits, losses := e.alloc(N*C), e.alloc(N*C), e.alloc(N*C), e.alloc(N*V), e.alloc(N)
	dx, dh, dqkv, datt := e.alloc(N*C), e.alloc(N*C), e.alloc(N*3*C), e.alloc(N*C)
	dy, dg, dlogits := e.alloc(N*C), e.alloc(N*C), e.alloc(N*V)
	acc := e.alloc(1)
	acts := []kernels.Buffer{dx, dh, dqkv, datt, dy, dg, dlogits}

	mm := func(c, a, b, bias kernels.Buffer, m, n, k int, ta, tb bool, beta float32) {
		e.Helper()
		e.must(d.MatMul(c, a, b, bias, kernels.MatMulArgs{M: m, N: n, K: k, TransA: ta, TransB: tb, Alpha: 1, Beta: beta}))
	}
	// forward returns the mean loss; with grads it also seeds dlogits.
	forward := func(withGrad bool) float64 {
		e.Helper()
		e.must(d.Embedding(x, idb, wte, wpe, B, T, C))
		e.must(d.LayerNorm(h, mean, rstd, x, lnw, lnb, N, C, 1e-5))
		mm(qkv, h, wqkv, bqkv, N, 3*C, C, false, true, 0)
		e.must(d.Attention(att, probs, qkv, shape))
		mm(proj, att, wproj, bproj, N, C, C, false, true, 0)
		e.must(d.Add(y, x, proj))
		e.must(d.GELU(gl, y))
		mm(logits, gl, wte, nil, N, V, C, false, true, 0) // tied output embedding
		var dl kernels.Buffer
		if withGrad {
			for _, b := range append(acts, grads) {
				e.must(d.Fill(b, 0))
			}
			dl = dlogits
		}
		e.must(d.CrossEntropy(losses, dl, logits, tgb, N, V, 1.0/N))
		var loss float64
		for _, v := range e.down(losses) {
			loss += float64(v) / N
		}
		return loss
	}
	// backward: each op adds into the gradients of its inputs.
	backward := func() {
		e.Helper()
		mm(dg, dlogits, wte, nil, N, C, V, false, false, 1)
		mm(dwte, dlogits, gl, nil, V, C, N, true, false, 1)
		e.must(d.GELUBackward(dy, y, dg))
		e.must(d.Add(dx, dx, dy)) // residual: y = x + proj
		mm(datt, dy, wproj, nil, N, C, C, false, false, 1)
		mm(dwproj, dy, att, nil, C, C, N, true, false, 1)
		e.must(d.ColSum(dbproj, dy, N, C))
		e.must(d.AttentionBackward(dqkv, datt, qkv, probs, shape))
		mm(dh, dqkv, wqkv, nil, N, C, 3*C, false, false, 1)
		mm(dwqkv, dqkv, h, nil, 3*C, C, N, true, false, 1)
		e.must(d.ColSum(dbqkv, dqkv, N, 3*C))
		e.must(d.LayerNormBackward(dx, dlnw, dlnb, dh, x, lnw, mean, rstd, N, C))
		e.must(d.EmbeddingBackward(dwte, dwpe, dx, idb, B, T, C))
	}

	// The whole backward against a central difference of the whole forward
	// along a random direction u: (L(p+eps*u) - L(p-eps*u)) / 2eps = grad.u.
	forward(true)
	backward()
	gvec, pvec, u := e.down(grads), e.down(params), e.randn(total)
	var analytic float64
	for i := range u {
		analytic += float64(gvec[i]) * float64(u[i])
	}
	const eps = 1e-3
	var lp [2]float64
	for k, sign := range []float32{1, -1} {
		shifted := make([]float32, total)
		for i := range shifted {
			shifted[i] = pvec[i] + sign*eps*u[i]
		}
		e.must(kernels.WriteFloat32(d, params, shifted))
		lp[k] = forward(false)
	}
	e.must(kernels.WriteFloat32(d, params, pvec))
	if numeric := (lp[0] - lp[1]) / (2 * eps); math.Abs(numeric-analytic) > 0.02*math.Abs(analytic)+5e-3 {
		e.Fatalf("model gradient along a random direction: analytic %.5g, numeric %.5g", analytic, numeric)
	}

	var first, last float64
	for step := 1; step <= 40; step++ {
		loss := forward(true)
		if step == 1 {
			first = loss
		}
		last = loss
		backward()
		norm, err := kernels.ClipGradNorm(d, acc, []kernels.Buffer{grads}, 1)
		e.must(err)
		if math.IsNaN(float64(norm)) || norm == 0 {
			e.Fatalf("step %d: gradient norm %v", step, norm)
		}
		e.must(d.AdamW(params, grads, m, v, kernels.AdamWArgs{LR: 3e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.01, Step: step}))
	}
	if !(last < 0.5*first) {
		e.Fatalf("loss %.4f after 40 steps, from %.4f: want less than half", last, first)
	}
	e.Logf("tiny model: loss %.4f -> %.4f in 40 steps", first, last)
}
