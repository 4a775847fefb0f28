package kernelstest

import (
	"errors"
	"math"

	"github.com/ark-sched/ark/kernels"
)

// refCachedAttention is CachedAttention in float64.
func refCachedAttention(q, k, v []float64, p kernels.KVAttnArgs) []float64 {
	hs, T := p.HeadSize, p.Context
	out := make([]float64, p.Heads*hs)
	sc := make([]float64, p.Len)
	for h := range p.Heads {
		top := math.Inf(-1)
		for t := range p.Len {
			var s float64
			for j := range hs {
				s += q[h*hs+j] * k[(h*T+t)*hs+j]
			}
			sc[t] = s / math.Sqrt(float64(hs))
			top = max(top, sc[t])
		}
		var sum float64
		for t := range sc {
			sc[t] = math.Exp(sc[t] - top)
			sum += sc[t]
		}
		for t := range sc {
			for j := range hs {
				out[h*hs+j] += sc[t] / sum * v[(h*T+t)*hs+j]
			}
		}
	}
	return out
}

// testCachedAttention checks the optional decode attention over a cache;
// a device without it passes (the decoder then uses MatMuls per head).
func testCachedAttention(e *env) {
	a, ok := e.d.(kernels.CachedAttention)
	if !ok {
		e.Logf("%s has no CachedAttention: decoders use MatMul per head", e.d.Name())
		return
	}
	for _, p := range []kernels.KVAttnArgs{
		{Heads: 1, HeadSize: 8, Context: 4, Len: 1},
		{Heads: 4, HeadSize: 16, Context: 64, Len: 33}, // gpt-tiny
		{Heads: 4, HeadSize: 32, Context: 128, Len: 128},
		{Heads: 3, HeadSize: 12, Context: 20, Len: 7}, // not whole vectors
		{Heads: 2, HeadSize: 64, Context: 9, Len: 6},
	} {
		w, c := p.Heads*p.HeadSize, p.Heads*p.Context*p.HeadSize
		q, k, v := e.randn(w), e.randn(c), e.randn(c)
		out := e.up(e.randn(w)) // overwritten
		e.must(a.CachedAttention(out, e.up(q), e.up(k), e.up(v), p))
		e.close("cached attention", e.down(out), refCachedAttention(f64(q), f64(k), f64(v), p), 1e-5)
	}
	// Large scores: the softmax subtracts the maximum.
	p := kernels.KVAttnArgs{Heads: 2, HeadSize: 16, Context: 8, Len: 8}
	q, k, v := e.randn(32), e.randn(256), e.randn(256)
	for i := range q {
		q[i] *= 40
	}
	out := e.alloc(32)
	e.must(a.CachedAttention(out, e.up(q), e.up(k), e.up(v), p))
	e.close("cached attention, large scores", e.down(out), refCachedAttention(f64(q), f64(k), f64(v), p), 1e-4)
	for _, bad := range []struct {
		p    kernels.KVAttnArgs
		want error
	}{
		{kernels.KVAttnArgs{Heads: 2, HeadSize: 16, Context: 8, Len: 9}, kernels.ErrArgument},
		{kernels.KVAttnArgs{Heads: 2, HeadSize: 16, Context: 8, Len: 0}, kernels.ErrArgument},
		{kernels.KVAttnArgs{Heads: 2, HeadSize: 16, Context: 4, Len: 2}, kernels.ErrShape},
	} {
		if err := a.CachedAttention(out, e.up(q), e.up(k), e.up(v), bad.p); !errors.Is(err, bad.want) {
			e.Errorf("cached attention %+v: %v, want %v", bad.p, err, bad.want)
		}
	}
}
