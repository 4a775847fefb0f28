package kbench

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/ark-sched/ark/kernels"
)

// timeOthers times attention and layernorm, forward and backward, after
// checking sampled outputs against float64.
func timeOthers(d kernels.Device, dev string, threads int, s kernels.AttnShape, rng *rand.Rand, budget time.Duration) ([]Row, error) {
	rows, cols := s.B*s.T, s.C
	qkvH := randn(rng, s.B*s.T*3*s.C)
	xH, wH, bH := randn(rng, rows*cols), randn(rng, cols), randn(rng, cols)
	var bufs []kernels.Buffer
	defer func() {
		for _, b := range bufs {
			_ = d.Free(b)
		}
	}()
	alloc := func(host []float32, n int) (kernels.Buffer, error) {
		var b kernels.Buffer
		var err error
		if host != nil {
			b, err = kernels.Upload(d, host)
		} else {
			b, err = d.Alloc(kernels.Float32, n)
		}
		if err == nil {
			bufs = append(bufs, b)
		}
		return b, err
	}
	var firstErr error
	must := func(b kernels.Buffer, err error) kernels.Buffer {
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return b
	}
	qkv, dqkv := must(alloc(qkvH, 0)), must(alloc(nil, len(qkvH)))
	out, dout := must(alloc(nil, s.B*s.T*s.C)), must(alloc(randn(rng, s.B*s.T*s.C), 0))
	probs := must(alloc(nil, s.B*s.Heads*s.T*s.T))
	x, w, bias := must(alloc(xH, 0)), must(alloc(wH, 0)), must(alloc(bH, 0))
	y, mean, rstd := must(alloc(nil, rows*cols)), must(alloc(nil, rows)), must(alloc(nil, rows))
	dx, dw, db := must(alloc(nil, rows*cols)), must(alloc(nil, cols)), must(alloc(nil, cols))
	if firstErr != nil {
		return nil, firstErr
	}

	if err := d.Attention(out, probs, qkv, s); err != nil {
		return nil, err
	}
	if err := checkAttention(d, out, qkvH, s); err != nil {
		return nil, fmt.Errorf("%s attention: %w", dev, err)
	}
	if err := d.LayerNorm(y, mean, rstd, x, w, bias, rows, cols, 1e-5); err != nil {
		return nil, err
	}
	if err := checkLayerNorm(d, y, xH, wH, bH, cols); err != nil {
		return nil, fmt.Errorf("%s layernorm: %w", dev, err)
	}

	// GELU on the MLP's hidden width, cross-entropy over a vocabulary.
	const vocab = 8192
	gH := randn(rng, rows*4*cols)
	gin, gout, gd := must(alloc(gH, 0)), must(alloc(nil, len(gH))), must(alloc(nil, len(gH)))
	logitsH := randn(rng, rows*vocab)
	tH := make([]int32, rows)
	for i := range tH {
		tH[i] = int32(rng.IntN(vocab))
	}
	logits, dlogits, losses := must(alloc(logitsH, 0)), must(alloc(nil, rows*vocab)), must(alloc(nil, rows))
	targets, err := d.Alloc(kernels.Int32, rows)
	if err == nil {
		bufs = append(bufs, targets)
		err = kernels.WriteInt32(d, targets, tH)
	}
	if firstErr != nil || err != nil {
		return nil, errors.Join(firstErr, err)
	}
	if err := d.GELU(gout, gin); err != nil {
		return nil, err
	}
	if err := checkGELU(d, gout, gH); err != nil {
		return nil, fmt.Errorf("%s gelu: %w", dev, err)
	}
	if err := d.CrossEntropy(losses, nil, logits, targets, rows, vocab, 1); err != nil {
		return nil, err
	}
	if err := checkCrossEntropy(d, losses, logitsH, tH, vocab); err != nil {
		return nil, fmt.Errorf("%s cross-entropy: %w", dev, err)
	}

	attnFlops := 2 * float64(s.B*s.C) * float64(s.T) * float64(s.T+1)
	shapeA := fmt.Sprintf("B%d T%d C%d H%d", s.B, s.T, s.C, s.Heads)
	shapeL := fmt.Sprintf("%dx%d", rows, cols)
	shapeG := fmt.Sprintf("%dx%d", rows, 4*cols)
	shapeV := fmt.Sprintf("%dx%d", rows, vocab)
	var out2 []Row
	for _, m := range []struct {
		op, shape    string
		flops, elems float64
		f            func() error
	}{
		{"attention", shapeA, attnFlops, 0, func() error { return d.Attention(out, probs, qkv, s) }},
		{"attention backward", shapeA, 2 * attnFlops, 0, func() error { return d.AttentionBackward(dqkv, dout, qkv, probs, s) }},
		{"layernorm", shapeL, 0, float64(rows * cols), func() error { return d.LayerNorm(y, mean, rstd, x, w, bias, rows, cols, 1e-5) }},
		{"layernorm backward", shapeL, 0, float64(rows * cols), func() error {
			return d.LayerNormBackward(dx, dw, db, dout, x, w, mean, rstd, rows, cols)
		}},
		{"gelu", shapeG, 0, float64(len(gH)), func() error { return d.GELU(gout, gin) }},
		{"gelu backward", shapeG, 0, float64(len(gH)), func() error { return d.GELUBackward(gd, gin, gout) }},
		{"cross-entropy fwd+bwd", shapeV, 0, float64(rows * vocab), func() error {
			return d.CrossEntropy(losses, dlogits, logits, targets, rows, vocab, 1.0/float32(rows))
		}},
	} {
		var runErr error
		secs := timeIt(budget, func() {
			if err := m.f(); err != nil && runErr == nil {
				runErr = err
			}
			if err := d.Sync(); err != nil && runErr == nil {
				runErr = err
			}
		})
		if runErr != nil {
			return nil, fmt.Errorf("%s %s: %w", dev, m.op, runErr)
		}
		out2 = append(out2, Row{Device: dev, Op: m.op, Shape: m.shape, Threads: threads, Seconds: secs,
			GFLOPS: round(m.flops / secs / 1e9), GElems: round(m.elems / secs / 1e9)})
	}
	return out2, nil
}

// checkAttention recomputes a few output rows in float64.
func checkAttention(d kernels.Device, out kernels.Buffer, qkv []float32, s kernels.AttnShape) error {
	got, err := kernels.Download(d, out)
	if err != nil {
		return err
	}
	hs := s.C / s.Heads
	for _, c := range [][3]int{{0, 0, 0}, {1, s.Heads - 1, s.T - 1}, {s.B - 1, 1, s.T / 2}} {
		b, h, t := min(c[0], s.B-1), min(c[1], s.Heads-1), c[2]
		at := func(t2, part, i int) float64 { return float64(qkv[(b*s.T+t2)*3*s.C+part*s.C+h*hs+i]) }
		p := make([]float64, t+1)
		mx := math.Inf(-1)
		for t2 := range p {
			for i := 0; i < hs; i++ {
				p[t2] += at(t, 0, i) * at(t2, 1, i)
			}
			p[t2] /= math.Sqrt(float64(hs))
			mx = math.Max(mx, p[t2])
		}
		var sum float64
		for t2 := range p {
			p[t2] = math.Exp(p[t2] - mx)
			sum += p[t2]
		}
		for i := 0; i < hs; i++ {
			var want float64
			for t2 := range p {
				want += p[t2] / sum * at(t2, 2, i)
			}
			g := float64(got[(b*s.T+t)*s.C+h*hs+i])
			if math.Abs(g-want) > 1e-4*(1+math.Abs(want)) {
				return fmt.Errorf("out[b%d t%d h%d][%d] = %g, want %g", b, t, h, i, g, want)
			}
		}
	}
	return nil
}

// checkLayerNorm recomputes the first and last rows in float64.
func checkLayerNorm(d kernels.Device, y kernels.Buffer, x, w, b []float32, cols int) error {
	got, err := kernels.Download(d, y)
	if err != nil {
		return err
	}
	for _, r := range []int{0, len(x)/cols - 1} {
		row := x[r*cols : (r+1)*cols]
		var m, v float64
		for _, e := range row {
			m += float64(e)
		}
		m /= float64(cols)
		for _, e := range row {
			v += (float64(e) - m) * (float64(e) - m)
		}
		rs := 1 / math.Sqrt(v/float64(cols)+1e-5)
		for i, e := range row {
			want := (float64(e)-m)*rs*float64(w[i]) + float64(b[i])
			if g := float64(got[r*cols+i]); math.Abs(g-want) > 1e-4*(1+math.Abs(want)) {
				return fmt.Errorf("row %d [%d] = %g, want %g", r, i, g, want)
			}
		}
	}
	return nil
}

// checkGELU recomputes sampled elements in float64.
func checkGELU(d kernels.Device, out kernels.Buffer, in []float32) error {
	got, err := kernels.Download(d, out)
	if err != nil {
		return err
	}
	for i := 0; i < len(in); i += 997 {
		x := float64(in[i])
		want := 0.5 * x * (1 + math.Tanh(0.7978845608028654*(x+0.044715*x*x*x)))
		if math.Abs(float64(got[i])-want) > 1e-5*(1+math.Abs(want)) {
			return fmt.Errorf("gelu(%g) = %g, want %g", x, got[i], want)
		}
	}
	return nil
}

// checkCrossEntropy recomputes the first and last rows' losses in float64.
func checkCrossEntropy(d kernels.Device, losses kernels.Buffer, logits []float32, targets []int32, vocab int) error {
	got, err := kernels.Download(d, losses)
	if err != nil {
		return err
	}
	for _, r := range []int{0, len(targets) - 1} {
		x := logits[r*vocab : (r+1)*vocab]
		mx := math.Inf(-1)
		for _, v := range x {
			mx = math.Max(mx, float64(v))
		}
		var sum float64
		for _, v := range x {
			sum += math.Exp(float64(v) - mx)
		}
		want := math.Log(sum) + mx - float64(x[targets[r]])
		if math.Abs(float64(got[r])-want) > 1e-5*(1+math.Abs(want)) {
			return fmt.Errorf("row %d loss %g, want %g", r, got[r], want)
		}
	}
	return nil
}
