package kernels

import "fmt"

// The Check functions validate an op's buffers against its shape, so every
// backend rejects the same calls with the same wrapped ErrShape or
// ErrArgument. Backends call them first; a nil buffer is accepted only where
// the op documents it as optional.

func want(name string, b Buffer, dt DType, n int) error {
	if b == nil {
		return fmt.Errorf("%s: nil buffer: %w", name, ErrShape)
	}
	if b.DType() != dt {
		return fmt.Errorf("%s: dtype %v, want %v: %w", name, b.DType(), dt, ErrShape)
	}
	if b.Len() != n {
		return fmt.Errorf("%s: %d elements, want %d: %w", name, b.Len(), n, ErrShape)
	}
	return nil
}

func atLeast(name string, b Buffer, dt DType, n int) error {
	if b == nil {
		return fmt.Errorf("%s: nil buffer: %w", name, ErrShape)
	}
	if b.DType() != dt {
		return fmt.Errorf("%s: dtype %v, want %v: %w", name, b.DType(), dt, ErrShape)
	}
	if b.Len() < n {
		return fmt.Errorf("%s: %d elements, want at least %d: %w", name, b.Len(), n, ErrShape)
	}
	return nil
}

func positive(op string, dims ...int) error {
	for i, d := range dims {
		if d <= 0 {
			return fmt.Errorf("%s: dimension %d is %d, want > 0: %w", op, i, d, ErrArgument)
		}
	}
	return nil
}

func all(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// CheckMatMul validates MatMul's arguments.
func CheckMatMul(c, a, b, bias Buffer, p MatMulArgs) error {
	if err := positive("matmul", p.M, p.N, p.K); err != nil {
		return err
	}
	err := all(want("matmul c", c, Float32, p.M*p.N), want("matmul a", a, Float32, p.M*p.K),
		want("matmul b", b, Float32, p.K*p.N))
	if err == nil && bias != nil {
		err = want("matmul bias", bias, Float32, p.N)
	}
	return err
}

// CheckColSum validates ColSum's arguments.
func CheckColSum(out, in Buffer, rows, cols int) error {
	return all(positive("colsum", rows, cols), want("colsum out", out, Float32, cols),
		want("colsum in", in, Float32, rows*cols))
}

// CheckLayerNorm validates LayerNorm's arguments.
func CheckLayerNorm(out, mean, rstd, in, weight, bias Buffer, rows, cols int) error {
	return all(positive("layernorm", rows, cols),
		want("layernorm out", out, Float32, rows*cols), want("layernorm mean", mean, Float32, rows),
		want("layernorm rstd", rstd, Float32, rows), want("layernorm in", in, Float32, rows*cols),
		want("layernorm weight", weight, Float32, cols), want("layernorm bias", bias, Float32, cols))
}

// CheckLayerNormBackward validates LayerNormBackward's arguments.
func CheckLayerNormBackward(din, dweight, dbias, dout, in, weight, mean, rstd Buffer, rows, cols int) error {
	return all(positive("layernorm backward", rows, cols),
		want("layernorm din", din, Float32, rows*cols), want("layernorm dweight", dweight, Float32, cols),
		want("layernorm dbias", dbias, Float32, cols), want("layernorm dout", dout, Float32, rows*cols),
		want("layernorm in", in, Float32, rows*cols), want("layernorm weight", weight, Float32, cols),
		want("layernorm mean", mean, Float32, rows), want("layernorm rstd", rstd, Float32, rows))
}

// CheckSame validates buffers of one elementwise call: same dtype (Float32)
// and length as the first.
func CheckSame(op string, bufs ...Buffer) error {
	for i, b := range bufs {
		if b == nil {
			return fmt.Errorf("%s: buffer %d is nil: %w", op, i, ErrShape)
		}
		if err := want("", b, Float32, bufs[0].Len()); err != nil {
			return fmt.Errorf("%s buffer %d%w", op, i, err)
		}
	}
	return nil
}

// CheckAttention validates Attention's and AttentionBackward's shape and
// buffers (dqkv is nil for the forward).
func CheckAttention(out, probs, qkv, dqkv Buffer, s AttnShape) error {
	if err := positive("attention", s.B, s.T, s.C, s.Heads); err != nil {
		return err
	}
	if s.C%s.Heads != 0 {
		return fmt.Errorf("attention: C %d not divisible by %d heads: %w", s.C, s.Heads, ErrArgument)
	}
	err := all(want("attention out", out, Float32, s.B*s.T*s.C),
		want("attention probs", probs, Float32, s.B*s.Heads*s.T*s.T),
		want("attention qkv", qkv, Float32, s.B*s.T*3*s.C))
	if err == nil && dqkv != nil {
		err = want("attention dqkv", dqkv, Float32, s.B*s.T*3*s.C)
	}
	return err
}

// CheckEmbedding validates Embedding's and EmbeddingBackward's arguments
// (the vocabulary is wte's rows).
func CheckEmbedding(out, ids, wte, wpe Buffer, b, t, c int) error {
	if err := positive("embedding", b, t, c); err != nil {
		return err
	}
	err := all(want("embedding out", out, Float32, b*t*c), want("embedding ids", ids, Int32, b*t))
	if err == nil {
		if wte == nil || wte.DType() != Float32 || wte.Len() == 0 || wte.Len()%c != 0 {
			return fmt.Errorf("embedding wte: want V x %d float32: %w", c, ErrShape)
		}
	}
	if err == nil && wpe != nil {
		err = atLeast("embedding wpe", wpe, Float32, t*c)
	}
	return err
}

// CheckCrossEntropy validates CrossEntropy's arguments.
func CheckCrossEntropy(losses, dlogits, logits, targets Buffer, rows, vocab int) error {
	err := all(positive("cross-entropy", rows, vocab),
		want("cross-entropy losses", losses, Float32, rows),
		want("cross-entropy logits", logits, Float32, rows*vocab),
		want("cross-entropy targets", targets, Int32, rows))
	if err == nil && dlogits != nil {
		err = want("cross-entropy dlogits", dlogits, Float32, rows*vocab)
	}
	return err
}

// CheckAdamW validates AdamW's arguments.
func CheckAdamW(params, grads, m, v Buffer, p AdamWArgs) error {
	if p.Step < 1 {
		return fmt.Errorf("adamw: step %d, want >= 1: %w", p.Step, ErrArgument)
	}
	return CheckSame("adamw", params, grads, m, v)
}

// CheckSumSquares validates SumSquares's arguments.
func CheckSumSquares(acc, x Buffer) error {
	if x == nil {
		return fmt.Errorf("sumsquares x: nil buffer: %w", ErrShape)
	}
	return all(want("sumsquares acc", acc, Float32, 1), want("sumsquares x", x, Float32, x.Len()))
}

// CheckSlice validates a Slice of b.
func CheckSlice(b Buffer, off, n int) error {
	if b == nil {
		return fmt.Errorf("slice: nil buffer: %w", ErrShape)
	}
	if off < 0 || n < 0 || off+n > b.Len() {
		return fmt.Errorf("slice [%d:%d] of %d elements: %w", off, off+n, b.Len(), ErrArgument)
	}
	return nil
}

// CheckCopy validates a host copy of len bytes to or from b.
func CheckCopy(b Buffer, bytes int) error {
	if b == nil {
		return fmt.Errorf("copy: nil buffer: %w", ErrShape)
	}
	if want := b.Len() * b.DType().Size(); bytes != want {
		return fmt.Errorf("copy: %d host bytes for a %d-byte %v buffer: %w", bytes, want, b.DType(), ErrShape)
	}
	return nil
}

// CheckGatherLoRA validates GatherLoRA's buffers.
func CheckGatherLoRA(y, x, a, bt, slots, scales Buffer, p LoRAArgs) error {
	if err := positive("gather lora", p.Rows, p.In, p.Out, p.Rank, p.Slots); err != nil {
		return err
	}
	if p.Ranks != nil {
		if len(p.Ranks) != p.Slots {
			return fmt.Errorf("gather lora: %d slot ranks for %d slots: %w", len(p.Ranks), p.Slots, ErrShape)
		}
		for s, r := range p.Ranks {
			if r < 0 || int(r) > p.Rank {
				return fmt.Errorf("gather lora: slot %d has rank %d, outside 0..%d: %w", s, r, p.Rank, ErrArgument)
			}
		}
	}
	return all(want("gather lora y", y, Float32, p.Rows*p.Out), want("gather lora x", x, Float32, p.Rows*p.In),
		want("gather lora a", a, Float32, p.Slots*p.Rank*p.In), want("gather lora bt", bt, Float32, p.Slots*p.Rank*p.Out),
		want("gather lora slots", slots, Int32, p.Rows), want("gather lora scales", scales, Float32, p.Slots))
}

// CheckCachedAttention validates CachedAttention's buffers.
func CheckCachedAttention(out, q, k, v Buffer, p KVAttnArgs) error {
	if err := positive("cached attention", p.Heads, p.HeadSize, p.Context, p.Len); err != nil {
		return err
	}
	if p.Len > p.Context {
		return fmt.Errorf("cached attention: length %d past the context of %d: %w", p.Len, p.Context, ErrArgument)
	}
	w, c := p.Heads*p.HeadSize, p.Heads*p.Context*p.HeadSize
	return all(want("cached attention out", out, Float32, w), want("cached attention q", q, Float32, w),
		want("cached attention k", k, Float32, c), want("cached attention v", v, Float32, c))
}

// CheckPackB validates PackB's arguments.
func CheckPackB(b Buffer, p MatMulArgs) error {
	if err := positive("pack b", p.N, p.K); err != nil {
		return err
	}
	return want("pack b", b, Float32, p.K*p.N)
}

// CheckMatMulPacked validates MatMulPacked's arguments against the shape
// b was packed for.
func CheckMatMulPacked(c, a Buffer, b PackedB, bias Buffer, p MatMulArgs) error {
	if b == nil {
		return fmt.Errorf("matmul packed: nil packed b: %w", ErrShape)
	}
	if s := b.Shape(); s.N != p.N || s.K != p.K || s.TransB != p.TransB {
		return fmt.Errorf("matmul packed: b packed for N %d, K %d, TransB %v; call has N %d, K %d, TransB %v: %w",
			s.N, s.K, s.TransB, p.N, p.K, p.TransB, ErrShape)
	}
	if err := positive("matmul packed", p.M, p.N, p.K); err != nil {
		return err
	}
	err := all(want("matmul packed c", c, Float32, p.M*p.N), want("matmul packed a", a, Float32, p.M*p.K))
	if err == nil && bias != nil {
		err = want("matmul packed bias", bias, Float32, p.N)
	}
	return err
}
