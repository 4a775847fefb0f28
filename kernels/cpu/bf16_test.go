package cpu

import (
	"math"
	"testing"
)

// TestWidenBF16: the vector widening (16 values a step, the rest in Go)
// gives every length what the portable loop gives, signs, infinities, NaN
// and subnormals included.
func TestWidenBF16(t *testing.T) {
	special := []uint16{0x0000, 0x8000, 0x3f80, 0xbf80, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x807f, 0x7f7f}
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 256, 257} {
		src := make([]uint16, n)
		for i := range src {
			src[i] = special[i%len(special)] ^ uint16(i*2654435761>>7)&0x00ff
		}
		got, want := make([]float32, n), make([]float32, n)
		widenBF16(got, src)
		widenBF16Go(want, src)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) || math.Float32bits(want[i]) != uint32(src[i])<<16 {
				t.Fatalf("n %d: [%d] = %#x, want %#x", n, i, math.Float32bits(got[i]), uint32(src[i])<<16)
			}
		}
	}
}
