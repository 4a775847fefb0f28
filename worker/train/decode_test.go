package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ark-sched/ark/kernels"
)

// perturbedModel is the test model away from its flat start, so logits
// differ enough between positions for a wrong cache to show.
func perturbedModel(t *testing.T) *Model {
	t.Helper()
	m, d := newTestModel(t, 1)
	if err := m.Init(1); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	p := params(t, m)
	for i := range p {
		p[i] += 0.2 * float32(rng.NormFloat64())
	}
	if err := kernels.WriteFloat32(d, m.params, p); err != nil {
		t.Fatal(err)
	}
	return m
}

// fullLogits is the reference: the training forward over the whole
// sequence, T x V.
func fullLogits(t *testing.T, m *Model, toks []int32) []float32 {
	t.Helper()
	T := m.Cfg.Context
	a, err := m.actsFor(1)
	if err != nil {
		t.Fatal(err)
	}
	ids, tgts := make([]int32, T), make([]int32, T)
	copy(ids, toks)
	for i := range tgts {
		tgts[i] = -1
	}
	if err := m.setBatch(a, ids, tgts); err != nil {
		t.Fatal(err)
	}
	if err := m.forwardLogits(a); err != nil {
		t.Fatal(err)
	}
	out, err := kernels.Download(m.d, a.logits)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecodeMatchesForward(t *testing.T) {
	m := perturbedModel(t)
	T, V := m.Cfg.Context, m.Cfg.Vocab
	toks := Encode(testText[7 : 7+T])
	want := fullLogits(t, m, toks)
	for _, prefill := range []int{1, 5, T - 1} {
		dec := m.NewDecoder()
		s, err := dec.NewSeq()
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.Prefill(s, toks[:prefill])
		if err != nil {
			t.Fatal(err)
		}
		check := func(pos int, got []float32) {
			t.Helper()
			for v := range V {
				if d := math.Abs(float64(got[v] - want[pos*V+v])); d > 1e-4 {
					t.Fatalf("prefill %d, position %d, logit %d: cached %g, forward %g", prefill, pos, v, got[v], want[pos*V+v])
				}
			}
		}
		check(prefill-1, got)
		for pos := prefill; pos < T; pos++ {
			got, err := dec.Step([]*Seq{s}, toks[pos:pos+1])
			if err != nil {
				t.Fatal(err)
			}
			check(pos, got)
		}
		if s.Len() != T {
			t.Errorf("cache holds %d tokens, want %d", s.Len(), T)
		}
	}
}

// greedy decodes n tokens after prompt alone in its own batch.
func greedy(t *testing.T, dec *Decoder, prompt []int32, n int) []int32 {
	t.Helper()
	s, err := dec.NewSeq()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Release(s)
	sm := NewSampler(0, 1)
	logits, err := dec.Prefill(s, prompt)
	if err != nil {
		t.Fatal(err)
	}
	out := []int32{sm.Next(logits)}
	for len(out) < n {
		logits, err := dec.Step([]*Seq{s}, out[len(out)-1:])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sm.Next(logits))
	}
	return out
}

// Several sequences of different lengths, joining and leaving the batch at
// different steps and running past the context (the sliding window),
// decode exactly what each decodes alone.
func TestBatchedDecodeEqualsAlone(t *testing.T) {
	m := perturbedModel(t)
	V := m.Cfg.Vocab
	type job struct {
		prompt      string
		join, steps int // step at which it joins the batch; tokens to decode
	}
	jobs := []job{
		{"the cat", 0, 30},
		{"a bird in the hand. the", 0, 9},
		{"x", 2, 25},
		{"the dog ate the log", 5, 12},
	}
	dec := m.NewDecoder()
	want := make([][]int32, len(jobs))
	for i, j := range jobs {
		want[i] = greedy(t, dec, Encode([]byte(j.prompt)), j.steps)
	}
	type live struct {
		i   int
		s   *Seq
		out []int32
	}
	got := make([][]int32, len(jobs))
	var batch []*live
	sm := NewSampler(0, 1)
	for step := 0; ; step++ {
		for i, j := range jobs {
			if j.join != step {
				continue
			}
			s, err := dec.NewSeq()
			if err != nil {
				t.Fatal(err)
			}
			logits, err := dec.Prefill(s, Encode([]byte(j.prompt)))
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, &live{i: i, s: s, out: []int32{sm.Next(logits)}})
		}
		batch = slices.DeleteFunc(batch, func(r *live) bool {
			if len(r.out) < jobs[r.i].steps {
				return false
			}
			got[r.i] = r.out
			dec.Release(r.s)
			return true
		})
		if len(batch) == 0 && step > 5 {
			break
		}
		if len(batch) == 0 {
			continue
		}
		rows, toks := make([]*Seq, len(batch)), make([]int32, len(batch))
		for k, r := range batch {
			rows[k], toks[k] = r.s, r.out[len(r.out)-1]
		}
		logits, err := dec.Step(rows, toks)
		if err != nil {
			t.Fatal(err)
		}
		for k, r := range batch {
			r.out = append(r.out, sm.Next(logits[k*V:(k+1)*V]))
		}
	}
	for i := range jobs {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("sequence %d batched %q, alone %q", i, Decode(got[i]), Decode(want[i]))
		}
	}
}

func TestDecodeBadInput(t *testing.T) {
	m := perturbedModel(t)
	dec := m.NewDecoder()
	s, err := dec.NewSeq()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Prefill(s, nil); err == nil {
		t.Error("empty prompt accepted")
	}
	if _, err := dec.Step([]*Seq{s}, []int32{1}); err == nil {
		t.Error("step before prefill accepted")
	}
	if _, err := dec.Prefill(s, []int32{1, 2}); err != nil {
		t.Fatal(err)
	}
	for _, toks := range [][]int32{{256}, {-1}, {1, 2}} {
		if _, err := dec.Step([]*Seq{s}, toks); err == nil {
			t.Errorf("step with tokens %v accepted", toks)
		}
	}
}
