package cpu

import "github.com/ark-sched/ark/kernels"

// widenBF16Go widens src into dst (same length) in portable Go.
func widenBF16Go(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = kernels.FromBF16(h)
	}
}

// narrowBF16 rounds src into dst (same length) to bfloat16, nearest even:
// ToBF16 and PackBBF16.
func narrowBF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = kernels.ToBF16(f)
	}
}
