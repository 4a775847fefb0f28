package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ark-sched/ark/kernels"
)

// ErrDecode: a decode call's arguments do not fit the model (token outside
// the vocabulary, empty prompt, rows and tokens of different lengths).
var ErrDecode = errors.New("train: invalid decode input")

// maskScore fills the attention scores a row must not see: exp underflows
// to exactly 0 after the softmax's max subtraction.
const maskScore = -1e30

// Seq is one sequence's decode state: its keys and values per layer, laid
// out Heads x Context x headSize so that each head's cache is one
// contiguous matrix (MatMul has no strides), and the tokens they hold.
// A Seq belongs to the Decoder that made it; give it back with Release.
type Seq struct {
	k, v []kernels.Buffer // per layer
	toks []int32          // the tokens in the cache, oldest first
	// Slot is the adapter slot the sequence decodes with (see
	// SetAdapterSlots), -1 for the base alone; NewSeq sets -1.
	Slot int
}

// Len is the number of tokens in the cache (the position of the next one).
func (s *Seq) Len() int { return len(s.toks) }

// Decoder runs a Model token by token with a KV cache per sequence: Prefill
// (or PrefillBatch, for several) fills a sequence's cache from its prompt,
// computing the prompt's positions only, and Step decodes one token for a
// batch of sequences at once, each at its own position. The projections (QKV, output, MLP, logits) of a step are
// one [B,C]x[C,N] MatMul per layer for the whole batch, so concurrent
// sequences share each weight read; attention is per row over that row's
// cache. Sequences may join and leave between steps. Like the Model, a
// Decoder is used from one goroutine at a time.
//
// The model has learned positions for Context tokens only. A sequence
// whose cache is full when it is stepped keeps its last Context/2 tokens:
// they are prefilled again at positions 0.., then decoding goes on (a
// sliding window paid for once every Context/2 tokens; the sequences of one
// step that fill together are prefilled together).
type Decoder struct {
	m      *Model
	free   []*Seq
	steps  map[int]*stepBufs // by batch size
	pre    *prefillBufs      // see PrefillBatch
	host   []float32         // logits read back, B x V
	lora   *decodeLoRA       // adapter slots; nil: the base alone
	pw     *packedWeights    // see packed; nil until the first use
	noPack bool              // the device has no MatMulPacker
	bf16   bool              // pack the weights in bfloat16 (SetWeightsBF16)
}

// stepBufs are one batch size's activations for a decode step; the
// residual stream ping-pongs between xa and xb.
type stepBufs struct {
	ids, targets                      kernels.Buffer
	xa, xb, h, mean, rstd, qkv, att   kernels.Buffer
	x1, fc, gl, scores, probs, losses kernels.Buffer
	logits                            kernels.Buffer
	hostIDs                           []int32
	// qRows[i] and attRows[i] are row i's query (in qkv) and attention
	// output: hostAttention's views, made once per batch size.
	qRows, attRows []kernels.Buffer
}

// NewDecoder returns a decoder over m's parameters. On a device that packs
// weights once (kernels.MatMulPacker) the decoder keeps packed copies made
// at its first Step or Prefill: train the model before decoding it.
func (m *Model) NewDecoder() *Decoder {
	return &Decoder{m: m, steps: map[int]*stepBufs{}}
}

// Config is the decoded model's shape.
func (d *Decoder) Config() Config { return d.m.Cfg }

// NewSeq returns an empty sequence, reusing a released one when it can.
func (d *Decoder) NewSeq() (*Seq, error) {
	if n := len(d.free); n > 0 {
		s := d.free[n-1]
		d.free = d.free[:n-1]
		s.toks = s.toks[:0]
		s.Slot = -1
		return s, nil
	}
	c := d.m.Cfg
	s := &Seq{k: make([]kernels.Buffer, c.Layers), v: make([]kernels.Buffer, c.Layers), Slot: -1}
	for l := range c.Layers {
		var err error
		if s.k[l], err = d.m.d.Alloc(kernels.Float32, c.Context*c.Width); err != nil {
			return nil, fmt.Errorf("allocate kv cache: %w", err)
		}
		if s.v[l], err = d.m.d.Alloc(kernels.Float32, c.Context*c.Width); err != nil {
			return nil, fmt.Errorf("allocate kv cache: %w", err)
		}
	}
	return s, nil
}

// Release gives s back for reuse; s must not be used after.
func (d *Decoder) Release(s *Seq) {
	if s != nil {
		d.free = append(d.free, s)
	}
}

// calls threads the first error through a run of device calls, so the
// per-row loops below read as the math.
type calls struct {
	d   kernels.Device
	err error
}

func (c *calls) do(err error) {
	if c.err == nil {
		c.err = err
	}
}

func (c *calls) sl(b kernels.Buffer, off, n int) kernels.Buffer {
	if c.err != nil {
		return nil
	}
	s, err := c.d.Slice(b, off, n)
	c.do(err)
	return s
}

func (c *calls) mm(out, a, b, bias kernels.Buffer, p kernels.MatMulArgs) {
	if c.err == nil {
		c.do(c.d.MatMul(out, a, b, bias, p))
	}
}

// Step feeds toks[i] to rows[i] for every row at once (each at its own
// position, appended to its own cache) and returns the logits for each
// row's next token: len(rows) x V, valid until the next call. A sequence
// appears at most once in rows.
func (d *Decoder) Step(rows []*Seq, toks []int32) ([]float32, error) {
	m, c := d.m, d.m.Cfg
	T, C, V, H, L := c.Context, c.Width, c.Vocab, c.Heads, c.Layers
	hs, B := C/H, len(rows)
	if B == 0 || len(toks) != B {
		return nil, fmt.Errorf("%w: %d rows, %d tokens", ErrDecode, B, len(toks))
	}
	for i, t := range toks {
		if t < 0 || int(t) >= V {
			return nil, fmt.Errorf("%w: token %d of row %d outside vocabulary of %d", ErrDecode, t, i, V)
		}
	}
	var full []*Seq
	var kept [][]int32
	for _, s := range rows {
		if s.Len() == 0 {
			return nil, fmt.Errorf("%w: step of a sequence that was not prefilled", ErrDecode)
		}
		if s.Len() == T { // full: slide the window (see Decoder)
			full, kept = append(full, s), append(kept, s.toks[T-T/2:])
		}
	}
	if len(full) > 0 { // all at once: rows that filled together share the prefill's matmuls
		if _, err := d.PrefillBatch(full, kept); err != nil {
			return nil, err
		}
	}
	b, err := d.bufsFor(B)
	if err != nil {
		return nil, err
	}
	k := calls{d: m.d}
	// After the window slides above: its prefill sets up its own rows.
	adapted, err := d.loraRows(B, func(i int) int { return rows[i].Slot })
	if err != nil {
		return nil, err
	}
	lora := func(l, t int, y, x kernels.Buffer) {
		if adapted {
			d.applyLoRA(&k, l, t, y, x, B, nil)
		}
	}
	copy(b.hostIDs, toks)
	if err := kernels.WriteInt32(m.d, b.ids, b.hostIDs); err != nil {
		return nil, fmt.Errorf("upload ids: %w", err)
	}
	pw, err := d.packed()
	if err != nil {
		return nil, err
	}
	dev, p := m.d, m.p
	host, _ := dev.(kernels.HostAccess)
	cached, _ := dev.(kernels.CachedAttention)
	if cached == nil {
		host = nil // the device path below
	}
	for i, s := range rows { // token plus the row's own position
		k.do(dev.Embedding(k.sl(b.xa, i*C, C), k.sl(b.ids, i, 1), p.wte, k.sl(p.wpe, s.Len()*C, C), 1, 1, C))
	}
	W := T + 1 // score columns: every position, then one always masked (see below)
	scale := float32(1 / math.Sqrt(float64(hs)))
	x, xn := b.xa, b.xb
	for l := range L {
		w, pb := p.blocks[l], pw.block(l)
		k.do(dev.LayerNorm(b.h, b.mean, b.rstd, x, w.ln1w, w.ln1b, B, C, 1e-5))
		d.mmW(&k, b.qkv, b.h, w.wqkv, pb.qkv, w.bqkv, kernels.MatMulArgs{M: B, N: 3 * C, K: C, TransB: true, Alpha: 1})
		lora(l, loraQKV, b.qkv, b.h)
		for i, s := range rows { // append this token's k and v to the row's cache
			if host != nil {
				break // hostAttention appends them
			}
			pos := s.Len()
			for h := range H {
				k.do(dev.Copy(k.sl(s.k[l], (h*T+pos)*hs, hs), k.sl(b.qkv, i*3*C+C+h*hs, hs)))
				k.do(dev.Copy(k.sl(s.v[l], (h*T+pos)*hs, hs), k.sl(b.qkv, i*3*C+2*C+h*hs, hs)))
			}
		}
		if host != nil { // see hostAttention
			k.do(d.hostAttention(host, cached, rows, l, b))
		} else {
			// Scores of each (row, head) over that row's n keys, the rest
			// masked. The Device has no softmax of its own; CrossEntropy's
			// gradient is softmax - onehot(target), so the target is the last
			// column, which no row uses: every other column is the softmax.
			k.do(dev.Fill(b.scores, maskScore))
			k.do(dev.Fill(b.probs, 0))
			for i, s := range rows {
				n := s.Len() + 1
				for h := range H {
					k.mm(k.sl(b.scores, (i*H+h)*W, n), k.sl(b.qkv, i*3*C+h*hs, hs), k.sl(s.k[l], h*T*hs, n*hs), nil,
						kernels.MatMulArgs{M: 1, N: n, K: hs, TransB: true, Alpha: scale})
				}
			}
			k.do(dev.CrossEntropy(b.losses, b.probs, b.scores, b.targets, B*H, W, 1))
			for i, s := range rows {
				n := s.Len() + 1
				for h := range H {
					k.mm(k.sl(b.att, i*C+h*hs, hs), k.sl(b.probs, (i*H+h)*W, n), k.sl(s.v[l], h*T*hs, n*hs), nil,
						kernels.MatMulArgs{M: 1, N: hs, K: n, Alpha: 1})
				}
			}
		}
		d.mmW(&k, b.x1, b.att, w.wo, pb.o, w.bo, kernels.MatMulArgs{M: B, N: C, K: C, TransB: true, Alpha: 1})
		lora(l, loraO, b.x1, b.att)
		k.do(dev.Add(b.x1, b.x1, x))
		k.do(dev.LayerNorm(b.h, b.mean, b.rstd, b.x1, w.ln2w, w.ln2b, B, C, 1e-5))
		d.mmW(&k, b.fc, b.h, w.wfc, pb.fc, w.bfc, kernels.MatMulArgs{M: B, N: 4 * C, K: C, TransB: true, Alpha: 1})
		lora(l, loraFC, b.fc, b.h)
		k.do(dev.GELU(b.gl, b.fc))
		d.mmW(&k, xn, b.gl, w.wp, pb.proj, w.bp, kernels.MatMulArgs{M: B, N: C, K: 4 * C, TransB: true, Alpha: 1})
		lora(l, loraProj, xn, b.gl)
		k.do(dev.Add(xn, xn, b.x1))
		if k.err != nil {
			return nil, fmt.Errorf("decode block %d: %w", l, k.err)
		}
		x, xn = xn, x
	}
	k.do(dev.LayerNorm(b.h, b.mean, b.rstd, x, p.lnfw, p.lnfb, B, C, 1e-5))
	d.mmW(&k, b.logits, b.h, p.wte, pw.logitsW(), nil, kernels.MatMulArgs{M: B, N: V, K: C, TransB: true, Alpha: 1})
	if k.err != nil {
		return nil, fmt.Errorf("decode output: %w", k.err)
	}
	d.host = growFloats(d.host, B*V)
	if err := kernels.ReadFloat32(dev, d.host[:B*V], b.logits); err != nil {
		return nil, err
	}
	for i, s := range rows {
		s.toks = append(s.toks, toks[i])
	}
	return d.host[:B*V], nil
}

func (d *Decoder) bufsFor(B int) (*stepBufs, error) {
	if b, ok := d.steps[B]; ok {
		return b, nil
	}
	c := d.m.Cfg
	C, H, V, W := c.Width, c.Heads, c.Vocab, c.Context+1
	var err error
	alloc := func(dt kernels.DType, n int) kernels.Buffer {
		if err != nil {
			return nil
		}
		var buf kernels.Buffer
		buf, err = d.m.d.Alloc(dt, n)
		return buf
	}
	f := func(n int) kernels.Buffer { return alloc(kernels.Float32, n) }
	b := &stepBufs{hostIDs: make([]int32, B)}
	b.ids, b.targets = alloc(kernels.Int32, B), alloc(kernels.Int32, B*H)
	b.xa, b.xb, b.h, b.mean, b.rstd = f(B*C), f(B*C), f(B*C), f(B), f(B)
	b.qkv, b.att, b.x1, b.fc, b.gl = f(B*3*C), f(B*C), f(B*C), f(B*4*C), f(B*4*C)
	b.scores, b.probs, b.losses, b.logits = f(B*H*W), f(B*H*W), f(B*H), f(B*V)
	b.qRows, b.attRows = make([]kernels.Buffer, B), make([]kernels.Buffer, B)
	for i := range B {
		if err == nil {
			b.qRows[i], err = d.m.d.Slice(b.qkv, i*3*C, C)
		}
		if err == nil {
			b.attRows[i], err = d.m.d.Slice(b.att, i*C, C)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("allocate decode buffers for batch %d: %w", B, err)
	}
	tg := make([]int32, B*H)
	for i := range tg {
		tg[i] = int32(W - 1) // the masked column: see Step
	}
	if err := kernels.WriteInt32(d.m.d, b.targets, tg); err != nil {
		return nil, err
	}
	d.steps[B] = b
	return b, nil
}

func growFloats(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// Sampler picks one sequence's tokens from its logits: greedy at
// temperature <= 0, else from softmax(logits/temperature) with its own
// generator, so a seeded request draws the same tokens whatever else
// shares its batch. Generate draws through one too, so both agree.
type Sampler struct {
	temperature float64
	rng         *rand.Rand
	probs       []float32 // sample's scratch
}

// NewSampler returns a sampler seeded by seed.
func NewSampler(temperature float64, seed uint64) *Sampler {
	return &Sampler{temperature: temperature, rng: rand.New(rand.NewPCG(seed, 0x67656e))}
}

// Next draws a token from one row of logits.
func (s *Sampler) Next(logits []float32) int32 {
	return sample(logits, s.temperature, s.rng, &s.probs)
}
