package cpu

import "math"

// widenBF16Go widens src into dst (same length) in portable Go.
func widenBF16Go(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = math.Float32frombits(uint32(h) << 16)
	}
}
