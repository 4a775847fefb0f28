package cpu

import (
	"fmt"
	"math"

	"github.com/ark-sched/ark/kernels"
)

// CachedAttention is one query's attention over its own key/value cache
// (kernels.CachedAttention): per head, the scores q·k[t] (kvScores), their
// softmax through expShift (16 lanes with AVX-512), and the weighted sum
// of the values (kvWeighted). It runs on the caller's goroutine: a decode
// step's call is a few thousand flops per head, less than handing it to
// the pool would cost.
func (d *Device) CachedAttention(out, q, k, v kernels.Buffer, p kernels.KVAttnArgs) error {
	if err := kernels.CheckCachedAttention(out, q, k, v, p); err != nil {
		return err
	}
	f, err := d.f32("cached attention", out, q, k, v)
	if err != nil {
		return fmt.Errorf("cached attention: %w", err)
	}
	o, qs, ks, vs := f[0], f[1], f[2], f[3]
	hs, T, n := p.HeadSize, p.Context, p.Len
	// Scores are padded to whole vectors of 16 so expShift has no scalar
	// tail: a padding score exps to at most 1.6e-38 (its clamp), which
	// vanishes in a sum of at least 1, and no value weights it.
	n16 := (n + 15) &^ 15
	if len(d.kvScore) < n16 {
		d.kvScore = make([]float32, (T+15)&^15)
	}
	sc, padded := d.kvScore[:n], d.kvScore[:n16]
	scale := float32(1 / math.Sqrt(float64(hs)))
	for h := range p.Heads {
		base := h * T * hs
		kvScores(sc, qs[h*hs:(h+1)*hs], ks[base:base+n*hs], scale)
		for i := n; i < n16; i++ { // the last head's exp overwrote them
			padded[i] = -1e30
		}
		top := sc[0]
		for _, s := range sc[1:] {
			if s > top { // not max(): its NaN and -0 handling cost more than the scores
				top = s
			}
		}
		// The terms are in (0, 1] after subtracting the max and the
		// largest is 1, so the sum is at least 1.
		sum := expShift(padded, padded, top)
		kvWeighted(o[h*hs:(h+1)*hs], sc, vs[base:base+n*hs], float32(1/sum))
	}
	return nil
}

// kvScoresGo sets sc[t] = scale * (q . keys[t]) for the len(sc) rows of
// keys (each len(q) long), two rows at a time so each load of q serves
// both and the two sums do not wait on each other.
func kvScoresGo(sc, q, keys []float32, scale float32) {
	hs := len(q)
	t := 0
	for ; t+2 <= len(sc); t += 2 {
		k0 := keys[t*hs : (t+1)*hs : (t+1)*hs]
		k1 := keys[(t+1)*hs : (t+2)*hs : (t+2)*hs]
		var a0, a1, b0, b1 float32
		j := 0
		for ; j+2 <= hs && j+2 <= len(k0) && j+2 <= len(k1); j += 2 {
			a0 += q[j] * k0[j]
			b0 += q[j] * k1[j]
			a1 += q[j+1] * k0[j+1]
			b1 += q[j+1] * k1[j+1]
		}
		for ; j < hs; j++ {
			a0 += q[j] * k0[j]
			b0 += q[j] * k1[j]
		}
		sc[t], sc[t+1] = (a0+a1)*scale, (b0+b1)*scale
	}
	if t < len(sc) {
		sc[t] = dotGo(q, keys[t*hs:(t+1)*hs]) * scale
	}
}

// kvWeightedGo sets out = scale * sum over t of w[t] * vals[t] (vals holds
// len(w) rows of len(out)), four output columns at a time with their sums
// in registers.
func kvWeightedGo(out, w, vals []float32, scale float32) {
	hs := len(out)
	j := 0
	for ; j+4 <= hs; j += 4 {
		var a0, a1, a2, a3 float32
		for t, wt := range w {
			v := vals[t*hs+j : t*hs+j+4 : t*hs+j+4]
			a0 += wt * v[0]
			a1 += wt * v[1]
			a2 += wt * v[2]
			a3 += wt * v[3]
		}
		o := out[j : j+4 : j+4]
		o[0], o[1], o[2], o[3] = a0*scale, a1*scale, a2*scale, a3*scale
	}
	for ; j < hs; j++ {
		var a float32
		for t, wt := range w {
			a += wt * vals[t*hs+j]
		}
		out[j] = a * scale
	}
}
