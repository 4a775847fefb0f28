package train

import (
	"math"
	"testing"
)

// Prefill computes only the prompt's positions, alone or several prompts
// of different lengths stacked in one pass: the logits after each
// prompt's last token, and after one more token stepped from the cache it
// wrote, equal the full forward's.
func TestPrefillMatchesForward(t *testing.T) {
	m := perturbedModel(t)
	T, V := m.Cfg.Context, m.Cfg.Vocab
	text := Encode(testText[3 : 3+2*T])
	near := func(t *testing.T, what string, got, want []float32) {
		t.Helper()
		for v := range V {
			if d := math.Abs(float64(got[v] - want[v])); d > 1e-4 {
				t.Fatalf("%s, logit %d: prefill %g, forward %g", what, v, got[v], want[v])
			}
		}
	}
	for _, tc := range []struct {
		name string
		lens []int // prompt lengths, prefilled together
	}{
		{"one token", []int{1}},
		{"short", []int{3}},
		{"half context", []int{T / 2}},
		{"context less one", []int{T - 1}},
		{"over context keeps the tail", []int{T + 5}},
		{"several lengths together", []int{1, 7, T - 1, 2, T / 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := m.NewDecoder()
			seqs, prompts := make([]*Seq, len(tc.lens)), make([][]int32, len(tc.lens))
			for i, n := range tc.lens {
				s, err := dec.NewSeq()
				if err != nil {
					t.Fatal(err)
				}
				seqs[i], prompts[i] = s, text[i:i+n] // different tokens per prompt
			}
			logits, err := dec.PrefillBatch(seqs, prompts)
			if err != nil {
				t.Fatal(err)
			}
			logits = append([]float32(nil), logits...) // Step reuses the host buffer
			for i, pr := range prompts {
				kept := pr[max(0, len(pr)-T):]
				n := len(kept)
				want := fullLogits(t, m, kept)
				near(t, "last prompt position", logits[i*V:(i+1)*V], want[(n-1)*V:n*V])
				if seqs[i].Len() != n {
					t.Fatalf("prompt %d: cache holds %d tokens, want %d", i, seqs[i].Len(), n)
				}
				if n == T {
					continue // the next step slides the window: TestBatchedDecodeEqualsAlone
				}
				next := text[i+len(pr)]
				got, err := dec.Step([]*Seq{seqs[i]}, []int32{next})
				if err != nil {
					t.Fatal(err)
				}
				want = fullLogits(t, m, append(append([]int32(nil), kept...), next))
				near(t, "step after prefill", got, want[n*V:(n+1)*V])
			}
		})
	}
}

func TestPrefillBatchBadInput(t *testing.T) {
	m := perturbedModel(t)
	dec := m.NewDecoder()
	s, err := dec.NewSeq()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		seqs    []*Seq
		prompts [][]int32
	}{
		{"no sequences", nil, nil},
		{"fewer prompts", []*Seq{s}, nil},
		{"empty prompt", []*Seq{s}, [][]int32{{}}},
		{"token past vocabulary", []*Seq{s}, [][]int32{{1, int32(m.Cfg.Vocab)}}},
		{"negative token", []*Seq{s}, [][]int32{{-1}}},
	} {
		if _, err := dec.PrefillBatch(tc.seqs, tc.prompts); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
