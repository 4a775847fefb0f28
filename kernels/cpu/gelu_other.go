//go:build !amd64

package cpu

var useGELUAVX512 = false

func geluVec(out, in []float32) int { return 0 }

func geluBackVec(din, in, dout []float32) int { return 0 }

// expShift sets dst[i] = exp(src[i] - shift) and returns their sum.
func expShift(dst, src []float32, shift float32) float64 {
	var sum float64
	for i, v := range src {
		e := expf(v - shift)
		dst[i] = e
		sum += float64(e)
	}
	return sum
}
