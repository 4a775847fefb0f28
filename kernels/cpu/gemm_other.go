//go:build !amd64

package cpu

// availableKernels lists the micro-kernels this CPU can run, best last.
func availableKernels() []microKernel { return []microKernel{genericKernel} }
