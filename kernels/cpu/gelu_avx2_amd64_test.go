package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGELUAVX2 compares the 8-lane GELU with the scalar one over ordinary
// and extreme inputs, and checks it leaves the tail past a multiple of 8.
func TestGELUAVX2(t *testing.T) {
	if !useGELUAVX2 {
		t.Skip("no AVX2 and FMA on this CPU")
	}
	r := rand.New(rand.NewPCG(7, 8))
	x := make([]float32, 4096+5)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 3)
	}
	copy(x, []float32{0, -0, 1e-6, -1e-6, 10, -10, 30, -30, 100, -100, 1e30, -1e30, 5.5, -5.5, 0.5, -0.5,
		-4.3, -4.4, 4.3, 88, -88, -1e-30, 2, -2})
	out := make([]float32, len(x))
	for i := range out {
		out[i] = -7 // must stay in the tail
	}
	if n := geluVecAVX2(out, x); n != 4096 {
		t.Fatalf("geluVecAVX2 did %d of %d, want 4096", n, len(x))
	}
	for i, v := range x[:4096] {
		if want := gelu(v); math.Abs(float64(out[i]-want)) > 1e-5*(1+math.Abs(float64(want))) {
			t.Errorf("gelu(%g): AVX2 %g, scalar %g", v, out[i], want)
		}
	}
	for i := 4096; i < len(x); i++ {
		if out[i] != -7 {
			t.Errorf("tail element %d written: %g", i, out[i])
		}
	}
}

// TestExpShiftAVX2 is TestExpShift on the 8-lane path, which a CPU with
// AVX-512 would not otherwise take.
func TestExpShiftAVX2(t *testing.T) {
	if !useGELUAVX2 {
		t.Skip("no AVX2 and FMA on this CPU")
	}
	saved := useGELUAVX512
	defer func() { useGELUAVX512 = saved }()
	useGELUAVX512 = false
	testExpShift(t)
}
