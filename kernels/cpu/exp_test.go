package cpu

import (
	"math"
	"testing"
)

func TestExpf(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x <= 88; x += 0.0137 {
		want := math.Exp(float64(x))
		got := float64(expf(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 4e-7 {
		t.Errorf("worst relative error %g, want <= 4e-7 (a few ulp)", worst)
	}
	for _, c := range []struct{ x, want float32 }{{0, 1}, {-100, 0}, {-87.4, 0}, {89, float32(math.Inf(1))}} {
		if got := expf(c.x); got != c.want {
			t.Errorf("expf(%g) = %g, want %g", c.x, got, c.want)
		}
	}
	if nan := expf(float32(math.NaN())); nan == nan {
		t.Errorf("expf(NaN) = %g", nan)
	}
}
