package train

import (
	"fmt"

	"github.com/ark-sched/ark/kernels"
)

// prefillBufs are the activations of a prefill pass, sized for up to rows
// prompt tokens and seqs prompts; they grow (by doubling) and are reused.
type prefillBufs struct {
	rows, seqs                      int
	ids                             kernels.Buffer
	xa, xb, h, mean, rstd, qkv, att kernels.Buffer
	x1, fc, gl, probs               kernels.Buffer
	lmean, lrstd, lh, logits        kernels.Buffer // one row per prompt: its last token
	hostIDs                         []int32
}

// Prefill puts prompt into s's cache (replacing what it held) and returns
// the logits after its last token (V values, valid until the next call).
// A prompt longer than the context keeps its last Context tokens.
func (d *Decoder) Prefill(s *Seq, prompt []int32) ([]float32, error) {
	return d.PrefillBatch([]*Seq{s}, [][]int32{prompt})
}

// PrefillBatch prefills seqs[i] with prompts[i] for every i in one pass and
// returns the logits after each prompt's last token: len(seqs) x V, valid
// until the next call. Only the prompts' own positions are computed (not
// the whole context): the tokens of all prompts are stacked as the rows of
// each projection, so they share every weight read as a Step's rows do,
// and attention is causal within each prompt (every prompt starts at
// position 0). A sequence appears at most once.
func (d *Decoder) PrefillBatch(seqs []*Seq, prompts [][]int32) ([]float32, error) {
	m, c := d.m, d.m.Cfg
	T, C, V, H, L := c.Context, c.Width, c.Vocab, c.Heads, c.Layers
	hs, P := C/H, len(seqs)
	if P == 0 || len(prompts) != P {
		return nil, fmt.Errorf("%w: %d sequences, %d prompts", ErrDecode, P, len(prompts))
	}
	ps := make([][]int32, P)
	N := 0
	for i, pr := range prompts {
		if len(pr) == 0 {
			return nil, fmt.Errorf("%w: empty prompt %d", ErrDecode, i)
		}
		if len(pr) > T {
			pr = pr[len(pr)-T:]
		}
		for j, t := range pr {
			if t < 0 || int(t) >= V {
				return nil, fmt.Errorf("%w: token %d at %d of prompt %d outside vocabulary of %d", ErrDecode, t, j, i, V)
			}
		}
		ps[i] = pr
		N += len(pr)
	}
	pw, err := d.packed()
	if err != nil {
		return nil, err
	}
	b, err := d.prefillFor(N, P)
	if err != nil {
		return nil, err
	}
	tokSlot := make([]int, 0, N) // each token's sequence's adapter slot
	segs := make([]int, 0, P+1)  // each sequence's first row, then N
	for i, pr := range ps {
		segs = append(segs, len(tokSlot))
		for range pr {
			tokSlot = append(tokSlot, seqs[i].Slot)
		}
	}
	segs = append(segs, N)
	adapted, err := d.loraRows(N, func(i int) int { return tokSlot[i] })
	if err != nil {
		return nil, err
	}
	ids := b.hostIDs[:0]
	for _, pr := range ps {
		ids = append(ids, pr...)
	}
	dev, p := m.d, m.p
	host, _ := dev.(kernels.HostAccess)
	k := calls{d: dev}
	lora := func(l, t int, y, x kernels.Buffer, n int, segs []int) {
		if adapted {
			d.applyLoRA(&k, l, t, y, x, n, segs)
		}
	}
	k.do(kernels.WriteInt32(dev, k.sl(b.ids, 0, N), ids))
	// rows(buf, width) is the first N rows of a buffer sized for b.rows.
	rows := func(buf kernels.Buffer, width int) kernels.Buffer { return k.sl(buf, 0, N*width) }
	xa, xb, h, mean, rstd := rows(b.xa, C), rows(b.xb, C), rows(b.h, C), rows(b.mean, 1), rows(b.rstd, 1)
	qkv, att := rows(b.qkv, 3*C), rows(b.att, C)
	off := 0
	for _, pr := range ps { // each prompt's tokens at positions 0..n-1
		n := len(pr)
		k.do(dev.Embedding(k.sl(xa, off*C, n*C), k.sl(b.ids, off, n), p.wte, k.sl(p.wpe, 0, n*C), 1, n, C))
		off += n
	}
	if k.err != nil {
		return nil, fmt.Errorf("prefill embedding: %w", k.err)
	}
	x, xn := xa, xb
	for l := range L {
		w, pb := p.blocks[l], pw.block(l)
		k.do(dev.LayerNorm(h, mean, rstd, x, w.ln1w, w.ln1b, N, C, 1e-5))
		d.mmW(&k, qkv, h, w.wqkv, pb.qkv, w.bqkv, kernels.MatMulArgs{M: N, N: 3 * C, K: C, TransB: true, Alpha: 1})
		lora(l, loraQKV, qkv, h, N, segs)
		off := 0
		for i, pr := range ps {
			n, s := len(pr), seqs[i]
			k.do(dev.Attention(k.sl(att, off*C, n*C), k.sl(b.probs, 0, H*n*n), k.sl(qkv, off*3*C, n*3*C),
				kernels.AttnShape{B: 1, T: n, C: C, Heads: H}))
			if host != nil { // see hostCacheKV
				k.do(hostCacheKV(host, s, l, qkv, off, n, T, C, H))
				off += n
				continue
			}
			if adapted { // keys and values carry adapter updates: copy them out of qkv
				for t := range n {
					for hd := range H {
						k.do(dev.Copy(k.sl(s.k[l], (hd*T+t)*hs, hs), k.sl(qkv, (off+t)*3*C+C+hd*hs, hs)))
						k.do(dev.Copy(k.sl(s.v[l], (hd*T+t)*hs, hs), k.sl(qkv, (off+t)*3*C+2*C+hd*hs, hs)))
					}
				}
				off += n
				continue
			}
			// Each head's keys and values straight from the layernormed
			// input and that head's rows of wqkv: one MatMul per head
			// writes the contiguous cache layout that a per-position copy
			// out of qkv would take n of.
			hp := k.sl(h, off*C, n*C)
			for hd := range H {
				for part, cache := range []kernels.Buffer{s.k[l], s.v[l]} {
					row := (part+1)*C + hd*hs // first row of this head's k or v in wqkv
					k.mm(k.sl(cache, hd*T*hs, n*hs), hp, k.sl(w.wqkv, row*C, hs*C), k.sl(w.bqkv, row, hs),
						kernels.MatMulArgs{M: n, N: hs, K: C, TransB: true, Alpha: 1})
				}
			}
			off += n
		}
		// The rest of the block is row by row. Past the last block's
		// attention (its keys and values are cached above) only each
		// prompt's last position is needed, for the logits: that block
		// goes on with those P rows, moved to the front of att and x, not
		// all N: three quarters of that block's multiplications (its
		// output projection and MLP), 6% of a prefill's on 12 layers.
		n, rsegs := N, segs
		if l == L-1 {
			keepLast(&k, att, ps, C)
			keepLast(&k, x, ps, C)
			n, rsegs = P, nil
			if adapted {
				if adapted, err = d.loraRows(P, func(i int) int { return seqs[i].Slot }); err != nil {
					return nil, err
				}
			}
		}
		at, xr, x1, hr := k.sl(att, 0, n*C), k.sl(x, 0, n*C), k.sl(b.x1, 0, n*C), k.sl(h, 0, n*C)
		fc, gl, xo := k.sl(b.fc, 0, n*4*C), k.sl(b.gl, 0, n*4*C), k.sl(xn, 0, n*C)
		d.mmW(&k, x1, at, w.wo, pb.o, w.bo, kernels.MatMulArgs{M: n, N: C, K: C, TransB: true, Alpha: 1})
		lora(l, loraO, x1, at, n, rsegs)
		k.do(dev.Add(x1, x1, xr))
		k.do(dev.LayerNorm(hr, k.sl(mean, 0, n), k.sl(rstd, 0, n), x1, w.ln2w, w.ln2b, n, C, 1e-5))
		d.mmW(&k, fc, hr, w.wfc, pb.fc, w.bfc, kernels.MatMulArgs{M: n, N: 4 * C, K: C, TransB: true, Alpha: 1})
		lora(l, loraFC, fc, hr, n, rsegs)
		k.do(dev.GELU(gl, fc))
		d.mmW(&k, xo, gl, w.wp, pb.proj, w.bp, kernels.MatMulArgs{M: n, N: C, K: 4 * C, TransB: true, Alpha: 1})
		lora(l, loraProj, xo, gl, n, rsegs)
		k.do(dev.Add(xo, xo, x1))
		if k.err != nil {
			return nil, fmt.Errorf("prefill block %d: %w", l, k.err)
		}
		x, xn = xn, x
	}
	// x's first P rows are each prompt's last position (see above).
	last := k.sl(x, 0, P*C)
	lh, logits := k.sl(b.lh, 0, P*C), k.sl(b.logits, 0, P*V)
	k.do(dev.LayerNorm(lh, k.sl(b.lmean, 0, P), k.sl(b.lrstd, 0, P), last, p.lnfw, p.lnfb, P, C, 1e-5))
	d.mmW(&k, logits, lh, p.wte, pw.logitsW(), nil, kernels.MatMulArgs{M: P, N: V, K: C, TransB: true, Alpha: 1})
	if k.err != nil {
		return nil, fmt.Errorf("prefill output: %w", k.err)
	}
	d.host = growFloats(d.host, P*V)
	if err := kernels.ReadFloat32(dev, d.host[:P*V], logits); err != nil {
		return nil, err
	}
	for i, s := range seqs {
		s.toks = append(s.toks[:0], ps[i]...) // ps[i] may alias s.toks: append copies forward
	}
	return d.host[:P*V], nil
}

// keepLast moves each prompt's last row of buf (rows of width w, the
// prompts of ps stacked) to row i for prompt i. Row i's source is at or
// after row i and those of later prompts after it, so moving them in order
// overwrites none before it is read; a row already in place is not copied.
func keepLast(k *calls, buf kernels.Buffer, ps [][]int32, w int) {
	off := 0
	for i, pr := range ps {
		off += len(pr)
		if src := off - 1; src != i {
			k.do(k.d.Copy(k.sl(buf, i*w, w), k.sl(buf, src*w, w)))
		}
	}
}

// hostCacheKV copies the keys and values of one prompt (its n rows of qkv,
// from row off) into s's layer-l cache, for a device whose memory is the
// host's. The device path's per-head MatMuls each pack their slice of wqkv
// again: with 32 prompts sliding their windows together, that packing was
// most of a prefill, where here it is plain copies of numbers qkv already
// holds (as Step's device path copies them).
func hostCacheKV(ha kernels.HostAccess, s *Seq, l int, qkvBuf kernels.Buffer, off, n, T, C, H int) error {
	hs := C / H
	qkv, err := ha.Float32s(qkvBuf)
	if err != nil {
		return err
	}
	kc, err := ha.Float32s(s.k[l])
	if err != nil {
		return err
	}
	vc, err := ha.Float32s(s.v[l])
	if err != nil {
		return err
	}
	for t := range n {
		row := qkv[(off+t)*3*C : (off+t+1)*3*C]
		for h := range H {
			at := (h*T + t) * hs
			copy(kc[at:at+hs], row[C+h*hs:])
			copy(vc[at:at+hs], row[2*C+h*hs:])
		}
	}
	return nil
}

// prefillFor returns prefill buffers for at least rows tokens of seqs
// prompts, reallocating (doubled, so a growing load settles after a few)
// when the current ones are too small.
func (d *Decoder) prefillFor(rows, seqs int) (*prefillBufs, error) {
	if b := d.pre; b != nil && b.rows >= rows && b.seqs >= seqs {
		return b, nil
	}
	c := d.m.Cfg
	C, H, V, T := c.Width, c.Heads, c.Vocab, c.Context
	R, S := max(rows, 2*T), max(seqs, 4)
	if b := d.pre; b != nil {
		R, S = max(R, 2*b.rows), max(S, 2*b.seqs)
		if err := d.freePrefill(); err != nil {
			return nil, err
		}
	}
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
	b := &prefillBufs{rows: R, seqs: S, hostIDs: make([]int32, 0, R)}
	b.ids = alloc(kernels.Int32, R)
	b.xa, b.xb, b.h, b.mean, b.rstd = f(R*C), f(R*C), f(R*C), f(R), f(R)
	b.qkv, b.att, b.x1, b.fc, b.gl = f(R*3*C), f(R*C), f(R*C), f(R*4*C), f(R*4*C)
	b.probs = f(H * T * T)
	b.lmean, b.lrstd, b.lh, b.logits = f(S), f(S), f(S*C), f(S*V)
	d.pre = b
	if err != nil {
		_ = d.freePrefill() // what was allocated; the allocation error is the one to report
		return nil, fmt.Errorf("allocate prefill buffers for %d tokens: %w", R, err)
	}
	return b, nil
}

// freePrefill gives the prefill buffers back to the device.
func (d *Decoder) freePrefill() error {
	b := d.pre
	d.pre = nil
	var first error
	for _, buf := range []kernels.Buffer{b.ids, b.xa, b.xb, b.h, b.mean, b.rstd, b.qkv, b.att,
		b.x1, b.fc, b.gl, b.probs, b.lmean, b.lrstd, b.lh, b.logits} {
		if buf != nil {
			if err := d.m.d.Free(buf); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}
