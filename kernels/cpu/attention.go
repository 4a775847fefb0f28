package cpu

import (
	"math"

	"github.com/ark-sched/ark/kernels"
)

// attnJob is causal self-attention; items are (batch, head) pairs, each
// done with single-threaded GEMMs on the heads' strided views of qkv (no
// copies) and the softmax in between. Different pairs write disjoint parts
// of out and dqkv, so there are no races.
type attnJob struct {
	back            bool
	out, probs, qkv []float32
	dqkv, dout      []float32
	s               kernels.AttnShape
	gs              []gemmScratch // per worker
	dp              [][]float32   // per worker, T x T
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
	j.dout = f[0]
	if len(j.gs) < d.pool.size {
		j.gs = make([]gemmScratch, d.pool.size)
		j.dp = make([][]float32, d.pool.size)
	}
	for w := range j.dp {
		j.gs[w].grow(kern, s.T)
		if dqkv != nil && len(j.dp[w]) < s.T*s.T {
			j.dp[w] = make([]float32, s.T*s.T)
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

// attnBlock is the row block of the causal GEMMs: a block of query rows
// [i0, i0+attnBlock) only meets keys [0, i0+attnBlock), so blocks above the
// diagonal are never computed (about half of Q·Kᵀ, P·V and their
// gradients at long contexts).
const attnBlock = 64

func (j *attnJob) run(w, lo, hi int) {
	T, C, H := j.s.T, j.s.C, j.s.Heads
	hs, c3 := C/H, 3*C
	scale := float32(1 / math.Sqrt(float64(hs)))
	gs, mk := &j.gs[w], kern
	for bh := lo; bh < hi; bh++ {
		b, h := bh/H, bh%H
		qo := b*T*c3 + h*hs // q of (b, 0, h); k and v at +C and +2C
		oo := b*T*C + h*hs  // out / dout of (b, 0, h)
		p := j.probs[bh*T*T : (bh+1)*T*T]
		if !j.back {
			for i0 := 0; i0 < T; i0 += attnBlock {
				mb := min(attnBlock, T-i0)
				n := i0 + mb // keys these rows can see
				// S = scale * Q K^T into p, then causal softmax (which
				// also zeroes each row past its diagonal).
				qk := gemmOp{a: j.qkv[qo+i0*c3:], lda: c3, b: j.qkv[qo+C:], ldb: c3, transB: true,
					c: p[i0*T:], ldc: T, m: mb, n: n, k: hs, alpha: scale}
				qk.serial(mk, gs)
				for t := i0; t < n; t++ {
					softmaxCausal(p[t*T:(t+1)*T], t)
				}
				// O = P V.
				pv := gemmOp{a: p[i0*T:], lda: T, b: j.qkv[qo+2*C:], ldb: c3, c: j.out[oo+i0*C:], ldc: C,
					m: mb, n: hs, k: n, alpha: 1}
				pv.serial(mk, gs)
			}
			continue
		}
		dO := j.dout[oo:]
		dp := j.dp[w][:T*T]
		for i0 := 0; i0 < T; i0 += attnBlock {
			mb := min(attnBlock, T-i0)
			n := i0 + mb
			// dP = dO V^T, then dS = P * (dP - rowsum(P*dP)) * scale in
			// place, zero past the diagonal.
			dpo := gemmOp{a: dO[i0*C:], lda: C, b: j.qkv[qo+2*C:], ldb: c3, transB: true, c: dp[i0*T:], ldc: T,
				m: mb, n: n, k: hs, alpha: 1}
			dpo.serial(mk, gs)
			for t := i0; t < n; t++ {
				pr, dr := p[t*T:t*T+t+1], dp[t*T:(t+1)*T]
				var s float32
				for i, v := range pr {
					s += v * dr[i]
				}
				for i, v := range pr {
					dr[i] = v * (dr[i] - s) * scale
				}
				clear(dr[t+1:])
			}
			// dQ += dS K.
			dq := gemmOp{a: dp[i0*T:], lda: T, b: j.qkv[qo+C:], ldb: c3, c: j.dqkv[qo+i0*c3:], ldc: c3,
				m: mb, n: hs, k: n, alpha: 1, beta: 1}
			dq.serial(mk, gs)
		}
		// Keys and values [j0, j0+attnBlock) are seen by queries t >= j0:
		// dV += P^T dO and dK += dS^T Q over those rows only.
		for j0 := 0; j0 < T; j0 += attnBlock {
			mb := min(attnBlock, T-j0)
			kk := T - j0
			dv := gemmOp{a: p[j0*T+j0:], transA: true, lda: T, b: dO[j0*C:], ldb: C, c: j.dqkv[qo+2*C+j0*c3:], ldc: c3,
				m: mb, n: hs, k: kk, alpha: 1, beta: 1}
			dv.serial(mk, gs)
			dk := gemmOp{a: dp[j0*T+j0:], transA: true, lda: T, b: j.qkv[qo+j0*c3:], ldb: c3, c: j.dqkv[qo+C+j0*c3:], ldc: c3,
				m: mb, n: hs, k: kk, alpha: 1, beta: 1}
			dk.serial(mk, gs)
		}
	}
}

// softmaxCausal turns row t of the scores into probabilities over
// positions 0..t and zeroes the rest.
func softmaxCausal(row []float32, t int) {
	live := row[:t+1]
	mx := live[0]
	for _, v := range live {
		mx = max(mx, v)
	}
	inv := float32(1 / expShift(live, live, mx))
	for i := range live {
		live[i] *= inv
	}
	clear(row[t+1:])
}
