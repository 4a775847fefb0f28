package cpu

import (
	"fmt"
	"math"

	"github.com/ark-sched/ark/kernels"
)

// CrossEntropy writes per-row losses and adds dscale*(softmax - onehot) into
// dlogits when it is not nil.
func (d *Device) CrossEntropy(losses, dlogits, logits, targets kernels.Buffer, rows, vocab int, dscale float32) error {
	if err := kernels.CheckCrossEntropy(losses, dlogits, logits, targets, rows, vocab); err != nil {
		return err
	}
	s, err := d.f32("cross-entropy", losses, dlogits, logits)
	if err != nil {
		return err
	}
	tb, err := d.own(targets)
	if err != nil {
		return fmt.Errorf("cross-entropy targets: %w", err)
	}
	ids := tb.i32()
	for i, t := range ids {
		if t >= int32(vocab) {
			return fmt.Errorf("cross-entropy: target %d of row %d outside vocabulary of %d: %w", t, i, vocab, kernels.ErrArgument)
		}
	}
	j := &d.rows
	j.set(opCrossEntropy, rows, vocab)
	j.scratch = d.rowScratch(vocab)
	j.out, j.x, j.in, j.ids, j.alpha = s[0], s[1], s[2], ids, dscale
	d.parallel(rows, max(1, 4096/vocab), j)
	return nil
}

func crossEntropyRows(j *rowJob, w, lo, hi int) {
	v := j.cols
	for r := lo; r < hi; r++ {
		t := j.ids[r]
		if t < 0 {
			j.out[r] = 0
			continue
		}
		x := j.in[r*v : (r+1)*v]
		mx := x[0]
		for _, e := range x {
			mx = max(mx, e)
		}
		// V exponentials per row: vectorised where the CPU allows.
		e := j.scratch[w][:v]
		sum := expShift(e, x, mx)
		j.out[r] = float32(math.Log(sum) + float64(mx-x[t]))
		if j.x == nil {
			continue
		}
		g := j.x[r*v : (r+1)*v]
		scale := float32(float64(j.alpha) / sum)
		for i, ei := range e {
			g[i] += scale * ei
		}
		g[t] -= j.alpha
	}
}

// adamJob is AdamW over chunks of the parameter vector.
type adamJob struct {
	p, g, m, v []float32
	a          kernels.AdamWArgs
	c1, c2     float32 // bias corrections 1-beta^t
}

func (j *adamJob) run(_, lo, hi int) {
	a := j.a
	for i := lo; i < hi; i++ {
		g := j.g[i]
		m := a.Beta1*j.m[i] + (1-a.Beta1)*g
		v := a.Beta2*j.v[i] + (1-a.Beta2)*g*g
		j.m[i], j.v[i] = m, v
		mh, vh := m/j.c1, v/j.c2
		j.p[i] -= a.LR * (mh/(float32(math.Sqrt(float64(vh)))+a.Eps) + a.WeightDecay*j.p[i])
	}
}

// AdamW updates params in place.
func (d *Device) AdamW(params, grads, m, v kernels.Buffer, p kernels.AdamWArgs) error {
	if err := kernels.CheckAdamW(params, grads, m, v, p); err != nil {
		return err
	}
	s, err := d.f32("adamw", params, grads, m, v)
	if err != nil {
		return err
	}
	j := &d.adam
	*j = adamJob{p: s[0], g: s[1], m: s[2], v: s[3], a: p,
		c1: float32(1 - math.Pow(float64(p.Beta1), float64(p.Step))),
		c2: float32(1 - math.Pow(float64(p.Beta2), float64(p.Step)))}
	d.parallel(len(j.p), ewGrain/4, j)
	*j = adamJob{}
	return nil
}

// embedJob is the embedding forward (items: rows b*t) and backward
// (items: channels, so rows sharing a token id never race).
type embedJob struct {
	back                bool
	out, wte, wpe, dout []float32
	ids                 []int32
	t, c                int
}

func (j *embedJob) run(_, lo, hi int) {
	c := j.c
	if !j.back {
		for r := lo; r < hi; r++ {
			o := j.out[r*c : (r+1)*c]
			copy(o, j.wte[int(j.ids[r])*c:int(j.ids[r])*c+c])
			if j.wpe != nil {
				pos := j.wpe[(r%j.t)*c : (r%j.t)*c+c]
				for i := range o {
					o[i] += pos[i]
				}
			}
		}
		return
	}
	for r, id := range j.ids {
		g := j.dout[r*c : (r+1)*c]
		w := j.wte[int(id)*c : int(id)*c+c]
		for i := lo; i < hi; i++ {
			w[i] += g[i]
		}
		if j.wpe != nil {
			p := j.wpe[(r%j.t)*c : (r%j.t)*c+c]
			for i := lo; i < hi; i++ {
				p[i] += g[i]
			}
		}
	}
}

func (d *Device) embedArgs(op string, out, ids, wte, wpe kernels.Buffer, b, t, c int) (*embedJob, error) {
	if err := kernels.CheckEmbedding(out, ids, wte, wpe, b, t, c); err != nil {
		return nil, err
	}
	s, err := d.f32(op, out, wte, wpe)
	if err != nil {
		return nil, err
	}
	ib, err := d.own(ids)
	if err != nil {
		return nil, fmt.Errorf("%s ids: %w", op, err)
	}
	vocab := int32(len(s[1]) / c)
	idv := ib.i32()
	for i, id := range idv {
		if id < 0 || id >= vocab {
			return nil, fmt.Errorf("%s: token id %d at %d outside vocabulary of %d: %w", op, id, i, vocab, kernels.ErrArgument)
		}
	}
	j := &d.embed
	*j = embedJob{out: s[0], dout: s[0], wte: s[1], wpe: s[2], ids: idv, t: t, c: c}
	return j, nil
}

// Embedding writes token plus position embeddings.
func (d *Device) Embedding(out, ids, wte, wpe kernels.Buffer, b, t, c int) error {
	j, err := d.embedArgs("embedding", out, ids, wte, wpe, b, t, c)
	if err != nil {
		return err
	}
	d.parallel(b*t, max(1, 4096/c), j)
	*j = embedJob{}
	return nil
}

// EmbeddingBackward adds dout into the rows of dwte named by ids and into
// dwpe.
func (d *Device) EmbeddingBackward(dwte, dwpe, dout, ids kernels.Buffer, b, t, c int) error {
	j, err := d.embedArgs("embedding backward", dout, ids, dwte, dwpe, b, t, c)
	if err != nil {
		return err
	}
	j.back = true
	d.parallel(c, 16, j)
	*j = embedJob{}
	return nil
}
