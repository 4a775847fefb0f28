package cpu

import (
	"math"

	"github.com/ark-sched/ark/kernels"
)

// attnJob is causal self-attention; items are (batch, head) pairs, so the
// backward's sums into dk and dv of earlier positions never race.
type attnJob struct {
	back            bool
	out, probs, qkv []float32
	dqkv, dout      []float32
	s               kernels.AttnShape
	datt            [][]float32 // per worker, T each
}

func (d *Device) attnArgs(out, probs, qkv, dqkv kernels.Buffer, s kernels.AttnShape) (*attnJob, error) {
	if err := kernels.CheckAttention(out, probs, qkv, dqkv, s); err != nil {
		return nil, err
	}
	f, err := d.f32("attention", out, probs, qkv, dqkv)
	if err != nil {
		return nil, err
	}
	j := &d.attn
	j.out, j.probs, j.qkv, j.dqkv, j.s = f[0], f[1], f[2], f[3], s
	j.dout = j.out
	if len(j.datt) < d.pool.size {
		j.datt = make([][]float32, d.pool.size)
	}
	for w := range j.datt {
		if len(j.datt[w]) < s.T {
			j.datt[w] = make([]float32, s.T)
		}
	}
	return j, nil
}

func (j *attnJob) clear() {
	j.out, j.probs, j.qkv, j.dqkv, j.dout = nil, nil, nil, nil, nil
}

// Attention computes causal softmax attention and saves the probabilities.
func (d *Device) Attention(out, probs, qkv kernels.Buffer, s kernels.AttnShape) error {
	j, err := d.attnArgs(out, probs, qkv, nil, s)
	if err != nil {
		return err
	}
	j.back = false
	d.parallel(s.B*s.Heads, 1, j)
	j.clear()
	return nil
}

// AttentionBackward adds the gradient of qkv into dqkv.
func (d *Device) AttentionBackward(dqkv, dout, qkv, probs kernels.Buffer, s kernels.AttnShape) error {
	j, err := d.attnArgs(dout, probs, qkv, dqkv, s)
	if err != nil {
		return err
	}
	j.back = true
	d.parallel(s.B*s.Heads, 1, j)
	j.clear()
	return nil
}

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

func (j *attnJob) run(w, lo, hi int) {
	T, C, H := j.s.T, j.s.C, j.s.Heads
	hs := C / H
	scale := float32(1 / math.Sqrt(float64(hs)))
	c3 := 3 * C
	for bh := lo; bh < hi; bh++ {
		b, h := bh/H, bh%H
		base := b * T * c3
		vec := func(t, part int) []float32 { // part 0 q, 1 k, 2 v
			o := base + t*c3 + part*C + h*hs
			return j.qkv[o : o+hs]
		}
		for t := 0; t < T; t++ {
			p := j.probs[(bh*T+t)*T : (bh*T+t+1)*T]
			o := j.out[(b*T+t)*C+h*hs : (b*T+t)*C+h*hs+hs]
			q := vec(t, 0)
			if !j.back {
				mx := float32(math.Inf(-1))
				for t2 := 0; t2 <= t; t2++ {
					p[t2] = dot(q, vec(t2, 1)) * scale
					mx = max(mx, p[t2])
				}
				var sum float32
				for t2 := 0; t2 <= t; t2++ {
					e := float32(math.Exp(float64(p[t2] - mx)))
					p[t2] = e
					sum += e
				}
				inv := 1 / sum
				clear(o)
				for t2 := 0; t2 <= t; t2++ {
					p[t2] *= inv
					axpy(p[t2], vec(t2, 2), o)
				}
				clear(p[t+1:])
				continue
			}
			// Backward: o is dout for this (t, h).
			datt := j.datt[w][:t+1]
			var s float32
			for t2 := range datt {
				datt[t2] = dot(vec(t2, 2), o)
				s += p[t2] * datt[t2]
			}
			dq := j.dqkv[base+t*c3+h*hs : base+t*c3+h*hs+hs]
			for t2 := range datt {
				dpre := p[t2] * (datt[t2] - s) * scale
				ko := base + t2*c3 + C + h*hs
				axpy(dpre, j.qkv[ko:ko+hs], dq)
				axpy(dpre, q, j.dqkv[ko:ko+hs])
				vo := ko + C
				axpy(p[t2], o, j.dqkv[vo:vo+hs])
			}
		}
	}
}
