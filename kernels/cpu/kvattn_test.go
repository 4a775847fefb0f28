package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// CachedAttention's vector products against the portable loops, on head
// sizes of whole 8-lane vectors (assembly) and not (Go), and every key
// count around the groups of four (64 and 128: the 64-column form).
func TestKVAttentionProducts(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	for _, hs := range []int{8, 12, 16, 24, 32, 64, 128} {
		for n := 1; n <= 19; n++ {
			q, keys, w := vec(hs), vec(n*hs), vec(n)
			got, want := make([]float32, n), make([]float32, n)
			kvScores(got, q, keys, 0.25)
			kvScoresGo(want, q, keys, 0.25)
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-6*float64(hs)*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("head %d, %d keys: score[%d] = %g, portable %g", hs, n, i, got[i], want[i])
				}
			}
			gotO, wantO := make([]float32, hs), make([]float32, hs)
			kvWeighted(gotO, w, keys, 0.5)
			kvWeightedGo(wantO, w, keys, 0.5)
			for j := range gotO {
				if d := math.Abs(float64(gotO[j] - wantO[j])); d > 1e-6*float64(n)*(1+math.Abs(float64(wantO[j]))) {
					t.Fatalf("head %d, %d rows: out[%d] = %g, portable %g", hs, n, j, gotO[j], wantO[j])
				}
			}
		}
	}
}
