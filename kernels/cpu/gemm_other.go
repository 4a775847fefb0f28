//go:build !amd64

package cpu

// availableKernels lists the micro-kernels this CPU can run, best last.
func availableKernels() []microKernel { return []microKernel{genericKernel} }

// widenBF16 widens src into dst (same length).
func widenBF16(dst []float32, src []uint16) { widenBF16Go(dst, src) }
