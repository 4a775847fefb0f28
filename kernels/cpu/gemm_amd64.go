package cpu

import "golang.org/x/sys/cpu"

// kern6x16avx2 is the AVX2+FMA micro-kernel (gemm_amd64.s): 12 ymm
// accumulators for a 6 x 16 block of C.
//
//go:noescape
func kern6x16avx2(k int, a, b, c *float32, ldc int)

// kern6x16pfavx2 is kern6x16avx2 that prefetches the rows of C it adds
// into and, along its loop, the next B panel: for blocks of 6 rows or
// more.
//
//go:noescape
func kern6x16pfavx2(k int, a, b, c *float32, ldc int)

// kern4x16avx2 is its edge kernel: 8 accumulators for a 4 x 16 block.
//
//go:noescape
func kern4x16avx2(k int, a, b, c *float32, ldc int)

// kern1x16avx2 and kern1x32avx512 are the one-row kernels
// (microKernel.row) on the AVX2 and AVX-512 kernels' B panels.
//
//go:noescape
func kern1x16avx2(k int, a *float32, lda int, b, c *float32)

//go:noescape
func kern1x32avx512(k int, a *float32, lda int, b, c *float32)

// kern12x32avx512 is the AVX-512 micro-kernel: 24 zmm accumulators for a
// 12 x 32 block of C.
//
//go:noescape
func kern12x32avx512(k int, a, b, c *float32, ldc int)

var avx512Kernel = microKernel{name: "avx512", mr: 12, nr: 32, fn: kern12x32avx512, row: kern1x32avx512,
	rowHalf: kern1x32avx512bf16, fnHalf: kern12x32avx512bf16, halfInterleaved: true}

var avx2Kernel = microKernel{name: "avx2+fma", mr: 6, nr: 16, fn: kern6x16pfavx2, short: kern6x16avx2, row: kern1x16avx2,
	rowHalf: kern1x16avx2bf16, fnHalf: kern6x16avx2bf16, halfMaxPanels: 2,
	edge: &microKernel{name: "avx2+fma 4x16", mr: 4, nr: 16, fn: kern4x16avx2, fnHalf: kern4x16avx2bf16}}

// availableKernels lists the micro-kernels this CPU can run, best last.
func availableKernels() []microKernel {
	ks := []microKernel{genericKernel}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, avx2Kernel)
	}
	if cpu.X86.HasAVX512F {
		k := avx512Kernel
		if !cpu.X86.HasAVX512BW {
			// Its bfloat16 forms widen 16-bit words in zmm registers
			// (VPUNPCKLWD/HWD: AVX512BW); without it a bfloat16 panel is
			// widened into scratch (AVX2) for the float32 kernels.
			k.rowHalf, k.fnHalf, k.halfInterleaved = nil, nil, false
		}
		ks = append(ks, k)
	}
	return ks
}

func init() {
	ks := availableKernels()
	kern = ks[len(ks)-1]
}

// kern6x16avx2bf16 and kern4x16avx2bf16 are kern6x16pfavx2 and
// kern4x16avx2 on bfloat16 B panels (microKernel.fnHalf), widened in
// registers.
//
//go:noescape
func kern6x16avx2bf16(k int, a *float32, b *uint16, c *float32, ldc int)

//go:noescape
func kern4x16avx2bf16(k int, a *float32, b *uint16, c *float32, ldc int)

// kern12x32avx512bf16 is kern12x32avx512 on a bfloat16 B panel
// (microKernel.fnHalf), widened in registers.
//
//go:noescape
func kern12x32avx512bf16(k int, a *float32, b *uint16, c *float32, ldc int)

// kern1x16avx2bf16 and kern1x32avx512bf16 are kern1x16avx2 and
// kern1x32avx512 on bfloat16 B panels (microKernel.rowHalf): each 16-bit
// element is widened to float32 (shifted into the high half) in a register,
// then the same FMA.
//
//go:noescape
func kern1x16avx2bf16(k int, a *float32, lda int, b *uint16, c *float32)

//go:noescape
func kern1x32avx512bf16(k int, a *float32, lda int, b *uint16, c *float32)

// widenBF16avx2 widens n bfloat16 values (n a multiple of 16) to float32.
//
//go:noescape
func widenBF16avx2(dst *float32, src *uint16, n int)

// widenBF16 widens src into dst (same length): bfloat16 is the high half
// of a float32.
func widenBF16(dst []float32, src []uint16) {
	dst = dst[:len(src)] // the vector loop writes len(src) floats
	n := len(src) &^ 15
	if n > 0 && cpu.X86.HasAVX2 {
		widenBF16avx2(&dst[0], &src[0], n)
	} else {
		n = 0
	}
	widenBF16Go(dst[n:], src[n:])
}
