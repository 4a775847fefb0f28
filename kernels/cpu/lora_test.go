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
