package cpu

import "golang.org/x/sys/cpu"

// kern6x16avx2 is the AVX2+FMA micro-kernel (gemm_amd64.s): 12 ymm
// accumulators for a 6 x 16 block of C.
//
//go:noescape
func kern6x16avx2(k int, a, b, c *float32, ldc int)

var avx2Kernel = microKernel{name: "avx2+fma", mr: 6, nr: 16, fn: kern6x16avx2}

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		kern = avx2Kernel
	}
}
