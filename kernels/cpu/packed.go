package cpu

import (
	"fmt"

	"github.com/ark-sched/ark/kernels"
)

// packedB is a B operand packed once (kernels.MatMulPacker): for each k
// block of kcBlock rows of op(B), its panels as gemmOp.packB lays them out
// for the micro-kernel mk, which the multiplications must then use.
type packedB struct {
	shape  kernels.MatMulArgs
	mk     microKernel
	blocks [][]float32
	// half holds the same panels in bfloat16 instead (PackBBF16; blocks
	// is then nil).
	half [][]uint16
}

func (p *packedB) Shape() kernels.MatMulArgs { return p.shape }

var _ kernels.MatMulPacker = (*Device)(nil)

// PackB packs b once for MatMulPacked.
func (d *Device) PackB(b kernels.Buffer, p kernels.MatMulArgs) (kernels.PackedB, error) {
	if err := kernels.CheckPackB(b, p); err != nil {
		return nil, err
	}
	s, err := d.f32("pack b", b)
	if err != nil {
		return nil, err
	}
	mk := kern
	o := gemmOp{b: s[0], n: p.N, k: p.K, transB: p.TransB, ldb: p.N}
	if p.TransB {
		o.ldb = p.K
	}
	pb := &packedB{shape: kernels.MatMulArgs{N: p.N, K: p.K, TransB: p.TransB}, mk: mk}
	panels := (p.N + mk.nr - 1) / mk.nr
	for pc := 0; pc < p.K; pc += kcBlock {
		kb := min(kcBlock, p.K-pc)
		blk := make([]float32, panels*kb*mk.nr)
		o.packB(blk, mk.nr, pc, kb, 0, panels)
		pb.blocks = append(pb.blocks, blk)
	}
	return pb, nil
}

// MatMulPacked is MatMul with a B that PackB packed.
func (d *Device) MatMulPacked(c, a kernels.Buffer, b kernels.PackedB, bias kernels.Buffer, p kernels.MatMulArgs) error {
	if err := kernels.CheckMatMulPacked(c, a, b, bias, p); err != nil {
		return err
	}
	pb, ok := b.(*packedB)
	if !ok {
		return fmt.Errorf("matmul packed: b packed by %T: %w", b, kernels.ErrForeignBuffer)
	}
	s, err := d.f32("matmul packed", c, a, bias)
	if err != nil {
		return err
	}
	o := gemmOp{c: s[0], a: s[1], bias: s[2], m: p.M, n: p.N, k: p.K,
		transA: p.TransA, transB: p.TransB, alpha: p.Alpha, beta: p.Beta, lda: p.K, ldc: p.N}
	if p.TransA {
		o.lda = p.M
	}
	d.matmulWith(&o, pb.mk, pb.blocks, pb.half)
	return nil
}

var _ kernels.BF16Packer = (*Device)(nil)

// PackBBF16 packs b as PackB does, each element rounded to bfloat16
// (nearest even): half the bytes for MatMulPacked to read, which the
// micro-kernel's rowHalf and fnHalf widen in registers (tileHalf).
func (d *Device) PackBBF16(b kernels.Buffer, p kernels.MatMulArgs) (kernels.PackedB, error) {
	pk, err := d.PackB(b, p)
	if err != nil {
		return nil, err
	}
	pb := pk.(*packedB)
	pb.half = make([][]uint16, len(pb.blocks))
	for i, blk := range pb.blocks {
		h := make([]uint16, len(blk))
		narrowBF16(h, blk)
		if pb.mk.halfInterleaved {
			halfInterleave(h)
		}
		pb.half[i] = h
	}
	pb.blocks = nil
	return pb, nil
}

// halfInterleave reorders each run of 32 bfloat16 values (one row of a
// 32-wide panel) so that VPUNPCKLWD and VPUNPCKHWD of the 64-byte row with
// zeros give its values 0-15 and 16-31 in order as float32: those
// instructions interleave words 0-3 (low) or 4-7 (high) of each 16-byte
// lane, so value j = 16h + 4l + i is stored at word 8l + 4h + i.
func halfInterleave(h []uint16) {
	var row [32]uint16
	for r := 0; r+32 <= len(h); r += 32 {
		copy(row[:], h[r:r+32])
		for j, v := range row {
			hi, e := j/16, j%16
			h[r+8*(e/4)+4*hi+e%4] = v
		}
	}
}
