package train

import (
	"math"
	"math/rand/v2"
	"testing"
)

// At temperature 0 (or below) the sampler is argmax, the first on a tie,
// and draws nothing from its generator.
func TestSamplerGreedyIsArgmax(t *testing.T) {
	for _, tc := range []struct {
		name   string
		logits []float32
		want   int32
	}{
		{"single", []float32{3}, 0},
		{"max last", []float32{-1, 0, 2.5}, 2},
		{"max first", []float32{9, -3, 8.99}, 0},
		{"tie takes the first", []float32{1, 4, 4, 2}, 1},
		{"all negative", []float32{-7, -2, -5}, 1},
	} {
		for _, temp := range []float64{0, -1} {
			s := NewSampler(temp, 1)
			if got := s.Next(tc.logits); got != tc.want {
				t.Errorf("%s, temperature %g: got %d, want %d", tc.name, temp, got, tc.want)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 256)
	for range 100 {
		want := 0
		for i := range logits {
			logits[i] = float32(rng.NormFloat64())
			if logits[i] > logits[want] {
				want = i
			}
		}
		if got := NewSampler(0, 7).Next(logits); got != int32(want) {
			t.Fatalf("got %d, want argmax %d", got, want)
		}
	}
}

// At temperature T the empirical distribution of many draws matches
// softmax(logits/T), computed in float64, within sampling noise.
func TestSamplerMatchesSoftmax(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	logits := make([]float32, 256)
	for i := range logits {
		logits[i] = float32(2 * rng.NormFloat64())
	}
	logits[17] = -200 // exp underflows: never drawn
	const draws = 150_000
	for _, temp := range []float64{1, 0.5} {
		want := make([]float64, len(logits))
		var sum float64
		for i, v := range logits {
			want[i] = math.Exp(float64(v) / temp)
			sum += want[i]
		}
		s := NewSampler(temp, 11)
		counts := make([]int, len(logits))
		for range draws {
			counts[s.Next(logits)]++
		}
		if counts[17] != 0 {
			t.Errorf("temperature %g: token 17 (probability ~0) drawn %d times", temp, counts[17])
		}
		// Each count is binomial: allow 5 standard deviations, plus a
		// floor for the rarest tokens.
		for i, c := range counts {
			p := want[i] / sum
			sd := math.Sqrt(draws * p * (1 - p))
			if d := math.Abs(float64(c) - draws*p); d > 5*sd+3 {
				t.Errorf("temperature %g, token %d: drawn %d times, want %.1f ± %.1f", temp, i, c, draws*p, 5*sd)
			}
		}
	}
}

// The same seed draws the same sequence, and a sampler's draws do not
// depend on another's (each request owns its generator).
func TestSamplerSeeded(t *testing.T) {
	logits := make([]float32, 256)
	for i := range logits {
		logits[i] = float32(i%13) / 4
	}
	a, b, other := NewSampler(1, 42), NewSampler(1, 42), NewSampler(1, 43)
	same := true
	for range 200 {
		x := a.Next(logits)
		other.Next(logits) // interleaved, as in a batch
		y := b.Next(logits)
		if x != y {
			t.Fatalf("seed 42 drew %d and %d", x, y)
		}
		same = same && x == other.Next(logits)
	}
	if same {
		t.Fatal("seeds 42 and 43 drew the same 200 tokens")
	}
}
