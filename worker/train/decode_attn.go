package train

import (
	"math"

	"github.com/ark-sched/ark/kernels"
)

// hostAttention is a decode step's attention for a device whose memory is
// the host's (the CPU): it appends each row's key and value to its cache,
// then attends each (row, head) query over that row's cache, in place. Through the Device it is two tiny MatMuls per
// (row, head) (each packing its slice of the cache) and a CrossEntropy
// over every padded score column: at batch 32 that was half of a step, a
// cost per row that batching cannot share. The math is Step's device path,
// all in float32: the softmax through expSoftmax (math.Exp in float64 was
// a fifth of a batched step), the scores and the weighted sum of the
// values in loops shaped for registers (scores, weightedSum).
func (d *Decoder) hostAttention(ha kernels.HostAccess, rows []*Seq, l int, qkvBuf, attBuf kernels.Buffer) error {
	c := d.m.Cfg
	T, C, H := c.Context, c.Width, c.Heads
	hs := C / H
	qkv, err := ha.Float32s(qkvBuf)
	if err != nil {
		return err
	}
	att, err := ha.Float32s(attBuf)
	if err != nil {
		return err
	}
	scale := float32(1 / math.Sqrt(float64(hs)))
	d.scores = growFloats(d.scores, T)
	for i, s := range rows {
		kc, err := ha.Float32s(s.k[l])
		if err != nil {
			return err
		}
		vc, err := ha.Float32s(s.v[l])
		if err != nil {
			return err
		}
		pos := s.Len()
		for h := range H { // append this token's k and v to the row's cache
			at := (h*T + pos) * hs
			copy(kc[at:at+hs], qkv[i*3*C+C+h*hs:])
			copy(vc[at:at+hs], qkv[i*3*C+2*C+h*hs:])
		}
		n := pos + 1
		for h := range H {
			q := qkv[i*3*C+h*hs : i*3*C+(h+1)*hs]
			keys, vals := kc[h*T*hs:(h*T+n)*hs], vc[h*T*hs:(h*T+n)*hs]
			sc := d.scores[:n]
			scores(sc, q, keys, scale)
			top := float32(math.Inf(-1))
			for _, v := range sc {
				top = max(top, v)
			}
			// The softmax in float32: its terms are in (0, 1] after
			// subtracting the max, and n is at most the context, so the
			// sum keeps about six digits, well inside the device path's.
			sum := expSoftmax(sc, sc, top, 1)
			weightedSum(att[i*C+h*hs:i*C+(h+1)*hs], sc, vals, 1/sum)
		}
	}
	return nil
}

// scores sets sc[t] = scale * (q . keys[t]) for the len(sc) rows of keys
// (each len(q) long), two rows at a time so each load of q serves both and
// the two sums do not wait on each other.
func scores(sc, q, keys []float32, scale float32) {
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
		sc[t] = dot32(q, keys[t*hs:(t+1)*hs]) * scale
	}
}

// dot32 is the dot product of two equal-length vectors, in four
// independent sums so consecutive adds do not wait on each other. The
// loop reslices rather than indexes so the compiler drops its bounds
// checks.
func dot32(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	for len(a) >= 4 && len(b) >= 4 {
		s0 += a[0] * b[0]
		s1 += a[1] * b[1]
		s2 += a[2] * b[2]
		s3 += a[3] * b[3]
		a, b = a[4:], b[4:]
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// weightedSum sets out = scale * sum over t of w[t] * vals[t] (vals holds
// len(w) rows of len(out)). It runs over four output columns at a time
// with their sums in registers, rather than adding each row into out in
// memory; the weights are a softmax's numerators and scale its 1/sum, so
// the n*len(out) multiplies by 1/sum become len(out).
func weightedSum(out, w, vals []float32, scale float32) {
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
