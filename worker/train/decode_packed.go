package train

import (
	"errors"
	"fmt"

	"github.com/ark-sched/ark/kernels"
)

// packedWeights are a decoded model's projection weights packed once for
// a device whose MatMul packs B on every call (kernels.MatMulPacker, the
// CPU): at a decode step's few rows, packing the weights was as much CPU
// as multiplying by them (38% of gpt-tiny's serving CPU at 1 and at 32
// streams), and every step and every prefill packed all of them again.
type packedWeights struct {
	pk     kernels.MatMulPacker
	blocks []packedBlock
	logits kernels.PackedB // wte, for the logits
}

type packedBlock struct{ qkv, o, fc, proj kernels.PackedB }

// packed returns the decoder's packed weights, packing them at the first
// call (so a model trained after NewDecoder is decoded as trained); nil
// when the device has no MatMulPacker. The packs are copies: a decoder
// goes on decoding the weights as they were at its first step or prefill.
func (d *Decoder) packed() (*packedWeights, error) {
	if d.pw != nil || d.noPack {
		return d.pw, nil
	}
	pk, ok := d.m.d.(kernels.MatMulPacker)
	if !ok {
		d.noPack = true
		return nil, nil
	}
	c := d.m.Cfg
	C := c.Width
	pw := &packedWeights{pk: pk, blocks: make([]packedBlock, c.Layers)}
	packB := pk.PackB
	if d.bf16 {
		packB = pk.(kernels.BF16Packer).PackBBF16 // SetWeightsBF16 checked it
	}
	var err error
	pack := func(b kernels.Buffer, n, k int) kernels.PackedB {
		if err != nil {
			return nil
		}
		var p kernels.PackedB
		p, err = packB(b, kernels.MatMulArgs{N: n, K: k, TransB: true})
		return p
	}
	for l, w := range d.m.p.blocks {
		pw.blocks[l] = packedBlock{qkv: pack(w.wqkv, 3*C, C), o: pack(w.wo, C, C), fc: pack(w.wfc, 4*C, C), proj: pack(w.wp, C, 4*C)}
	}
	pw.logits = pack(d.m.p.wte, c.Vocab, C)
	if err != nil {
		return nil, fmt.Errorf("pack decoder weights: %w", err)
	}
	d.pw = pw
	return pw, nil
}

// ErrNoBF16Weights is SetWeightsBF16's error on a device that keeps
// decoded weights in float32 only.
var ErrNoBF16Weights = errors.New("the device keeps decoded weights in float32 only")

// SetWeightsBF16 makes the decoder pack its weights in bfloat16
// (kernels.BF16Packer): half the memory, and half the bytes every decode
// step streams, which is what bounds a step of few rows. Each weight is
// rounded to the nearest bfloat16 (8 bits of mantissa); activations,
// accumulation and the KV cache stay float32. Call it before the first
// Step or Prefill.
func (d *Decoder) SetWeightsBF16() error {
	if d.pw != nil {
		return errors.New("set bfloat16 weights: the weights are already packed (call before the first step)")
	}
	pk, ok := d.m.d.(kernels.MatMulPacker)
	if _, half := pk.(kernels.BF16Packer); !ok || !half {
		return fmt.Errorf("set bfloat16 weights on %T: %w", d.m.d, ErrNoBF16Weights)
	}
	d.bf16 = true
	return nil
}

// mmW is k.mm for a product by a weight w (B, transposed), through its
// packed copy pw when the decoder has one.
func (d *Decoder) mmW(k *calls, out, a, w kernels.Buffer, pw kernels.PackedB, bias kernels.Buffer, p kernels.MatMulArgs) {
	if d.pw == nil || pw == nil {
		k.mm(out, a, w, bias, p)
		return
	}
	if k.err == nil {
		k.do(d.pw.pk.MatMulPacked(out, a, pw, bias, p))
	}
}

// block returns layer l's packed weights (all nil without packing).
func (pw *packedWeights) block(l int) packedBlock {
	if pw == nil {
		return packedBlock{}
	}
	return pw.blocks[l]
}

func (pw *packedWeights) logitsW() kernels.PackedB {
	if pw == nil {
		return nil
	}
	return pw.logits
}
