// Package kernels defines Ark's compute Device: the ops a GPT-style decoder
// needs for training and inference, forward and backward, on buffers that live
// in the device's memory.
//
// The package owns the interface and its contract (shapes, accumulation rules,
// errors) and a few host-side helpers built only from the interface (typed
// copies, bfloat16 conversion, gradient-norm clipping). It has no backend of its
// own and no cgo. Backends live in subpackages:
//
//   - kernels/cpu: always built, pure Go plus an amd64 assembly micro-kernel
//     for matmul, multi-threaded;
//   - kernels/cuda: cgo, loads libcuda, libnvrtc and libcublas with dlopen at
//     run time, so it builds anywhere and fails cleanly where there is no GPU.
//
// The shape follows database/sql/driver: Device is the minimal set every
// backend implements; extra capabilities (HostAccess, BF16Storage,
// ThreadSetter, Describer, GatheredLoRA, CachedAttention, MatMulPacker,
// BF16Packer) are optional interfaces found by type assertion.
// kernels/kernelstest is the conformance suite every backend must pass against
// a float64 reference. See DESIGN.md in this directory.
package kernels
