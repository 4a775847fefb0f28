//go:build cgo

package cuda

import (
	"fmt"
	"math"

	"github.com/ark-sched/ark/kernels"
)

var row256 = [3]uint32{256, 1, 1}

// MatMul maps row-major C = op(A) op(B) onto column-major cuBLAS as
// C^T = op(B)^T op(A)^T: a row-major M x N matrix is a column-major N x M one,
// so SGEMM gets (B, A) swapped with m=N, n=M. The bias is added afterwards.
// Without cuBLAS the tiled kernel does everything.
func (d *Device) MatMul(c, a, b, bias kernels.Buffer, p kernels.MatMulArgs) error {
	if err := kernels.CheckMatMul(c, a, b, bias, p); err != nil {
		return err
	}
	ptr, err := d.ptrs("matmul", c, a, b, bias)
	if err != nil {
		return err
	}
	if d.blas == 0 {
		g := [3]uint32{uint32((p.N + 15) / 16), uint32((p.M + 15) / 16), 1}
		return d.run("matmul_tiled", g, [3]uint32{16, 16, 1}, ptr[0], ptr[1], ptr[2], ptr[3],
			i32(p.M), i32(p.N), i32(p.K), i32(b2i(p.TransA)), i32(b2i(p.TransB)), f32(p.Alpha), f32(p.Beta))
	}
	lda, ldb := p.K, p.N // leading dimensions of A and B as stored
	if p.TransA {
		lda = p.M
	}
	if p.TransB {
		ldb = p.K
	}
	if err := sgemm(d.ctx, d.blas, p.TransB, p.TransA, p.N, p.M, p.K, p.Alpha, ptr[2], ldb, ptr[1], lda,
		p.Beta, ptr[0], p.N); err != nil {
		return err
	}
	if bias != nil {
		return d.runN("add_bias_rows", p.M*p.N, ptr[0], ptr[3], i32(p.M), i32(p.N))
	}
	return nil
}

// ColSum adds column sums of in into out.
func (d *Device) ColSum(out, in kernels.Buffer, rows, cols int) error {
	if err := kernels.CheckColSum(out, in, rows, cols); err != nil {
		return err
	}
	ptr, err := d.ptrs("colsum", out, in)
	if err != nil {
		return err
	}
	return d.runN("colsum", cols, ptr[0], ptr[1], i32(rows), i32(cols))
}

// LayerNorm normalises rows.
func (d *Device) LayerNorm(out, mean, rstd, in, weight, bias kernels.Buffer, rows, cols int, eps float32) error {
	if err := kernels.CheckLayerNorm(out, mean, rstd, in, weight, bias, rows, cols); err != nil {
		return err
	}
	ptr, err := d.ptrs("layernorm", out, mean, rstd, in, weight, bias)
	if err != nil {
		return err
	}
	return d.run("layernorm_fwd", [3]uint32{uint32(rows), 1, 1}, row256,
		ptr[0], ptr[1], ptr[2], ptr[3], ptr[4], ptr[5], i32(rows), i32(cols), f32(eps))
}

// LayerNormBackward adds gradients of in, weight and bias.
func (d *Device) LayerNormBackward(din, dweight, dbias, dout, in, weight, mean, rstd kernels.Buffer, rows, cols int) error {
	if err := kernels.CheckLayerNormBackward(din, dweight, dbias, dout, in, weight, mean, rstd, rows, cols); err != nil {
		return err
	}
	ptr, err := d.ptrs("layernorm backward", din, dweight, dbias, dout, in, weight, mean, rstd)
	if err != nil {
		return err
	}
	if err := d.run("layernorm_bwd_din", [3]uint32{uint32(rows), 1, 1}, row256,
		ptr[0], ptr[3], ptr[4], ptr[5], ptr[6], ptr[7], i32(rows), i32(cols)); err != nil {
		return err
	}
	return d.runN("layernorm_bwd_dw", cols, ptr[1], ptr[2], ptr[3], ptr[4], ptr[6], ptr[7], i32(rows), i32(cols))
}

// GELU applies the tanh-approximated GELU.
func (d *Device) GELU(out, in kernels.Buffer) error {
	if err := kernels.CheckSame("gelu", out, in); err != nil {
		return err
	}
	ptr, err := d.ptrs("gelu", out, in)
	if err != nil {
		return err
	}
	return d.runN("gelu_fwd", out.Len(), ptr[0], ptr[1], i64(out.Len()))
}

// GELUBackward adds dout*gelu'(in) into din.
func (d *Device) GELUBackward(din, in, dout kernels.Buffer) error {
	if err := kernels.CheckSame("gelu backward", din, in, dout); err != nil {
		return err
	}
	ptr, err := d.ptrs("gelu backward", din, in, dout)
	if err != nil {
		return err
	}
	return d.runN("gelu_bwd", din.Len(), ptr[0], ptr[1], ptr[2], i64(din.Len()))
}

// Attention is causal softmax attention.
func (d *Device) Attention(out, probs, qkv kernels.Buffer, s kernels.AttnShape) error {
	if err := kernels.CheckAttention(out, probs, qkv, nil, s); err != nil {
		return err
	}
	ptr, err := d.ptrs("attention", out, probs, qkv)
	if err != nil {
		return err
	}
	return d.runN("attention_fwd", s.B*s.Heads*s.T, ptr[0], ptr[1], ptr[2], i32(s.B), i32(s.T), i32(s.C), i32(s.Heads))
}

// AttentionBackward adds the gradient of qkv into dqkv.
func (d *Device) AttentionBackward(dqkv, dout, qkv, probs kernels.Buffer, s kernels.AttnShape) error {
	if err := kernels.CheckAttention(dout, probs, qkv, dqkv, s); err != nil {
		return err
	}
	ptr, err := d.ptrs("attention backward", dqkv, dout, qkv, probs)
	if err != nil {
		return err
	}
	return d.runN("attention_bwd", s.B*s.Heads*s.T, ptr[0], ptr[1], ptr[2], ptr[3], i32(s.B), i32(s.T), i32(s.C), i32(s.Heads))
}

// Embedding writes token plus position embeddings. Token ids are not
// range-checked on the GPU (that would cost a copy to the host).
func (d *Device) Embedding(out, ids, wte, wpe kernels.Buffer, b, t, c int) error {
	if err := kernels.CheckEmbedding(out, ids, wte, wpe, b, t, c); err != nil {
		return err
	}
	ptr, err := d.ptrs("embedding", out, ids, wte, wpe)
	if err != nil {
		return err
	}
	return d.runN("embedding_fwd", b*t*c, ptr[0], ptr[1], ptr[2], ptr[3], i32(b), i32(t), i32(c))
}

// EmbeddingBackward adds dout into dwte rows and dwpe.
func (d *Device) EmbeddingBackward(dwte, dwpe, dout, ids kernels.Buffer, b, t, c int) error {
	if err := kernels.CheckEmbedding(dout, ids, dwte, dwpe, b, t, c); err != nil {
		return err
	}
	ptr, err := d.ptrs("embedding backward", dwte, dwpe, dout, ids)
	if err != nil {
		return err
	}
	return d.runN("embedding_bwd", b*t*c, ptr[0], ptr[1], ptr[2], ptr[3], i32(b), i32(t), i32(c))
}

// CrossEntropy writes losses and adds into dlogits.
func (d *Device) CrossEntropy(losses, dlogits, logits, targets kernels.Buffer, rows, vocab int, dscale float32) error {
	if err := kernels.CheckCrossEntropy(losses, dlogits, logits, targets, rows, vocab); err != nil {
		return err
	}
	ptr, err := d.ptrs("cross-entropy", losses, dlogits, logits, targets)
	if err != nil {
		return err
	}
	return d.run("cross_entropy", [3]uint32{uint32(rows), 1, 1}, row256,
		ptr[0], ptr[1], ptr[2], ptr[3], i32(rows), i32(vocab), f32(dscale))
}

// AdamW updates params in place.
func (d *Device) AdamW(params, grads, m, v kernels.Buffer, p kernels.AdamWArgs) error {
	if err := kernels.CheckAdamW(params, grads, m, v, p); err != nil {
		return err
	}
	ptr, err := d.ptrs("adamw", params, grads, m, v)
	if err != nil {
		return err
	}
	c1 := float32(1 - math.Pow(float64(p.Beta1), float64(p.Step)))
	c2 := float32(1 - math.Pow(float64(p.Beta2), float64(p.Step)))
	n := params.Len()
	return d.runN("adamw", n, ptr[0], ptr[1], ptr[2], ptr[3], i64(n), f32(p.LR), f32(p.Beta1), f32(p.Beta2),
		f32(p.Eps), f32(p.WeightDecay), f32(c1), f32(c2))
}

// Add sets dst = a + b.
func (d *Device) Add(dst, a, b kernels.Buffer) error {
	if err := kernels.CheckSame("add", dst, a, b); err != nil {
		return err
	}
	ptr, err := d.ptrs("add", dst, a, b)
	if err != nil {
		return err
	}
	return d.runN("add", dst.Len(), ptr[0], ptr[1], ptr[2], i64(dst.Len()))
}

// Scale sets dst = alpha*x.
func (d *Device) Scale(dst, x kernels.Buffer, alpha float32) error {
	if err := kernels.CheckSame("scale", dst, x); err != nil {
		return err
	}
	ptr, err := d.ptrs("scale", dst, x)
	if err != nil {
		return err
	}
	return d.runN("scale", dst.Len(), ptr[0], ptr[1], f32(alpha), i64(dst.Len()))
}

// Fill sets every element to v.
func (d *Device) Fill(dst kernels.Buffer, v float32) error {
	if err := kernels.CheckSame("fill", dst); err != nil {
		return err
	}
	ptr, err := d.ptrs("fill", dst)
	if err != nil {
		return err
	}
	if err := memsetD32(d.ctx, ptr[0], math.Float32bits(v), dst.Len()); err != nil {
		return fmt.Errorf("cuda: fill: %w", err)
	}
	return nil
}

// Copy copies device to device.
func (d *Device) Copy(dst, src kernels.Buffer) error {
	if err := kernels.CheckSame("copy", dst, src); err != nil {
		return err
	}
	ptr, err := d.ptrs("copy", dst, src)
	if err != nil {
		return err
	}
	if err := memcpyDtoD(d.ctx, ptr[0], ptr[1], 4*dst.Len()); err != nil {
		return fmt.Errorf("cuda: copy: %w", err)
	}
	return nil
}

// SumSquares adds the sum of squares of x into acc[0].
func (d *Device) SumSquares(acc, x kernels.Buffer) error {
	if err := kernels.CheckSumSquares(acc, x); err != nil {
		return err
	}
	ptr, err := d.ptrs("sumsquares", acc, x)
	if err != nil {
		return err
	}
	n := x.Len()
	g := grid1(n, 256)
	g[0] = min(g[0], 1024)
	return d.run("sum_squares", g, row256, ptr[0], ptr[1], i64(n))
}

// ToBF16 converts Float32 src into BFloat16 dst.
func (d *Device) ToBF16(dst, src kernels.Buffer) error {
	if dst == nil || src == nil || dst.DType() != kernels.BFloat16 || src.DType() != kernels.Float32 || dst.Len() != src.Len() {
		return fmt.Errorf("to bf16: %w", kernels.ErrShape)
	}
	ptr, err := d.ptrs("to bf16", dst, src)
	if err != nil {
		return err
	}
	return d.runN("to_bf16", dst.Len(), ptr[0], ptr[1], i64(dst.Len()))
}

// FromBF16 converts BFloat16 src into Float32 dst.
func (d *Device) FromBF16(dst, src kernels.Buffer) error {
	if dst == nil || src == nil || dst.DType() != kernels.Float32 || src.DType() != kernels.BFloat16 || dst.Len() != src.Len() {
		return fmt.Errorf("from bf16: %w", kernels.ErrShape)
	}
	ptr, err := d.ptrs("from bf16", dst, src)
	if err != nil {
		return err
	}
	return d.runN("from_bf16", dst.Len(), ptr[0], ptr[1], i64(dst.Len()))
}
