package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/worker/tokenizer"
)

// Parameter layout: one buffer, tensors in this order. Backward finishes
// them from the end to the start (final layernorm, last block, ..., first
// block, then the embeddings, whose gradient the tied output layer and the
// input embedding both add to), so the gradients that are final first are
// a contiguous tail of the buffer: each bucket is a contiguous range.
//
//	wte V*C, wpe T*C,
//	per block: ln1w C, ln1b C, wqkv 3C*C, bqkv 3C, wo C*C, bo C,
//	           ln2w C, ln2b C, wfc 4C*C, bfc 4C, wp C*4C, bp C
//	lnfw C, lnfb C
type block struct {
	ln1w, ln1b, wqkv, bqkv, wo, bo, ln2w, ln2b, wfc, bfc, wp, bp kernels.Buffer
}

type weights struct {
	wte, wpe   kernels.Buffer
	blocks     []block
	lnfw, lnfb kernels.Buffer
}

type initKind uint8

const (
	initNormal   initKind = iota // N(0, 0.02)
	initResidual                 // N(0, 0.02/sqrt(2L)): projections into the residual stream
	initOnes
	initZeros
)

type tensorSpec struct {
	name string
	size int
	init initKind
}

func (c Config) layout() []tensorSpec {
	C, V, T := c.Width, c.Vocab, c.Context
	specs := []tensorSpec{{"wte", V * C, initNormal}, {"wpe", T * C, initNormal}}
	for l := range c.Layers {
		p := fmt.Sprintf("h%d.", l)
		specs = append(specs,
			tensorSpec{p + "ln1w", C, initOnes}, tensorSpec{p + "ln1b", C, initZeros},
			tensorSpec{p + "wqkv", 3 * C * C, initNormal}, tensorSpec{p + "bqkv", 3 * C, initZeros},
			tensorSpec{p + "wo", C * C, initResidual}, tensorSpec{p + "bo", C, initZeros},
			tensorSpec{p + "ln2w", C, initOnes}, tensorSpec{p + "ln2b", C, initZeros},
			tensorSpec{p + "wfc", 4 * C * C, initNormal}, tensorSpec{p + "bfc", 4 * C, initZeros},
			tensorSpec{p + "wp", C * 4 * C, initResidual}, tensorSpec{p + "bp", C, initZeros},
		)
	}
	return append(specs, tensorSpec{"lnfw", C, initOnes}, tensorSpec{"lnfb", C, initZeros})
}

// NumParams is the number of parameters.
func (c Config) NumParams() int {
	n := 0
	for _, s := range c.layout() {
		n += s.size
	}
	return n
}

// blockStart is the offset of block l's first parameter; blockStart(Layers)
// is the offset of the final layernorm.
func (c Config) blockStart(l int) int {
	C := c.Width
	per := 4*C + 3*C*C + 3*C + C*C + C + 4*C*C + 4*C + 4*C*C + C // = 12C² + 13C
	return c.Vocab*C + c.Context*C + l*per
}

// FLOPsPerToken estimates training FLOPs per token (forward and backward:
// 6 per parameter-token of the matmuls, plus attention), for MFU.
func (c Config) FLOPsPerToken() float64 {
	C, L, T := float64(c.Width), float64(c.Layers), float64(c.Context)
	matmul := L*12*C*C + float64(c.Vocab)*C
	return 6*matmul + 6*L*T*C // attention scores and values, causal half, fwd+bwd
}

// bind slices buf per tensor in layout order.
func bind(d kernels.Memory, c Config, buf kernels.Buffer) (weights, error) {
	var w weights
	off := 0
	var err error
	next := func(n int) kernels.Buffer {
		if err != nil {
			return nil
		}
		var b kernels.Buffer
		b, err = d.Slice(buf, off, n)
		off += n
		return b
	}
	C, V, T := c.Width, c.Vocab, c.Context
	w.wte, w.wpe = next(V*C), next(T*C)
	w.blocks = make([]block, c.Layers)
	for l := range w.blocks {
		b := &w.blocks[l]
		b.ln1w, b.ln1b, b.wqkv, b.bqkv = next(C), next(C), next(3*C*C), next(3*C)
		b.wo, b.bo, b.ln2w, b.ln2b = next(C*C), next(C), next(C), next(C)
		b.wfc, b.bfc, b.wp, b.bp = next(4*C*C), next(4*C), next(C*4*C), next(C)
	}
	w.lnfw, w.lnfb = next(C), next(C)
	if err != nil {
		return w, fmt.Errorf("bind parameters: %w", err)
	}
	return w, nil
}

// Model is a decoder's parameters, gradients and AdamW moments on one
// Device, each in one buffer. It is used from one goroutine at a time.
type Model struct {
	Cfg Config
	d   kernels.Device

	paramSet                // every weight of the decoder
	acc      kernels.Buffer // 1: clipping scratch

	p, g weights
	acts map[int]*acts // by batch size

	// lora, when set, is a low-rank adapter applied on top of the weights
	// (see lora.go); backward then trains only the adapter: the base's
	// gradients are not computed.
	lora *Adapter

	// tok is the tokenizer the checkpoint carried (an imported model's
	// BPE); nil is bytes.
	tok *tokenizer.BPE
}

// paramSet is what an optimizer steps: parameters, their gradient buffer
// (with one extra slot for the loss, all-reduced with them) and AdamW's
// moments. The whole model is one; a LoRA adapter is another.
type paramSet struct {
	n        int            // parameters
	params   kernels.Buffer // n
	gradAll  kernels.Buffer // n+1: the gradients, then one slot for the loss (all-reduced with them)
	grads    kernels.Buffer // gradAll[:n]
	lossSlot kernels.Buffer // gradAll[n]
	m, v     kernels.Buffer
}

// newParamSet allocates a zeroed set of n parameters on d, with their
// gradients and AdamW moments.
func newParamSet(d kernels.Memory, n int) (paramSet, error) { return allocParamSet(d, n, true) }

// allocParamSet is newParamSet; without train it allocates the
// parameters alone (a model that only runs forward: serving, generating,
// evaluating), a quarter of the memory.
func allocParamSet(d kernels.Memory, n int, train bool) (paramSet, error) {
	ps := paramSet{n: n}
	var err error
	alloc := func(k int) kernels.Buffer {
		if err != nil {
			return nil
		}
		var b kernels.Buffer
		b, err = d.Alloc(kernels.Float32, k)
		return b
	}
	ps.params = alloc(n)
	if train {
		ps.gradAll, ps.m, ps.v = alloc(n+1), alloc(n), alloc(n)
	}
	if err != nil {
		return ps, fmt.Errorf("allocate %d parameters: %w", n, err)
	}
	if !train {
		return ps, nil
	}
	if ps.grads, err = d.Slice(ps.gradAll, 0, n); err != nil {
		return ps, err
	}
	if ps.lossSlot, err = d.Slice(ps.gradAll, n, 1); err != nil {
		return ps, err
	}
	return ps, nil
}

// free releases the set's buffers.
func (ps *paramSet) free(d kernels.Memory) {
	for _, b := range []kernels.Buffer{ps.params, ps.gradAll, ps.m, ps.v} {
		if b != nil {
			_ = d.Free(b)
		}
	}
	*ps = paramSet{}
}

// trainable is the parameter set training steps: the adapter's when one
// is attached, else the whole model's.
func (m *Model) trainable() *paramSet {
	if m.lora != nil {
		return &m.lora.paramSet
	}
	return &m.paramSet
}

// NewModel allocates a model on d, its parameters zero (see Init).
func NewModel(d kernels.Device, c Config) (*Model, error) { return newModel(d, c, true) }

// newModel is NewModel; without train the model has no gradients or
// optimizer moments (LoadModel's: it only runs forward) and refuses a
// backward pass.
func newModel(d kernels.Device, c Config, train bool) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	n := c.NumParams()
	m := &Model{Cfg: c, d: d, acts: map[int]*acts{}}
	var err error
	if m.paramSet, err = allocParamSet(d, n, train); err != nil {
		return nil, fmt.Errorf("allocate model: %w", err)
	}
	if m.acc, err = d.Alloc(kernels.Float32, 1); err != nil {
		return nil, fmt.Errorf("allocate model: %w", err)
	}
	if m.p, err = bind(d, c, m.params); err != nil {
		return nil, err
	}
	if !train {
		return m, nil
	}
	if m.g, err = bind(d, c, m.grads); err != nil {
		return nil, err
	}
	return m, nil
}

// errForwardOnly is a backward pass asked of a model loaded to run
// forward only (LoadModel).
var errForwardOnly = errors.New("train: this model was loaded to run forward only (no gradients); build it with NewModel to train it")

// NumParams is the number of parameters.
func (m *Model) NumParams() int { return m.n }

// Init sets GPT-2's initialisation from seed: weights N(0, 0.02),
// projections into the residual stream N(0, 0.02/sqrt(2L)), layernorm
// weights 1, biases 0; AdamW moments zero.
func (m *Model) Init(seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x61726b))
	host := make([]float32, 0, m.n)
	resid := 0.02 / math.Sqrt(2*float64(m.Cfg.Layers))
	for _, s := range m.Cfg.layout() {
		for range s.size {
			var v float64
			switch s.init {
			case initNormal:
				v = 0.02 * rng.NormFloat64()
			case initResidual:
				v = resid * rng.NormFloat64()
			case initOnes:
				v = 1
			}
			host = append(host, float32(v))
		}
	}
	if err := kernels.WriteFloat32(m.d, m.params, host); err != nil {
		return fmt.Errorf("init parameters: %w", err)
	}
	return m.resetOptimizer()
}

func (m *Model) resetOptimizer() error {
	if m.m == nil {
		return nil // a forward-only model has no moments
	}
	if err := m.d.Fill(m.m, 0); err != nil {
		return err
	}
	return m.d.Fill(m.v, 0)
}

// acts are one batch size's activations and activation gradients.
type acts struct {
	B, N          int // batch, B*T rows
	ids, targets  kernels.Buffer
	xs            []kernels.Buffer // residual stream: input of block l, xs[L] into the final layernorm
	blocks        []blockActs
	hf, meanf     kernels.Buffer
	rstdf, logits kernels.Buffer
	losses        kernels.Buffer
	hostLoss      []float32
	hostTargets   []int32

	dx, dh, dqkv, datt, dfc, dg, dlogits kernels.Buffer

	lora *loraActs // allocated when an adapter is attached
}

type blockActs struct {
	h1, mean1, rstd1, qkv, att, probs, x1, h2, mean2, rstd2, fc, gl kernels.Buffer
}

func (m *Model) actsFor(B int) (*acts, error) {
	if a, ok := m.acts[B]; ok {
		return a, nil
	}
	c := m.Cfg
	C, T, V, H, L := c.Width, c.Context, c.Vocab, c.Heads, c.Layers
	N := B * T
	a := &acts{B: B, N: N, hostLoss: make([]float32, N), hostTargets: make([]int32, N)}
	var err error
	f := func(n int) kernels.Buffer {
		if err != nil {
			return nil
		}
		var b kernels.Buffer
		b, err = m.d.Alloc(kernels.Float32, n)
		return b
	}
	i := func(n int) kernels.Buffer {
		if err != nil {
			return nil
		}
		var b kernels.Buffer
		b, err = m.d.Alloc(kernels.Int32, n)
		return b
	}
	a.ids, a.targets = i(N), i(N)
	a.xs = make([]kernels.Buffer, L+1)
	for l := range a.xs {
		a.xs[l] = f(N * C)
	}
	a.blocks = make([]blockActs, L)
	for l := range a.blocks {
		b := &a.blocks[l]
		b.h1, b.mean1, b.rstd1, b.qkv = f(N*C), f(N), f(N), f(N*3*C)
		b.att, b.probs, b.x1 = f(N*C), f(B*H*T*T), f(N*C)
		b.h2, b.mean2, b.rstd2, b.fc, b.gl = f(N*C), f(N), f(N), f(N*4*C), f(N*4*C)
	}
	a.hf, a.meanf, a.rstdf, a.logits, a.losses = f(N*C), f(N), f(N), f(N*V), f(N)
	a.dx, a.dh, a.dqkv, a.datt = f(N*C), f(N*C), f(N*3*C), f(N*C)
	a.dfc, a.dg, a.dlogits = f(N*4*C), f(N*4*C), f(N*V)
	if err != nil {
		return nil, fmt.Errorf("allocate activations for batch %d: %w", B, err)
	}
	m.acts[B] = a
	return a, nil
}

func (m *Model) mm(c, a, b, bias kernels.Buffer, M, N, K int, ta, tb bool, beta float32) error {
	return m.d.MatMul(c, a, b, bias, kernels.MatMulArgs{M: M, N: N, K: K, TransA: ta, TransB: tb, Alpha: 1, Beta: beta})
}

// setBatch uploads B x T token ids and targets (negative targets are
// ignored by the loss).
func (m *Model) setBatch(a *acts, ids, targets []int32) error {
	if err := kernels.WriteInt32(m.d, a.ids, ids); err != nil {
		return fmt.Errorf("upload ids: %w", err)
	}
	copy(a.hostTargets, targets)
	if err := kernels.WriteInt32(m.d, a.targets, targets); err != nil {
		return fmt.Errorf("upload targets: %w", err)
	}
	return nil
}

// forwardLogits runs the decoder up to the logits.
func (m *Model) forwardLogits(a *acts) error {
	c := m.Cfg
	C, T, L := c.Width, c.Context, c.Layers
	B, N := a.B, a.N
	d, p := m.d, m.p
	shape := kernels.AttnShape{B: B, T: T, C: C, Heads: c.Heads}
	if err := d.Embedding(a.xs[0], a.ids, p.wte, p.wpe, B, T, C); err != nil {
		return fmt.Errorf("embedding: %w", err)
	}
	for l := range L {
		w, s, x := p.blocks[l], a.blocks[l], a.xs[l]
		lp, _, lu, _, err := m.loraLayers(a, l)
		if err != nil {
			return err
		}
		err = firstErr(
			d.LayerNorm(s.h1, s.mean1, s.rstd1, x, w.ln1w, w.ln1b, N, C, 1e-5),
			m.mm(s.qkv, s.h1, w.wqkv, w.bqkv, N, 3*C, C, false, true, 0),
			m.loraForward(lp[loraQKV], s.qkv, s.h1, lu[loraQKV], N),
			d.Attention(s.att, s.probs, s.qkv, shape),
			m.mm(s.x1, s.att, w.wo, w.bo, N, C, C, false, true, 0),
			m.loraForward(lp[loraO], s.x1, s.att, lu[loraO], N),
			d.Add(s.x1, s.x1, x),
			d.LayerNorm(s.h2, s.mean2, s.rstd2, s.x1, w.ln2w, w.ln2b, N, C, 1e-5),
			m.mm(s.fc, s.h2, w.wfc, w.bfc, N, 4*C, C, false, true, 0),
			m.loraForward(lp[loraFC], s.fc, s.h2, lu[loraFC], N),
			d.GELU(s.gl, s.fc),
			m.mm(a.xs[l+1], s.gl, w.wp, w.bp, N, C, 4*C, false, true, 0),
			m.loraForward(lp[loraProj], a.xs[l+1], s.gl, lu[loraProj], N),
			d.Add(a.xs[l+1], a.xs[l+1], s.x1),
		)
		if err != nil {
			return fmt.Errorf("block %d forward: %w", l, err)
		}
	}
	err := firstErr(
		d.LayerNorm(a.hf, a.meanf, a.rstdf, a.xs[L], p.lnfw, p.lnfb, N, C, 1e-5),
		m.mm(a.logits, a.hf, p.wte, nil, N, c.Vocab, C, false, true, 0),
	)
	if err != nil {
		return fmt.Errorf("output forward: %w", err)
	}
	return nil
}

// forward returns the mean loss over the targets that are not ignored;
// withGrad also seeds dlogits (zeroed first) for backward.
func (m *Model) forward(a *acts, withGrad bool) (float64, error) {
	if err := m.forwardLogits(a); err != nil {
		return 0, err
	}
	count := 0
	for _, t := range a.hostTargets {
		if t >= 0 {
			count++
		}
	}
	if count == 0 {
		return 0, fmt.Errorf("%w: batch has no targets", ErrConfig)
	}
	var dl kernels.Buffer
	if withGrad {
		if err := m.d.Fill(a.dlogits, 0); err != nil {
			return 0, err
		}
		dl = a.dlogits
	}
	if err := m.d.CrossEntropy(a.losses, dl, a.logits, a.targets, a.N, m.Cfg.Vocab, 1/float32(count)); err != nil {
		return 0, fmt.Errorf("cross-entropy: %w", err)
	}
	if err := kernels.ReadFloat32(m.d, a.hostLoss, a.losses); err != nil {
		return 0, err
	}
	var sum float64
	for _, v := range a.hostLoss {
		sum += float64(v)
	}
	return sum / float64(count), nil
}

// backward adds every parameter's gradient into m.grads (zero them first);
// with an adapter attached, only the adapter's, into its grads (the base's
// weight gradients are skipped; its layernorms still add theirs, unused).
// done(l) is called as soon as block l's gradients (and, for the last block,
// the final layernorm's) are final, from the last block down; done(-1) once
// the embeddings' are.
func (m *Model) backward(a *acts, done func(block int) error) error {
	c := m.Cfg
	C, T, L, V := c.Width, c.Context, c.Layers, c.Vocab
	B, N := a.B, a.N
	if m.grads == nil {
		return errForwardOnly
	}
	d, p, g := m.d, m.p, m.g
	shape := kernels.AttnShape{B: B, T: T, C: C, Heads: c.Heads}
	// Output layer (tied to wte) and the final layernorm; dx is then the
	// gradient of the residual stream.
	err := firstErr(
		m.mm(a.dh, a.dlogits, p.wte, nil, N, C, V, false, false, 0),
		m.weightGrad(g.wte, a.dlogits, a.hf, V, C, N),
		d.Fill(a.dx, 0),
		d.LayerNormBackward(a.dx, g.lnfw, g.lnfb, a.dh, a.xs[L], p.lnfw, a.meanf, a.rstdf, N, C),
	)
	if err != nil {
		return fmt.Errorf("output backward: %w", err)
	}
	for l := L - 1; l >= 0; l-- {
		w, gw, s := p.blocks[l], g.blocks[l], a.blocks[l]
		lp, lg, lu, ldu, err := m.loraLayers(a, l)
		if err != nil {
			return err
		}
		err = firstErr(
			// MLP: xs[l+1] = x1 + gl·wpᵀ + bp; dx flows to x1 unchanged.
			m.mm(a.dg, a.dx, w.wp, nil, N, 4*C, C, false, false, 0),
			m.loraBackward(lp[loraProj], lg[loraProj], a.dg, a.dx, s.gl, lu[loraProj], ldu, N),
			m.weightGrad(gw.wp, a.dx, s.gl, C, 4*C, N),
			m.biasGrad(gw.bp, a.dx, N, C),
			d.Fill(a.dfc, 0),
			d.GELUBackward(a.dfc, s.fc, a.dg),
			m.mm(a.dh, a.dfc, w.wfc, nil, N, C, 4*C, false, false, 0),
			m.loraBackward(lp[loraFC], lg[loraFC], a.dh, a.dfc, s.h2, lu[loraFC], ldu, N),
			m.weightGrad(gw.wfc, a.dfc, s.h2, 4*C, C, N),
			m.biasGrad(gw.bfc, a.dfc, N, 4*C),
			d.LayerNormBackward(a.dx, gw.ln2w, gw.ln2b, a.dh, s.x1, w.ln2w, s.mean2, s.rstd2, N, C),
			// Attention: x1 = x + att·woᵀ + bo.
			m.mm(a.datt, a.dx, w.wo, nil, N, C, C, false, false, 0),
			m.loraBackward(lp[loraO], lg[loraO], a.datt, a.dx, s.att, lu[loraO], ldu, N),
			m.weightGrad(gw.wo, a.dx, s.att, C, C, N),
			m.biasGrad(gw.bo, a.dx, N, C),
			d.Fill(a.dqkv, 0),
			d.AttentionBackward(a.dqkv, a.datt, s.qkv, s.probs, shape),
			m.mm(a.dh, a.dqkv, w.wqkv, nil, N, C, 3*C, false, false, 0),
			m.loraBackward(lp[loraQKV], lg[loraQKV], a.dh, a.dqkv, s.h1, lu[loraQKV], ldu, N),
			m.weightGrad(gw.wqkv, a.dqkv, s.h1, 3*C, C, N),
			m.biasGrad(gw.bqkv, a.dqkv, N, 3*C),
			d.LayerNormBackward(a.dx, gw.ln1w, gw.ln1b, a.dh, a.xs[l], w.ln1w, s.mean1, s.rstd1, N, C),
		)
		if err != nil {
			return fmt.Errorf("block %d backward: %w", l, err)
		}
		if done != nil {
			if err := done(l); err != nil {
				return err
			}
		}
	}
	if m.lora == nil {
		if err := d.EmbeddingBackward(g.wte, g.wpe, a.dx, a.ids, B, T, C); err != nil {
			return fmt.Errorf("embedding backward: %w", err)
		}
	}
	if done != nil {
		return done(-1)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
