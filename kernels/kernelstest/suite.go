package kernelstest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ark-sched/ark/kernels"
)

// Run checks the Device that newDevice returns (one per subtest; Run closes
// it) against the float64 reference.
func Run(t *testing.T, newDevice func(t *testing.T) kernels.Device) {
	for _, c := range []struct {
		name string
		fn   func(*env)
	}{
		{"Memory", testMemory},
		{"MatMul", testMatMul},
		{"ColSum", testColSum},
		{"LayerNorm", testLayerNorm},
		{"GELU", testGELU},
		{"Attention", testAttention},
		{"Embedding", testEmbedding},
		{"CrossEntropy", testCrossEntropy},
		{"AdamW", testAdamW},
		{"Elementwise", testElementwise},
		{"ClipGradNorm", testClipGradNorm},
		{"Errors", testErrors},
		{"BF16", testBF16},
		{"TinyModel", testTinyModel},
		{"GatherLoRA", testGatherLoRA},
		{"CachedAttention", testCachedAttention},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newDevice(t)
			defer func() {
				if err := d.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			}()
			c.fn(&env{T: t, d: d, rng: rand.New(rand.NewPCG(7, uint64(len(c.name))))})
		})
	}
}

// env is one subtest's device and random source with helpers that fail the
// test on error.
type env struct {
	*testing.T
	d   kernels.Device
	rng *rand.Rand
}

func (e *env) must(err error) {
	e.Helper()
	if err != nil {
		e.Fatal(err)
	}
}

// randn returns n standard normal floats, never exactly zero.
func (e *env) randn(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		for x[i] == 0 {
			x[i] = float32(e.rng.NormFloat64())
		}
	}
	return x
}

func (e *env) up(x []float32) kernels.Buffer {
	e.Helper()
	b, err := kernels.Upload(e.d, x)
	e.must(err)
	return b
}

func (e *env) upInt(x []int32) kernels.Buffer {
	e.Helper()
	b, err := e.d.Alloc(kernels.Int32, len(x))
	e.must(err)
	e.must(kernels.WriteInt32(e.d, b, x))
	return b
}

func (e *env) alloc(n int) kernels.Buffer {
	e.Helper()
	b, err := e.d.Alloc(kernels.Float32, n)
	e.must(err)
	return b
}

func (e *env) down(b kernels.Buffer) []float32 {
	e.Helper()
	x, err := kernels.Download(e.d, b)
	e.must(err)
	return x
}

// close fails unless |got-want| <= tol*(1+|want|) everywhere.
func (e *env) close(what string, got []float32, want []float64, tol float64) {
	e.Helper()
	if len(got) != len(want) {
		e.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		g := float64(got[i])
		if d := math.Abs(g - want[i]); !(d <= tol*(1+math.Abs(want[i]))) {
			e.Fatalf("%s: [%d] = %.7g, want %.7g (tolerance %g)", what, i, g, want[i], tol)
		}
	}
}

func add64(a []float32, b []float64) []float64 {
	out := make([]float64, len(b))
	for i := range b {
		out[i] = float64(a[i]) + b[i]
	}
	return out
}

func testMemory(e *env) {
	x := e.randn(37)
	b := e.up(x)
	e.close("roundtrip", e.down(b), f64(x), 0)
	s, err := e.d.Slice(b, 5, 11)
	e.must(err)
	if s.Len() != 11 || s.DType() != kernels.Float32 {
		e.Fatalf("slice: %d x %v", s.Len(), s.DType())
	}
	e.close("slice", e.down(s), f64(x[5:16]), 0)
	y := e.randn(11)
	e.must(kernels.WriteFloat32(e.d, s, y))
	want := append(append(append([]float32{}, x[:5]...), y...), x[16:]...)
	e.close("write through slice", e.down(b), f64(want), 0)
	z, err := e.d.Alloc(kernels.Float32, 9)
	e.must(err)
	e.close("alloc is zeroed", e.down(z), make([]float64, 9), 0)
	ids := []int32{3, -1, 1 << 30}
	ib := e.upInt(ids)
	got := make([]int32, 3)
	e.must(kernels.ReadInt32(e.d, got, ib))
	if got[0] != 3 || got[1] != -1 || got[2] != 1<<30 {
		e.Fatalf("int32 roundtrip: %v", got)
	}
	if _, err := e.d.Slice(b, 30, 8); !errors.Is(err, kernels.ErrArgument) {
		e.Fatalf("slice past the end: %v, want ErrArgument", err)
	}
	e.must(e.d.Sync())
	e.must(e.d.Free(z))
}

func testMatMul(e *env) {
	for _, c := range []struct {
		m, n, k        int
		ta, tb         bool
		alpha, beta    float32
		bias, nonzeroC bool
	}{
		{1, 1, 1, false, false, 1, 0, false, false},
		{7, 13, 5, false, false, 1, 0, true, false},
		{33, 17, 65, false, true, 1, 0, true, false},
		{17, 33, 19, true, false, 1, 1, false, true},
		{29, 31, 37, true, true, 0.5, 0.25, true, true},
		{101, 70, 300, false, true, 1, 1, true, true}, // several kc blocks, edge tiles
		{200, 197, 3, false, false, -1, 0, false, true},
		{6, 16, 8, false, false, 1, 0, false, false},   // exactly one 6x16 micro-tile
		{24, 64, 300, false, true, 1, 0, false, false}, // whole 12x32 micro-tiles, two k blocks
		{5, 3, 129, true, true, 1, 0, false, false},
		{97, 200, 64, false, false, 1, 0, false, false}, // crosses mc and nc tiles
		{32, 48, 300, false, true, 1, 0, true, false},   // a decode step's rows: 4 panels of 6, 2 of 4 (AVX2)
		{8, 40, 20, true, false, 1, 1, false, true},     // edge panels only
		{10, 33, 17, false, true, 1, 0, false, false},   // 6 + 4, the last columns padded
		{1, 40, 300, false, true, 0.5, 1, true, true},   // one row (a decode step alone): two k blocks, the last columns padded
		{1, 48, 20, true, false, 1, 0, false, false},    // one row of a transposed A
	} {
		matMulCase(e, c.m, c.n, c.k, c.ta, c.tb, c.alpha, c.beta, c.bias, c.nonzeroC)
	}
	// And random shapes and flags, property-style.
	for i := 0; i < 8; i++ {
		r := e.rng
		matMulCase(e, 1+r.IntN(120), 1+r.IntN(120), 1+r.IntN(280), r.IntN(2) == 1, r.IntN(2) == 1,
			float32(r.NormFloat64()), []float32{0, 1, 0.5}[r.IntN(3)], r.IntN(2) == 1, r.IntN(2) == 1)
	}
}

// matMulCase checks one MatMul. Without nonzeroC and with beta 0, C starts
// as NaN: beta 0 must overwrite it.
func matMulCase(e *env, m, n, k int, ta, tb bool, alpha, beta float32, withBias, nonzeroC bool) {
	e.Helper()
	name := fmt.Sprintf("%dx%dx%d ta=%v tb=%v alpha=%g beta=%g", m, n, k, ta, tb, alpha, beta)
	p := kernels.MatMulArgs{M: m, N: n, K: k, TransA: ta, TransB: tb, Alpha: alpha, Beta: beta}
	a, b := e.randn(m*k), e.randn(k*n)
	c0 := e.randn(m * n)
	if !nonzeroC && beta == 0 {
		for i := range c0 {
			c0[i] = float32(math.NaN())
		}
	}
	var bias []float32
	var bb kernels.Buffer
	var bias64 []float64
	if withBias {
		bias = e.randn(n)
		bb = e.up(bias)
		bias64 = f64(bias)
	}
	cb := e.up(c0)
	e.must(e.d.MatMul(cb, e.up(a), e.up(b), bb, p))
	want := refMatMul(f64(a), f64(b), bias64, f64(c0), p)
	e.close(name, e.down(cb), want, 1e-5*math.Sqrt(float64(k))+1e-6)
	// The same product with B packed once (an optional capability): the
	// packed copy is the device's own, so B's buffer may change after.
	if pk, ok := e.d.(kernels.MatMulPacker); ok {
		packed, got := packedProduct(e, pk, pk.PackB, a, b, c0, bb, p)
		e.close(name+" packed", got, want, 1e-5*math.Sqrt(float64(k))+1e-6)
		q := p
		q.TransB = !q.TransB
		if err := pk.MatMulPacked(e.up(c0), e.up(a), packed, bb, q); !errors.Is(err, kernels.ErrShape) {
			e.Errorf("%s: packed for TransB %v, called with %v: %v, want ErrShape", name, p.TransB, q.TransB, err)
		}
		packedBF16Case(e, pk, name, a, b, c0, bb, p)
	}
}

// packedProduct packs b with pack, overwrites b's buffer with NaN (the
// packed copy is the device's own, so that must not reach it), and
// returns the packed B and MatMulPacked's C from c0.
func packedProduct(e *env, pk kernels.MatMulPacker, pack func(kernels.Buffer, kernels.MatMulArgs) (kernels.PackedB, error), a, b, c0 []float32, bias kernels.Buffer, p kernels.MatMulArgs) (kernels.PackedB, []float32) {
	e.Helper()
	bbuf := e.up(b)
	packed, err := pack(bbuf, p)
	e.must(err)
	e.must(e.d.Fill(bbuf, float32(math.NaN())))
	cb := e.up(c0)
	e.must(pk.MatMulPacked(cb, e.up(a), packed, bias, p))
	return packed, e.down(cb)
}

// packedBF16Case checks B packed in bfloat16 (an optional capability of a
// MatMulPacker): the product is, to the bit, MatMulPacked's with B rounded
// to bfloat16 first.
func packedBF16Case(e *env, pk kernels.MatMulPacker, name string, a, b, c0 []float32, bias kernels.Buffer, p kernels.MatMulArgs) {
	e.Helper()
	hp, ok := pk.(kernels.BF16Packer)
	if !ok {
		return
	}
	rounded := make([]float32, len(b))
	for i, v := range b {
		rounded[i] = kernels.FromBF16(kernels.ToBF16(v))
	}
	_, w := packedProduct(e, pk, pk.PackB, a, rounded, c0, bias, p)
	_, g := packedProduct(e, pk, hp.PackBBF16, a, b, c0, bias, p)
	for i := range g {
		if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
			e.Errorf("%s bf16 packed: c[%d] = %g, want %g (B rounded to bfloat16, packed as float32)", name, i, g[i], w[i])
			return
		}
	}
	if _, err := hp.PackBBF16(e.up(b[:len(b)-1]), p); err == nil {
		e.Errorf("%s bf16 packed: a B one element short was packed", name)
	}
}

func testColSum(e *env) {
	rows, cols := 23, 41
	in, init := e.randn(rows*cols), e.randn(cols)
	out := e.up(init)
	e.must(e.d.ColSum(out, e.up(in), rows, cols))
	want := make([]float64, cols)
	for i, v := range in {
		want[i%cols] += float64(v)
	}
	e.close("colsum", e.down(out), add64(init, want), 1e-5)
}

func testLayerNorm(e *env) {
	for _, sh := range [][2]int{{1, 1}, {5, 7}, {13, 96}, {3, 301}} {
		rows, cols := sh[0], sh[1]
		name := fmt.Sprintf("%dx%d", rows, cols)
		in, w, b := e.randn(rows*cols), e.randn(cols), e.randn(cols)
		for i := range in {
			in[i] = in[i]*2 + 0.5 // nonzero mean, non-unit variance
		}
		out, mean, rstd := e.alloc(rows*cols), e.alloc(rows), e.alloc(rows)
		inB, wB := e.up(in), e.up(w)
		e.must(e.d.LayerNorm(out, mean, rstd, inB, wB, e.up(b), rows, cols, 1e-5))
		wo, wm, wr := refLayerNorm(f64(in), f64(w), f64(b), rows, cols, 1e-5)
		e.close(name+" out", e.down(out), wo, 1e-4)
		e.close(name+" mean", e.down(mean), wm, 1e-5)
		e.close(name+" rstd", e.down(rstd), wr, 1e-4)

		dout := e.randn(rows * cols)
		din0, dw0, db0 := e.randn(rows*cols), e.randn(cols), e.randn(cols)
		din, dw, db := e.up(din0), e.up(dw0), e.up(db0)
		e.must(e.d.LayerNormBackward(din, dw, db, e.up(dout), inB, wB, mean, rstd, rows, cols))
		rdin, rdw, rdb := refLayerNormBackward(f64(dout), f64(in), f64(w), rows, cols, 1e-5)
		e.close(name+" din", e.down(din), add64(din0, rdin), 1e-4)
		e.close(name+" dweight", e.down(dw), add64(dw0, rdw), 1e-4)
		e.close(name+" dbias", e.down(db), add64(db0, rdb), 1e-4)
	}
}

func testGELU(e *env) {
	n := 1000 + 3
	x := e.randn(n)
	x[0], x[1], x[2] = 8, -8, 1e-3
	in, out := e.up(x), e.alloc(n)
	e.must(e.d.GELU(out, in))
	want := make([]float64, n)
	for i, v := range x {
		want[i] = refGELU(float64(v))
	}
	e.close("gelu", e.down(out), want, 1e-5)
	g, din0 := e.randn(n), e.randn(n)
	din := e.up(din0)
	e.must(e.d.GELUBackward(din, in, e.up(g)))
	for i, v := range x {
		want[i] = float64(g[i]) * refGELUGrad(float64(v))
	}
	e.close("gelu backward", e.down(din), add64(din0, want), 1e-5)
}

func testAttention(e *env) {
	for _, s := range []kernels.AttnShape{
		{B: 1, T: 1, C: 4, Heads: 1}, {B: 2, T: 5, C: 12, Heads: 3}, {B: 3, T: 17, C: 16, Heads: 2},
		{B: 1, T: 300, C: 8, Heads: 1}, // T across matmul row and k blocks
		{B: 2, T: 40, C: 70, Heads: 2}, // head size 35: partial micro-tiles
	} {
		name := fmt.Sprintf("%+v", s)
		qkv := e.randn(s.B * s.T * 3 * s.C)
		out, probs := e.alloc(s.B*s.T*s.C), e.alloc(s.B*s.Heads*s.T*s.T)
		qb := e.up(qkv)
		e.must(e.d.Attention(out, probs, qb, s))
		wo, wp := refAttention(f64(qkv), s)
		e.close(name+" out", e.down(out), wo, 1e-5)
		e.close(name+" probs", e.down(probs), wp, 1e-5)
		dout, dq0 := e.randn(s.B*s.T*s.C), e.randn(len(qkv))
		dq := e.up(dq0)
		e.must(e.d.AttentionBackward(dq, e.up(dout), qb, probs, s))
		e.close(name+" dqkv", e.down(dq), add64(dq0, refAttentionBackward(f64(dout), f64(qkv), s)), 1e-4)
	}
}

func testEmbedding(e *env) {
	b, t, c, vocab := 3, 7, 10, 11
	ids := make([]int32, b*t)
	for i := range ids {
		ids[i] = int32(e.rng.IntN(vocab))
	}
	ids[0], ids[1] = 4, 4                          // a repeated id must accumulate
	wte, wpe := e.randn(vocab*c), e.randn((t+2)*c) // wpe may be longer than T
	out, idb := e.alloc(b*t*c), e.upInt(ids)
	e.must(e.d.Embedding(out, idb, e.up(wte), e.up(wpe), b, t, c))
	e.close("embedding", e.down(out), refEmbedding(ids, f64(wte), f64(wpe[:t*c]), b, t, c), 1e-6)
	out2 := e.alloc(b * t * c)
	e.must(e.d.Embedding(out2, idb, e.up(wte), nil, b, t, c))
	e.close("embedding without positions", e.down(out2), refEmbedding(ids, f64(wte), nil, b, t, c), 0)

	dout, dwte0, dwpe0 := e.randn(b*t*c), e.randn(vocab*c), e.randn((t+2)*c)
	dwte, dwpe := e.up(dwte0), e.up(dwpe0)
	e.must(e.d.EmbeddingBackward(dwte, dwpe, e.up(dout), idb, b, t, c))
	rte, rpe := refEmbeddingBackward(f64(dout), ids, vocab, t, c)
	rpe = append(rpe, make([]float64, 2*c)...)
	e.close("dwte", e.down(dwte), add64(dwte0, rte), 1e-6)
	e.close("dwpe", e.down(dwpe), add64(dwpe0, rpe), 1e-6)

	bad := e.upInt(append([]int32{int32(vocab)}, ids[1:]...))
	if err := e.d.Embedding(out, bad, e.up(wte), nil, b, t, c); err != nil && !errors.Is(err, kernels.ErrArgument) {
		e.Fatalf("id outside the vocabulary: %v, want nil (unchecked) or ErrArgument", err)
	}
}

func testCrossEntropy(e *env) {
	rows, vocab := 9, 67
	logits := e.randn(rows * vocab)
	for i := range logits {
		logits[i] *= 4
	}
	targets := make([]int32, rows)
	for i := range targets {
		targets[i] = int32(e.rng.IntN(vocab))
	}
	targets[3] = -1 // ignored
	losses, d0 := e.alloc(rows), e.randn(rows*vocab)
	dl, lb, tb := e.up(d0), e.up(logits), e.upInt(targets)
	scale := float32(1) / float32(rows)
	e.must(e.d.CrossEntropy(losses, dl, lb, tb, rows, vocab, scale))
	wl, wd := refCrossEntropy(f64(logits), targets, vocab, float64(scale))
	e.close("losses", e.down(losses), wl, 1e-5)
	e.close("dlogits", e.down(dl), add64(d0, wd), 1e-5)
	e.must(e.d.CrossEntropy(losses, nil, lb, tb, rows, vocab, scale))
	e.close("losses without gradient", e.down(losses), wl, 1e-5)
}

func testAdamW(e *env) {
	n := 1001
	p, g, m, v := e.randn(n), e.randn(n), e.randn(n), e.randn(n)
	for i := range v {
		v[i] *= v[i] // second moments are non-negative
	}
	a := kernels.AdamWArgs{LR: 1e-2, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1, Step: 3}
	pb, mb, vb := e.up(p), e.up(m), e.up(v)
	e.must(e.d.AdamW(pb, e.up(g), mb, vb, a))
	wp, wm, wv := refAdamW(f64(p), f64(g), f64(m), f64(v), a)
	e.close("params", e.down(pb), wp, 1e-5)
	e.close("m", e.down(mb), wm, 1e-6)
	e.close("v", e.down(vb), wv, 1e-6)
}

func testElementwise(e *env) {
	for _, n := range []int{1, 17, 40000 + 3} {
		x, y := e.randn(n), e.randn(n)
		xb, yb, dst := e.up(x), e.up(y), e.alloc(n)
		want := make([]float64, n)
		e.must(e.d.Add(dst, xb, yb))
		for i := range want {
			want[i] = float64(x[i] + y[i])
		}
		e.close("add", e.down(dst), want, 0)
		e.must(e.d.Add(xb, xb, yb)) // in place, as collectives reduce
		e.close("add in place", e.down(xb), want, 0)
		e.must(e.d.Scale(dst, yb, -0.5))
		for i := range want {
			want[i] = -0.5 * float64(y[i])
		}
		e.close("scale", e.down(dst), want, 0)
		e.must(e.d.Copy(dst, yb))
		e.close("copy", e.down(dst), f64(y), 0)
		e.must(e.d.Fill(dst, 2.5))
		for i := range want {
			want[i] = 2.5
		}
		e.close("fill", e.down(dst), want, 0)
		acc := e.up([]float32{1.5})
		e.must(e.d.SumSquares(acc, yb))
		ss := 1.5
		for _, v := range y {
			ss += float64(v) * float64(v)
		}
		e.close("sumsquares", e.down(acc), []float64{ss}, 1e-5)
	}
}

func testClipGradNorm(e *env) {
	g1, g2 := e.randn(100), e.randn(31)
	var ss float64
	for _, v := range append(append([]float32{}, g1...), g2...) {
		ss += float64(v) * float64(v)
	}
	norm := math.Sqrt(ss)
	b1, b2, acc := e.up(g1), e.up(g2), e.alloc(1)
	got, err := kernels.ClipGradNorm(e.d, acc, []kernels.Buffer{b1, b2}, float32(norm*2))
	e.must(err)
	e.close("norm", []float32{got}, []float64{norm}, 1e-5)
	e.close("unclipped", e.down(b1), f64(g1), 0)
	_, err = kernels.ClipGradNorm(e.d, acc, []kernels.Buffer{b1, b2}, 1)
	e.must(err)
	want := f64(g2)
	for i := range want {
		want[i] /= norm
	}
	e.close("clipped", e.down(b2), want, 1e-5)
}

func testErrors(e *env) {
	a, b, c := e.alloc(6), e.alloc(6), e.alloc(5)
	for name, err := range map[string]error{
		"matmul c":      e.d.MatMul(c, a, b, nil, kernels.MatMulArgs{M: 2, N: 3, K: 3, Alpha: 1}),
		"matmul zero":   e.d.MatMul(c, a, b, nil, kernels.MatMulArgs{M: 0, N: 3, K: 3}),
		"add":           e.d.Add(a, b, c),
		"gelu":          e.d.GELU(a, c),
		"layernorm":     e.d.LayerNorm(a, c, c, a, c, c, 2, 3, 1e-5),
		"attention":     e.d.Attention(a, b, c, kernels.AttnShape{B: 1, T: 1, C: 2, Heads: 1}),
		"cross-entropy": e.d.CrossEntropy(c, nil, a, b, 5, 1, 1), // targets must be int32
		"adamw step 0":  e.d.AdamW(a, b, a, b, kernels.AdamWArgs{}),
		"copy in":       e.d.CopyIn(a, make([]byte, 23)),
	} {
		if !errors.Is(err, kernels.ErrShape) && !errors.Is(err, kernels.ErrArgument) {
			e.Errorf("%s: %v, want ErrShape or ErrArgument", name, err)
		}
	}
}

func testBF16(e *env) {
	bs, ok := e.d.(kernels.BF16Storage)
	if !ok {
		e.Skip("device does not implement kernels.BF16Storage")
	}
	x := e.randn(33)
	h, err := e.d.Alloc(kernels.BFloat16, len(x))
	e.must(err)
	xb, back := e.up(x), e.alloc(len(x))
	e.must(bs.ToBF16(h, xb))
	e.must(bs.FromBF16(back, h))
	e.close("bf16 roundtrip", e.down(back), f64(x), 1.0/256)
	raw := make([]byte, 2*len(x))
	e.must(e.d.CopyOut(raw, h))
	for i, v := range x {
		if got := uint16(raw[2*i]) | uint16(raw[2*i+1])<<8; got != kernels.ToBF16(v) {
			e.Fatalf("bf16[%d] = %#04x, want %#04x", i, got, kernels.ToBF16(v))
		}
	}
}
