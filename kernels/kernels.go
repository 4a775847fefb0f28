package kernels

import (
	"errors"
	"fmt"
)

// Errors returned by devices, wrapped with context; match with errors.Is.
var (
	// ErrShape: a buffer's length or dtype does not match the op's shape.
	ErrShape = errors.New("kernels: shape mismatch")
	// ErrArgument: an argument is out of range (negative size, token id
	// outside the vocabulary, ...).
	ErrArgument = errors.New("kernels: invalid argument")
	// ErrForeignBuffer: a buffer was allocated by another device.
	ErrForeignBuffer = errors.New("kernels: buffer belongs to another device")
	// ErrClosed: the device was closed.
	ErrClosed = errors.New("kernels: device closed")
	// ErrUnavailable: the backend cannot run here (no driver, no library, no
	// device). The wrapped error says which.
	ErrUnavailable = errors.New("kernels: backend unavailable")
)

// DType is the element type of a Buffer.
type DType uint8

const (
	Float32  DType = iota + 1 // IEEE-754 binary32
	Int32                     // token ids and targets
	BFloat16                  // storage only: convert with BF16Storage
)

// Size is the size of one element in bytes.
func (d DType) Size() int {
	switch d {
	case Float32, Int32:
		return 4
	case BFloat16:
		return 2
	}
	return 0
}

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case Int32:
		return "int32"
	case BFloat16:
		return "bfloat16"
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Buffer is a handle to device memory: Len elements of DType. A Buffer is
// only meaningful to the Device that allocated it (or sliced it).
type Buffer interface {
	DType() DType
	Len() int
}

// Memory is explicit device memory management. Host<->device copies are the
// only way data moves; there is no implicit migration.
type Memory interface {
	// Alloc returns a zeroed buffer of n elements.
	Alloc(dt DType, n int) (Buffer, error)
	// Free releases a buffer from Alloc; slices of it become invalid.
	// Freeing a slice is an error.
	Free(b Buffer) error
	// Slice returns a view of n elements of b starting at element off. It
	// allocates no device memory and needs no Free.
	Slice(b Buffer, off, n int) (Buffer, error)
	// CopyIn copies host bytes into dst; len(src) must equal dst's size in
	// bytes. CopyOut is the reverse. Both return once the host side may be
	// reused, and are ordered after every op issued before them.
	CopyIn(dst Buffer, src []byte) error
	CopyOut(dst []byte, src Buffer) error
	// Sync waits for every issued op and returns the first deferred error.
	Sync() error
}

// MatMulArgs describes C = Alpha*op(A)*op(B) + Beta*C + bias, all row-major:
// op(A) is M x K (A is K x M when TransA), op(B) is K x N (B is N x K when
// TransB), C is M x N and bias, when given, has N elements added to every row.
// Beta 0 overwrites C (NaNs in C do not propagate); Beta 1 accumulates.
type MatMulArgs struct {
	M, N, K        int
	TransA, TransB bool
	Alpha, Beta    float32
}

// Linear is matrix multiplication. Backward of a linear layer is two MatMuls
// with transposes (Beta 1 to accumulate weight gradients) and ColSum for the
// bias.
type Linear interface {
	// MatMul computes C per MatMulArgs; bias may be nil.
	MatMul(c, a, b, bias Buffer, p MatMulArgs) error
	// ColSum adds the column sums of the rows x cols matrix in into out
	// (cols elements): the bias gradient.
	ColSum(out, in Buffer, rows, cols int) error
}

// Norm is layer normalisation over the last dimension.
type Norm interface {
	// LayerNorm normalises rows x cols `in` into out with weight and bias
	// (cols each), and saves each row's mean and reciprocal std (rows each)
	// for the backward pass. eps is added to the variance.
	LayerNorm(out, mean, rstd, in, weight, bias Buffer, rows, cols int, eps float32) error
	// LayerNormBackward adds the gradients of in, weight and bias into din,
	// dweight and dbias.
	LayerNormBackward(din, dweight, dbias, dout, in, weight, mean, rstd Buffer, rows, cols int) error
}

// Activation is the GPT-2 GELU (tanh approximation).
type Activation interface {
	GELU(out, in Buffer) error
	// GELUBackward adds dout * gelu'(in) into din.
	GELUBackward(din, in, dout Buffer) error
}

// AttnShape is the shape of causal self-attention over a packed qkv tensor of
// B x T x 3C (q, k, v concatenated along the last dimension, each C = Heads x
// head size). The output is B x T x C; the saved probabilities are
// B x Heads x T x T (entries above the diagonal are zero).
type AttnShape struct {
	B, T, C, Heads int
}

// Attention is causal multi-head self-attention with softmax, scaled by
// 1/sqrt(head size).
type Attention interface {
	Attention(out, probs, qkv Buffer, s AttnShape) error
	// AttentionBackward adds the gradient of qkv into dqkv from dout, the
	// forward's qkv and its saved probs.
	AttentionBackward(dqkv, dout, qkv, probs Buffer, s AttnShape) error
}

// Embedding looks up token (and optional position) embeddings.
type Embedding interface {
	// Embedding writes out[b,t,:] = wte[ids[b,t],:] + wpe[t,:] for ids of
	// B x T Int32 token ids, wte V x C, wpe (nil for none) at least T x C.
	// Ids outside [0, V) are an ErrArgument on backends that check
	// (CPU); undefined on others.
	Embedding(out, ids, wte, wpe Buffer, b, t, c int) error
	// EmbeddingBackward adds dout into the rows of dwte named by ids and
	// into dwpe (nil for none).
	EmbeddingBackward(dwte, dwpe, dout, ids Buffer, b, t, c int) error
}

// Loss is softmax cross-entropy over a vocabulary.
type Loss interface {
	// CrossEntropy writes losses[i] = -log softmax(logits[i,:])[targets[i]]
	// for rows x vocab logits and rows Int32 targets, and, when dlogits is
	// not nil, adds dscale*(softmax - onehot) into it (dscale is typically
	// 1/rows for a mean loss). A negative target is ignored: loss 0, no
	// gradient.
	CrossEntropy(losses, dlogits, logits, targets Buffer, rows, vocab int, dscale float32) error
}

// AdamWArgs are AdamW's hyper-parameters; Step counts from 1 and drives the
// bias correction.
type AdamWArgs struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	Step                               int
}

// Optimizer updates parameters in place.
type Optimizer interface {
	// AdamW updates params from grads and the moment buffers m and v (all
	// the same length), decoupled weight decay as in Loshchilov & Hutter.
	AdamW(params, grads, m, v Buffer, p AdamWArgs) error
}

// Elementwise ops are what collectives reduce with and what the trainer uses
// for residuals, zeroing and gradient clipping. All buffers of one call have
// the same length (use Slice for ranges); dst may alias an input.
type Elementwise interface {
	Add(dst, a, b Buffer) error               // dst = a + b
	Scale(dst, x Buffer, alpha float32) error // dst = alpha * x
	Fill(dst Buffer, v float32) error         // dst = v
	Copy(dst, src Buffer) error               // dst = src (device to device)
	// SumSquares adds the sum of x's squares into acc[0] (acc has length
	// 1): the building block of the global gradient norm.
	SumSquares(acc, x Buffer) error
}

// Device is the minimal interface every backend implements. Ops may run
// asynchronously (CUDA) and then report their error at the next Sync,
// CopyOut or op; the CPU backend runs them synchronously. A Device is used
// from one goroutine at a time, like a stream; use one Device per goroutine
// that computes concurrently.
//
// Rule for backward ops: they add into gradient buffers (+=), so gradients
// from several uses (residual branches, micro-batches) accumulate; zero them
// with Fill before a step.
type Device interface {
	Name() string
	Memory
	Linear
	Norm
	Activation
	Attention
	Embedding
	Loss
	Optimizer
	Elementwise
	// Close releases the device and every buffer; it is idempotent.
	Close() error
}

// HostAccess is implemented by devices whose memory is host memory (CPU):
// the returned slices alias the buffer, so collectives can reduce in place
// without copies.
type HostAccess interface {
	Float32s(b Buffer) ([]float32, error)
	Int32s(b Buffer) ([]int32, error)
}

// BF16Storage is implemented by devices that store bfloat16 buffers.
// Conversions round to nearest even.
type BF16Storage interface {
	ToBF16(dst, src Buffer) error   // dst BFloat16, src Float32, same length
	FromBF16(dst, src Buffer) error // dst Float32, src BFloat16, same length
}

// ThreadSetter is implemented by devices with a tunable number of host
// threads (CPU). SetThreads(0) restores the default.
type ThreadSetter interface {
	SetThreads(n int)
	Threads() int
}

// Describer gives a human description of the hardware for benchmark tables
// ("cpu: avx2+fma, 2 threads", "cuda: NVIDIA H200, sm_90").
type Describer interface {
	Describe() string
}

// LoRAArgs is the shape of a gathered low-rank update: Rows rows of x (In
// wide) add into the rows of y (Out wide), each through the adapter in its
// own slot of Slots stacked adapters of rank Rank (a smaller rank is
// padded with zero rows).
type LoRAArgs struct {
	Rows, In, Out, Rank, Slots int
	// Ranks, when set (Slots long, each 0..Rank), is each slot's own
	// rank: its rows past it are zero, so a backend may skip them (the
	// CPU does: a rank-8 adapter in slots of rank 16 reads and multiplies
	// half the factors); nil means every slot uses Rank. The result is
	// the same either way.
	Ranks []int32
}

// GatheredLoRA is implemented by devices with a batched multi-adapter
// kernel (the gathered matrix-vector idea of Punica's BGMV and S-LoRA's
// SGMV): rows of one batch that use different LoRA adapters of one base
// share a launch, instead of one matmul pair per adapter.
type GatheredLoRA interface {
	// GatherLoRA adds scales[s]·(x[i]·A[s]ᵀ)·Bᵀ[s] into y[i] for every row
	// i whose slots[i] = s is >= 0; rows with a negative slot are left
	// alone. x is Rows x In, y Rows x Out, a is Slots x Rank x In, bt
	// (each adapter's B transposed) Slots x Rank x Out, slots Rows Int32,
	// scales Slots Float32. A slot >= Slots is an ErrArgument on backends
	// that check (CPU); the others leave that row alone (CUDA: checking
	// would cost a copy to the host per call).
	GatherLoRA(y, x, a, bt, slots, scales Buffer, p LoRAArgs) error
}

// KVAttnArgs is the shape of one query's attention over a key/value cache
// laid out Heads x Context x HeadSize (each head's cache one contiguous
// matrix): the query attends to the first Len positions of each head.
type KVAttnArgs struct {
	Heads, HeadSize, Context, Len int
}

// CachedAttention is implemented by devices with a decode step's
// attention for one sequence: its query (one token) over its own cache.
// A decode step makes one call per sequence and layer, so it is per-token
// work that batching cannot share; without it a caller spells the same
// math with two MatMuls per head and a softmax through CrossEntropy.
type CachedAttention interface {
	// CachedAttention sets out[h*HeadSize:(h+1)*HeadSize] to the softmax
	// over t < Len of q_h·k[h,t]/sqrt(HeadSize), weighting v[h,t], for
	// every head h. q and out have Heads*HeadSize elements, k and v
	// Heads*Context*HeadSize; 1 <= Len <= Context.
	CachedAttention(out, q, k, v Buffer, p KVAttnArgs) error
}

// PackedB is a MatMul B operand laid out once by a MatMulPacker. It is the
// device's own copy: writes to the buffer it was packed from do not reach
// it. It needs no Free: it is released with its last reference (CPU) or
// with the device.
type PackedB interface {
	// Shape is the MatMulArgs it was packed for (N, K and TransB).
	Shape() MatMulArgs
}

// MatMulPacker is implemented by devices whose MatMul rearranges B for
// every call (the CPU packs it into panels of its micro-kernel's width):
// PackB does that once for a B that does not change, such as a decoded
// model's weights, and MatMulPacked multiplies by it. At a decode step's
// few rows the packing was as much CPU as the multiplications.
type MatMulPacker interface {
	// PackB packs b, the B of MatMuls of p's N, K and TransB (p's M,
	// Alpha, Beta and TransA are not used).
	PackB(b Buffer, p MatMulArgs) (PackedB, error)
	// MatMulPacked is MatMul with B packed: p's N, K and TransB must be
	// those b was packed for.
	MatMulPacked(c, a Buffer, b PackedB, bias Buffer, p MatMulArgs) error
}

// BF16Packer is implemented by MatMulPackers that can keep a packed B in
// bfloat16: half the bytes of float32, for weights that every decode step
// streams from memory (at a few rows a step the product is bound by
// reading B, so half the bytes is nearly twice the rate). MatMulPacked
// takes what PackBBF16 returns; its product is MatMulPacked's with each
// element of B rounded to bfloat16 first (nearest even), accumulated in
// float32 as before.
type BF16Packer interface {
	PackBBF16(b Buffer, p MatMulArgs) (PackedB, error)
}
