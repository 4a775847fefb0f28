package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGELUVector compares the vectorised GELU, forward and backward, with
// the scalar one, over ordinary and extreme inputs.
func TestGELUVector(t *testing.T) {
	if !useGELUAVX512 {
		t.Skip("no AVX-512 on this CPU: the vectorised GELU is not used here")
	}
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 3)
	}
	copy(x, []float32{0, -0, 1e-6, -1e-6, 10, -10, 30, -30, 100, -100, 1e30, -1e30, 5.5, -5.5, 0.5, -0.5})
	out, din, dout := make([]float32, len(x)), make([]float32, len(x)), make([]float32, len(x))
	for i := range dout {
		dout[i] = float32(r.NormFloat64())
		din[i] = 0.25
	}
	if n := geluVec(out, x); n != len(x) {
		t.Fatalf("geluVec did %d of %d", n, len(x))
	}
	if n := geluBackVec(din, x, dout); n != len(x) {
		t.Fatalf("geluBackVec did %d of %d", n, len(x))
	}
	for i, v := range x {
		if want := gelu(v); math.Abs(float64(out[i]-want)) > 1e-5*(1+math.Abs(float64(want))) {
			t.Errorf("gelu(%g): vector %g, scalar %g", v, out[i], want)
		}
		if want := 0.25 + dout[i]*geluGrad(v); math.Abs(float64(din[i]-want)) > 1e-5*(1+math.Abs(float64(want))) {
			t.Errorf("gelu'(%g)*%g + 0.25: vector %g, scalar %g", v, dout[i], din[i], want)
		}
	}
}

// TestExpShift checks exp(x - shift) and the sum, vector body and tail.
func TestExpShift(t *testing.T) { testExpShift(t) }

func testExpShift(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 7, 8, 9, 15, 16, 17, 1000} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 20)
		}
		x[0] = -200 // underflows to 0
		dst := make([]float32, n)
		sum := expShift(dst, x, 3)
		var want float64
		for i, v := range x {
			e := math.Exp(float64(v - 3)) // the argument is rounded to float32 first
			if v-3 < -87 {
				// Underflow: the scalar path gives 0, the vector path
				// clamps the argument and gives exp(-87) = 1.6e-38.
				if dst[i] > 2e-38 {
					t.Errorf("n %d: exp(%g - 3) = %g, want <= 2e-38", n, v, dst[i])
				}
				continue
			}
			want += e
			if math.Abs(float64(dst[i])-e) > 1e-6*e {
				t.Errorf("n %d: exp(%g - 3) = %g, want %g", n, v, dst[i], e)
			}
		}
		if math.Abs(sum-want) > 1e-6*want {
			t.Errorf("n %d: sum %g, want %g", n, sum, want)
		}
	}
}
