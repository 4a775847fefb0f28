package train

import (
	"math"
	"testing"
)

// fastExp against math.Exp over a dense sweep of the range a softmax feeds
// it after subtracting the max ([-80, 0]), and past it both ways.
func TestFastExpMatchesMathExp(t *testing.T) {
	const steps = 2_000_000
	worst, at := 0.0, 0.0
	for i := range steps + 1 {
		x := float32(-80 * float64(i) / steps)
		want := math.Exp(float64(x))
		got := float64(fastExp(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst, at = rel, float64(x)
		}
	}
	t.Logf("max relative error on [-80, 0]: %.3g at x=%g", worst, at)
	if worst > 1e-6 {
		t.Fatalf("max relative error on [-80, 0] is %g at x=%g, want <= 1e-6", worst, at)
	}
	for _, tc := range []struct {
		name string
		x    float32
		want float32
	}{
		{"zero", 0, 1},
		{"below the normal range", -88, 0},
		{"very negative", -1e30, 0},
		{"negative infinity", float32(math.Inf(-1)), 0},
		{"overflow", 89, float32(math.Inf(1))},
		{"positive infinity", float32(math.Inf(1)), float32(math.Inf(1))},
	} {
		if got := fastExp(tc.x); got != tc.want {
			t.Errorf("%s: fastExp(%g) = %g, want %g", tc.name, tc.x, got, tc.want)
		}
	}
	if got := fastExp(float32(math.NaN())); got == got {
		t.Errorf("fastExp(NaN) = %g, want NaN", got)
	}
	// Positive inputs up to the top of float32 (not used by a softmax,
	// but fastExp claims them).
	for x := float32(0); x < 88.7; x += 0.001 {
		want := math.Exp(float64(x))
		if rel := math.Abs(float64(fastExp(x))-want) / want; rel > 1e-6 {
			t.Fatalf("fastExp(%g): relative error %g", x, rel)
		}
	}
}

// BenchmarkFastExp and BenchmarkMathExp compare one exp each (the latter
// is what the softmaxes used before).
func BenchmarkFastExp(b *testing.B) {
	var sink float32
	for i := range b.N {
		sink += fastExp(-float32(i&1023) / 64)
	}
	_ = sink
}

func BenchmarkMathExp(b *testing.B) {
	var sink float64
	for i := range b.N {
		sink += math.Exp(-float64(i&1023) / 64)
	}
	_ = sink
}

// BenchmarkExpSoftmax256 is the sampler's softmax over a byte vocabulary.
func BenchmarkExpSoftmax256(b *testing.B) {
	src, dst := make([]float32, 256), make([]float32, 256)
	for i := range src {
		src[i] = -float32(i) / 16
	}
	for range b.N {
		expSoftmax(dst, src, 0, 1)
	}
}
