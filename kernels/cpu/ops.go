package cpu

import (
	"math"

	"github.com/ark-sched/ark/kernels"
)

type rowOp uint8

const (
	opColSum rowOp = iota
	opLayerNorm
	opLayerNormDin
	opLayerNormDw
	opGELU
	opGELUBack
	opAdd
	opScale
	opFill
	opCopy
	opSumSq
	opCrossEntropy
)

// rowJob is the parallel body of the simple ops: one op code and its operands.
type rowJob struct {
	op         rowOp
	rows, cols int
	out, in    []float32
	out2       []float32
	x, y, z, u []float32
	ids        []int32
	alpha, eps float32
	partial    []float64   // per block (SumSquares)
	scratch    [][]float32 // per worker (cross-entropy's exponentials)
}

func (j *rowJob) set(op rowOp, rows, cols int) {
	*j = rowJob{op: op, rows: rows, cols: cols, partial: j.partial}
}

// rowScratch returns per-worker rows of at least n floats, kept between
// calls.
func (d *Device) rowScratch(n int) [][]float32 {
	if len(d.scratch) < d.pool.size {
		d.scratch = make([][]float32, d.pool.size)
	}
	for w := range d.scratch {
		if len(d.scratch[w]) < n {
			d.scratch[w] = make([]float32, n)
		}
	}
	return d.scratch
}

func (j *rowJob) run(w, lo, hi int) {
	switch j.op {
	case opColSum:
		for r := 0; r < j.rows; r++ {
			row := j.in[r*j.cols : (r+1)*j.cols]
			for c := lo; c < hi; c++ {
				j.out[c] += row[c]
			}
		}
	case opLayerNorm:
		layerNormRows(j, lo, hi)
	case opLayerNormDin:
		layerNormDin(j, lo, hi)
	case opLayerNormDw:
		layerNormDw(j, lo, hi)
	case opGELU:
		for i := lo + geluVec(j.out[lo:hi], j.in[lo:hi]); i < hi; i++ {
			j.out[i] = gelu(j.in[i])
		}
	case opGELUBack:
		for i := lo + geluBackVec(j.out[lo:hi], j.in[lo:hi], j.x[lo:hi]); i < hi; i++ {
			j.out[i] += geluGrad(j.in[i]) * j.x[i]
		}
	case opAdd:
		for i := lo; i < hi; i++ {
			j.out[i] = j.x[i] + j.y[i]
		}
	case opScale:
		for i := lo; i < hi; i++ {
			j.out[i] = j.alpha * j.x[i]
		}
	case opFill:
		for i := lo; i < hi; i++ {
			j.out[i] = j.alpha
		}
	case opCopy:
		copy(j.out[lo:hi], j.x[lo:hi])
	case opSumSq:
		// Items are fixed blocks of sumSqBlock elements, each summed into
		// its own slot, so the total does not depend on scheduling.
		for blk := lo; blk < hi; blk++ {
			x := j.x[blk*sumSqBlock : min(len(j.x), (blk+1)*sumSqBlock)]
			var s0, s1, s2, s3 float64
			i := 0
			for ; i+4 <= len(x); i += 4 {
				s0 += float64(x[i]) * float64(x[i])
				s1 += float64(x[i+1]) * float64(x[i+1])
				s2 += float64(x[i+2]) * float64(x[i+2])
				s3 += float64(x[i+3]) * float64(x[i+3])
			}
			for ; i < len(x); i++ {
				s0 += float64(x[i]) * float64(x[i])
			}
			j.partial[blk] = s0 + s1 + s2 + s3
		}
	case opCrossEntropy:
		crossEntropyRows(j, w, lo, hi)
	}
}

const (
	ewGrain    = 1 << 14 // elements per chunk below which an op stays on one thread
	sumSqBlock = 1 << 12 // SumSquares sums blocks of this many elements
)

// Add sets dst = a + b.
func (d *Device) Add(dst, a, b kernels.Buffer) error {
	return d.elementwise("add", opAdd, 0, dst, a, b)
}

// Scale sets dst = alpha * x.
func (d *Device) Scale(dst, x kernels.Buffer, alpha float32) error {
	return d.elementwise("scale", opScale, alpha, dst, x, nil)
}

// Fill sets every element of dst to v.
func (d *Device) Fill(dst kernels.Buffer, v float32) error {
	return d.elementwise("fill", opFill, v, dst, nil, nil)
}

// Copy sets dst = src.
func (d *Device) Copy(dst, src kernels.Buffer) error {
	return d.elementwise("copy", opCopy, 0, dst, src, nil)
}

func (d *Device) elementwise(name string, op rowOp, alpha float32, dst, x, y kernels.Buffer) error {
	var err error
	switch {
	case y != nil:
		err = kernels.CheckSame(name, dst, x, y)
	case x != nil:
		err = kernels.CheckSame(name, dst, x)
	default:
		err = kernels.CheckSame(name, dst)
	}
	if err != nil {
		return err
	}
	s, err := d.f32(name, dst, x, y)
	if err != nil {
		return err
	}
	j := &d.rows
	j.set(op, 0, 0)
	j.out, j.x, j.y, j.alpha = s[0], s[1], s[2], alpha
	d.parallel(len(j.out), ewGrain, j)
	return nil
}

// SumSquares adds the sum of squares of x into acc[0], summed in float64.
func (d *Device) SumSquares(acc, x kernels.Buffer) error {
	if err := kernels.CheckSumSquares(acc, x); err != nil {
		return err
	}
	s, err := d.f32("sumsquares", acc, x)
	if err != nil {
		return err
	}
	j := &d.rows
	j.set(opSumSq, 0, 0)
	blocks := (len(s[1]) + sumSqBlock - 1) / sumSqBlock
	if len(j.partial) < blocks {
		j.partial = make([]float64, blocks)
	}
	j.x = s[1]
	d.parallel(blocks, ewGrain/sumSqBlock, j)
	var sum float64
	for _, p := range j.partial[:blocks] {
		sum += p
	}
	s[0][0] += float32(sum)
	return nil
}

// GELU sets out = gelu(in) (tanh approximation).
func (d *Device) GELU(out, in kernels.Buffer) error {
	if err := kernels.CheckSame("gelu", out, in); err != nil {
		return err
	}
	s, err := d.f32("gelu", out, in)
	if err != nil {
		return err
	}
	j := &d.rows
	j.set(opGELU, 0, 0)
	j.out, j.in = s[0], s[1]
	d.parallel(len(j.out), ewGrain/8, j)
	return nil
}

// GELUBackward adds dout * gelu'(in) into din.
func (d *Device) GELUBackward(din, in, dout kernels.Buffer) error {
	if err := kernels.CheckSame("gelu backward", din, in, dout); err != nil {
		return err
	}
	s, err := d.f32("gelu backward", din, in, dout)
	if err != nil {
		return err
	}
	j := &d.rows
	j.set(opGELUBack, 0, 0)
	j.out, j.in, j.x = s[0], s[1], s[2]
	d.parallel(len(j.out), ewGrain/8, j)
	return nil
}

const geluK float32 = 0.7978845608028654 // sqrt(2/pi)

// geluSigmoid is 0.5*(1 + tanh(u)) for GELU's u = sqrt(2/pi)(x +
// 0.044715x^3), computed as sigmoid(2u) = e/(1+e), e = exp(2u): the same
// value without the cancellation in 1 + tanh for negative x, and the same
// formula as the vectorised kernel (gelu_amd64.s), clamp included.
func geluSigmoid(x float32) float32 {
	z := 2 * geluK * x * (1 + 0.044715*x*x)
	z = min(max(z, -87), 88)
	e := expf(z)
	return e / (1 + e)
}

func gelu(x float32) float32 { return x * geluSigmoid(x) }

// geluGrad is s + 2x s(1-s) sqrt(2/pi)(1 + 3*0.044715x^2), s = geluSigmoid(x).
func geluGrad(x float32) float32 {
	s := geluSigmoid(x)
	return s + 2*x*s*(1-s)*geluK*(1+3*0.044715*x*x)
}

// LayerNorm normalises each row of in.
func (d *Device) LayerNorm(out, mean, rstd, in, weight, bias kernels.Buffer, rows, cols int, eps float32) error {
	if err := kernels.CheckLayerNorm(out, mean, rstd, in, weight, bias, rows, cols); err != nil {
		return err
	}
	s, err := d.f32("layernorm", out, mean, rstd, in, weight, bias)
	if err != nil {
		return err
	}
	j := &d.rows
	j.set(opLayerNorm, rows, cols)
	j.out, j.x, j.y, j.in, j.z, j.u, j.eps = s[0], s[1], s[2], s[3], s[4], s[5], eps
	d.parallel(rows, max(1, 8192/cols), j)
	return nil
}

// sum4 and the other reductions keep four independent accumulators: a
// single chain of float64 adds is latency-bound at one add per 4 cycles.
func sum4(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += float64(x[i])
		s1 += float64(x[i+1])
		s2 += float64(x[i+2])
		s3 += float64(x[i+3])
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// sqdev4 is the sum of (x - m)^2.
func sqdev4(x []float32, m float64) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		d0, d1, d2, d3 := float64(x[i])-m, float64(x[i+1])-m, float64(x[i+2])-m, float64(x[i+3])-m
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(x); i++ {
		d := float64(x[i]) - m
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

func layerNormRows(j *rowJob, lo, hi int) {
	c := j.cols
	for r := lo; r < hi; r++ {
		x := j.in[r*c : (r+1)*c]
		m := sum4(x) / float64(c)
		rs := 1 / math.Sqrt(sqdev4(x, m)/float64(c)+float64(j.eps))
		o := j.out[r*c : (r+1)*c]
		mf, rf := float32(m), float32(rs)
		w, b := j.z[:c], j.u[:c]
		for i, v := range x {
			o[i] = (v-mf)*rf*w[i] + b[i]
		}
		j.x[r], j.y[r] = mf, rf
	}
}

// LayerNormBackward adds the gradients of in, weight and bias.
func (d *Device) LayerNormBackward(din, dweight, dbias, dout, in, weight, mean, rstd kernels.Buffer, rows, cols int) error {
	if err := kernels.CheckLayerNormBackward(din, dweight, dbias, dout, in, weight, mean, rstd, rows, cols); err != nil {
		return err
	}
	s, err := d.f32("layernorm backward", din, dweight, dbias, dout, in, weight, mean, rstd)
	if err != nil {
		return err
	}
	j := &d.rows
	j.set(opLayerNormDin, rows, cols)
	j.out, j.in, j.z, j.x, j.y, j.u = s[0], s[4], s[5], s[6], s[7], s[3]
	d.parallel(rows, max(1, 4096/cols), j)
	// Weight and bias gradients sum over rows: parallel over columns.
	j.op = opLayerNormDw
	j.out, j.out2 = s[1], s[2]
	d.parallel(cols, 64, j)
	return nil
}

// layerNormDin: din += rstd * (w*dout - mean(w*dout) - xhat*mean(w*dout*xhat)).
func layerNormDin(j *rowJob, lo, hi int) {
	c := j.cols
	for r := lo; r < hi; r++ {
		x, g := j.in[r*c:(r+1)*c], j.u[r*c:(r+1)*c]
		w := j.z[:c]
		m, rs := j.x[r], j.y[r]
		var a0, a1, b0, b1 float64
		i := 0
		for ; i+2 <= c; i += 2 {
			wg0, wg1 := w[i]*g[i], w[i+1]*g[i+1]
			a0 += float64(wg0)
			a1 += float64(wg1)
			b0 += float64(wg0 * (x[i] - m) * rs)
			b1 += float64(wg1 * (x[i+1] - m) * rs)
		}
		for ; i < c; i++ {
			wg := w[i] * g[i]
			a0 += float64(wg)
			b0 += float64(wg * (x[i] - m) * rs)
		}
		m1, m2 := float32((a0+a1)/float64(c)), float32((b0+b1)/float64(c))
		o := j.out[r*c : (r+1)*c]
		for i := range x {
			xh := (x[i] - m) * rs
			o[i] += rs * (w[i]*g[i] - m1 - xh*m2)
		}
	}
}

// layerNormDw: dweight += sum over rows of dout*xhat; dbias += sum of dout.
func layerNormDw(j *rowJob, lo, hi int) {
	c := j.cols
	for r := 0; r < j.rows; r++ {
		x, g := j.in[r*c:(r+1)*c], j.u[r*c:(r+1)*c]
		m, rs := j.x[r], j.y[r]
		for i := lo; i < hi; i++ {
			j.out[i] += g[i] * (x[i] - m) * rs
			j.out2[i] += g[i]
		}
	}
}
