// Package cpu is Ark's always-available kernels.Device: float32 compute on
// host memory, multi-threaded across a fixed pool of worker goroutines owned
// by the Device (started by New, stopped by Close).
//
// Matmul is blocked the BLIS way (pack panels of A and B per cache block,
// then a register-blocked micro-kernel over them). On amd64 the micro-kernel
// is Go assembly chosen at run time: 12x32 floats with AVX-512, 6x16 with
// AVX2+FMA; elsewhere portable Go. GELU and the exponentials of softmax
// and cross-entropy have AVX-512 loops too. Attention runs the same GEMM code
// single-threaded per (batch, head) on strided views of qkv. The other ops
// are loops parallelised over rows, columns or chunks. Work is handed to the
// workers in chunks from an atomic counter, and every op gives the same
// result whatever the scheduling. In steady state no op allocates: scratch
// is owned by the Device and grown on demand.
//
// The Device also implements kernels.HostAccess (buffers are Go slices, so
// collectives reduce them in place), kernels.BF16Storage, kernels.ThreadSetter,
// kernels.Describer, kernels.GatheredLoRA, kernels.CachedAttention, and
// kernels.MatMulPacker with kernels.BF16Packer: a decoded model's weights
// packed once, in float32 or in bfloat16 panels that the micro-kernels widen
// in registers (half the bytes a decode step streams).
package cpu
