package cpu

import (
	"fmt"

	"github.com/ark-sched/ark/kernels"
)

// loraJob is GatherLoRA; items are rows, each a matrix-vector product
// down to the rank and back up through its own slot's factors (Punica's
// BGMV shape: at decode time every row is one token, so there is no
// larger GEMM to form per adapter). Rows write disjoint rows of y.
type loraJob struct {
	y, x, a, bt, scales []float32
	slots               []int32
	p                   kernels.LoRAArgs
	u                   [][]float32 // per worker, Rank
}

// GatherLoRA adds each row's own adapter update (kernels.GatheredLoRA).
func (d *Device) GatherLoRA(y, x, a, bt, slots, scales kernels.Buffer, p kernels.LoRAArgs) error {
	if err := kernels.CheckGatherLoRA(y, x, a, bt, slots, scales, p); err != nil {
		return err
	}
	f, err := d.f32("gather lora", y, x, a, bt, scales)
	if err != nil {
		return err
	}
	sb, err := d.own(slots)
	if err != nil {
		return fmt.Errorf("gather lora: %w", err)
	}
	j := &d.lora
	j.y, j.x, j.a, j.bt, j.scales, j.slots, j.p = f[0], f[1], f[2], f[3], f[4], sb.i32(), p
	for i, s := range j.slots {
		if int(s) >= p.Slots {
			j.clear()
			return fmt.Errorf("gather lora: row %d uses slot %d of %d: %w", i, s, p.Slots, kernels.ErrArgument)
		}
	}
	if len(j.u) < d.pool.size {
		j.u = make([][]float32, d.pool.size)
	}
	for w := range j.u {
		if len(j.u[w]) < p.Rank {
			j.u[w] = make([]float32, p.Rank)
		}
	}
	// A row costs 2·Rank·(In+Out) flops: hand out a few hundred thousand
	// flops at a time, so small batches stay on the caller.
	d.parallel(p.Rows, max(1, (1<<17)/(2*p.Rank*(p.In+p.Out)+1)), j)
	j.clear()
	return nil
}

func (j *loraJob) clear() {
	j.y, j.x, j.a, j.bt, j.scales, j.slots = nil, nil, nil, nil, nil, nil
}

func (j *loraJob) run(w, lo, hi int) {
	p := j.p
	u := j.u[w][:p.Rank]
	for i := lo; i < hi; i++ {
		s := int(j.slots[i])
		if s < 0 {
			continue
		}
		r := p.Rank
		if p.Ranks != nil { // the slot's rows past its own rank are zero
			r = int(p.Ranks[s])
		}
		if r == 0 {
			continue
		}
		a, bt := s*p.Rank*p.In, s*p.Rank*p.Out
		loraRow(j.y[i*p.Out:(i+1)*p.Out], j.x[i*p.In:(i+1)*p.In],
			j.a[a:a+r*p.In], j.bt[bt:bt+r*p.Out], u[:r], j.scales[s])
	}
}

// loraRowGo is one row's update, y += scale·(x·aᵀ)·bt, through down and up
// (len(u) is the rank; u is scratch).
func loraRowGo(y, x, a, bt, u []float32, scale float32) {
	down(u, x, a)
	for k := range u {
		u[k] *= scale
	}
	up(y, bt, u)
}

// dotGo is x·y over len(x) elements, eight partial sums (the loop carries
// no dependency from one element to the next, so the FPU pipelines).
func dotGo(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(x); i += 8 {
		xs, ys := x[i:i+8:i+8], y[i:i+8:i+8]
		s0 += xs[0] * ys[0]
		s1 += xs[1] * ys[1]
		s2 += xs[2] * ys[2]
		s3 += xs[3] * ys[3]
		s4 += xs[4] * ys[4]
		s5 += xs[5] * ys[5]
		s6 += xs[6] * ys[6]
		s7 += xs[7] * ys[7]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// axpyGo is y += alpha·x.
func axpyGo(y, x []float32, alpha float32) {
	x = x[:len(y)]
	i := 0
	for ; i+8 <= len(y); i += 8 {
		ys, xs := y[i:i+8:i+8], x[i:i+8:i+8]
		ys[0] += alpha * xs[0]
		ys[1] += alpha * xs[1]
		ys[2] += alpha * xs[2]
		ys[3] += alpha * xs[3]
		ys[4] += alpha * xs[4]
		ys[5] += alpha * xs[5]
		ys[6] += alpha * xs[6]
		ys[7] += alpha * xs[7]
	}
	for ; i < len(y); i++ {
		y[i] += alpha * x[i]
	}
}
