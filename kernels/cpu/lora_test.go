package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The vector inner loops of GatherLoRA against the portable ones, every
// length around the 8- and 16-lane steps.
func TestLoRAInnerLoops(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 41 {
		x, y := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i], y[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		if got, want := dot(x, y), dotGo(x, y); math.Abs(float64(got-want)) > 1e-5*(1+math.Abs(float64(want))) {
			t.Fatalf("n %d: dot %g, portable %g", n, got, want)
		}
		y1, y2 := append([]float32(nil), y...), append([]float32(nil), y...)
		axpy(y1, x, 0.7)
		axpyGo(y2, x, 0.7)
		for i := range y1 {
			if math.Abs(float64(y1[i]-y2[i])) > 1e-6 {
				t.Fatalf("n %d: axpy [%d] %g, portable %g", n, i, y1[i], y2[i])
			}
		}
	}
}

// loraRow (one AVX-512 call where the shape allows) against the portable
// row, on shapes with and without a rank remainder and on widths that are
// not multiples of 16 (the portable path then).
func TestLoRARow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	for _, c := range []struct{ in, out, rank int }{
		{16, 48, 4}, {64, 192, 8}, {64, 256, 8}, {256, 64, 16}, {128, 512, 6}, {64, 64, 1}, {768, 2304, 16}, {24, 40, 8},
	} {
		x, a, bt, y := vec(c.in), vec(c.rank*c.in), vec(c.rank*c.out), vec(c.out)
		got, want := append([]float32(nil), y...), append([]float32(nil), y...)
		loraRow(got, x, a, bt, make([]float32, c.rank), 0.5)
		loraRowGo(want, x, a, bt, make([]float32, c.rank), 0.5)
		for j := range got {
			// Sums of in products, then of rank: relative to their size.
			if d := math.Abs(float64(got[j] - want[j])); d > 1e-5*float64(c.in)*(1+math.Abs(float64(want[j]))) {
				t.Fatalf("%+v: y[%d] = %g, portable %g", c, j, got[j], want[j])
			}
		}
	}
}
