package train

import (
	"math"
	"slices"
	"testing"

	"github.com/ark-sched/ark/kernels"
	"github.com/ark-sched/ark/kernels/cpu"
)

// plainDevice hides the CPU device's optional capabilities (the gathered
// LoRA kernel, host access): the decoder's generic paths.
type plainDevice struct{ kernels.Device }

// onPlainDevice copies m onto a plainDevice.
func onPlainDevice(t *testing.T, m *Model) *Model {
	t.Helper()
	d := cpu.New(1)
	t.Cleanup(func() { d.Close() })
	pm, err := NewModel(plainDevice{d}, m.Cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := kernels.WriteFloat32(pm.d, pm.params, params(t, m)); err != nil {
		t.Fatal(err)
	}
	return pm
}

// testAdapters are adapters of different shapes for m's model: every
// target set, a rank below the slots'.
func testAdapters(t *testing.T, m *Model) []*AdapterWeights {
	t.Helper()
	var out []*AdapterWeights
	for i, c := range []LoRAConfig{
		{Rank: 4, Alpha: 8, Targets: []string{LoRAAttn, LoRAMLP}},
		{Rank: 2, Alpha: 4, Targets: []string{LoRAMLP}},
		{Rank: 4, Alpha: 2, Targets: []string{LoRAAttn}},
	} {
		w, err := randomAdapter(t, m, c, uint64(20+i)).Weights()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, w)
	}
	return out
}

func slotDecoder(t *testing.T, m *Model, ws []*AdapterWeights) *Decoder {
	t.Helper()
	dec := m.NewDecoder()
	if err := dec.SetAdapterSlots(len(ws)+1, 4); err != nil { // one slot left empty
		t.Fatal(err)
	}
	for i, w := range ws {
		if err := dec.LoadSlot(i, w); err != nil {
			t.Fatal(err)
		}
	}
	return dec
}

// A sequence in an adapter slot decodes the logits of the training
// forward with that adapter attached, on both decoder paths.
func TestDecodeInSlotMatchesAdapterForward(t *testing.T) {
	m := perturbedModel(t)
	ws := testAdapters(t, m)
	T, V := m.Cfg.Context, m.Cfg.Vocab
	toks := Encode(testText[3 : 3+T])
	for name, dm := range map[string]*Model{"gathered": m, "plain": onPlainDevice(t, m)} {
		dec := slotDecoder(t, dm, ws)
		for slot, w := range ws {
			a, err := w.Upload(m.d)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.SetAdapter(a); err != nil {
				t.Fatal(err)
			}
			want := fullLogits(t, m, toks)
			if err := m.SetAdapter(nil); err != nil {
				t.Fatal(err)
			}
			a.Free()
			s, err := dec.NewSeq()
			if err != nil {
				t.Fatal(err)
			}
			s.Slot = slot
			got, err := dec.Prefill(s, toks[:5])
			if err != nil {
				t.Fatal(err)
			}
			for pos := 4; pos < T; pos++ {
				if pos > 4 {
					if got, err = dec.Step([]*Seq{s}, toks[pos:pos+1]); err != nil {
						t.Fatal(err)
					}
				}
				for v := range V {
					if d := math.Abs(float64(got[v] - want[pos*V+v])); d > 1e-4 {
						t.Fatalf("%s, slot %d, position %d, logit %d: decoded %g, forward %g", name, slot, pos, v, got[v], want[pos*V+v])
					}
				}
			}
			dec.Release(s)
		}
	}
}

// greedySlot decodes n tokens after prompt alone, in slot.
func greedySlot(t *testing.T, dec *Decoder, slot int, prompt []int32, n int) []int32 {
	t.Helper()
	s, err := dec.NewSeq()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Release(s)
	s.Slot = slot
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

// Sequences of different adapters (and the base, and an empty slot) in
// one batch, joining at different steps and sliding past the context,
// decode token for token what each decodes alone at temperature 0.
func TestBatchedMultiAdapterDecodeEqualsAlone(t *testing.T) {
	base := perturbedModel(t)
	ws := testAdapters(t, base)
	type job struct {
		prompt      string
		slot        int
		join, steps int
	}
	jobs := []job{
		{"the cat", -1, 0, 30},
		{"the cat", 0, 0, 30},
		{"the cat", 1, 1, 20},
		{"the cat", 2, 1, 26},
		{"a bird in the hand. the", 0, 2, 9},
		{"x", 3, 2, 12}, // the empty slot: the base
		{"the dog ate the log", 2, 5, 12},
	}
	for name, m := range map[string]*Model{"gathered": base, "plain": onPlainDevice(t, base)} {
		t.Run(name, func(t *testing.T) {
			dec := slotDecoder(t, m, ws)
			V := m.Cfg.Vocab
			want := make([][]int32, len(jobs))
			for i, j := range jobs {
				want[i] = greedySlot(t, dec, j.slot, Encode([]byte(j.prompt)), j.steps)
			}
			if slices.Equal(want[0], want[1]) || slices.Equal(want[1], want[2]) || slices.Equal(want[0], want[3]) {
				t.Fatalf("adapters do not change the greedy output: %q %q %q %q", Decode(want[0]), Decode(want[1]), Decode(want[2]), Decode(want[3]))
			}
			if !slices.Equal(want[5], greedySlot(t, dec, -1, Encode([]byte("x")), 12)) {
				t.Fatal("the empty slot does not decode as the base")
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
				var fresh []*live
				var seqs []*Seq
				var prompts [][]int32
				for i, j := range jobs {
					if j.join != step {
						continue
					}
					s, err := dec.NewSeq()
					if err != nil {
						t.Fatal(err)
					}
					s.Slot = j.slot
					fresh, seqs, prompts = append(fresh, &live{i: i, s: s}), append(seqs, s), append(prompts, Encode([]byte(j.prompt)))
				}
				if len(fresh) > 0 { // joiners prefill together, as the engine admits them
					logits, err := dec.PrefillBatch(seqs, prompts)
					if err != nil {
						t.Fatal(err)
					}
					for k, r := range fresh {
						r.out = []int32{sm.Next(logits[k*V : (k+1)*V])}
					}
					batch = append(batch, fresh...)
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
			for i, j := range jobs {
				if !slices.Equal(got[i], want[i]) {
					t.Errorf("sequence %d (slot %d) batched %q, alone %q", i, j.slot, Decode(got[i]), Decode(want[i]))
				}
			}
		})
	}
}

func TestAdapterSlotErrors(t *testing.T) {
	m := perturbedModel(t)
	ws := testAdapters(t, m)
	dec := m.NewDecoder()
	if err := dec.LoadSlot(0, ws[0]); err == nil {
		t.Fatal("loaded a slot of a decoder without slots")
	}
	if err := dec.SetAdapterSlots(2, 2); err != nil {
		t.Fatal(err)
	}
	if err := dec.LoadSlot(0, ws[0]); err == nil { // rank 4 > 2
		t.Fatal("loaded an adapter of a rank above the slots'")
	}
	if err := dec.LoadSlot(2, ws[1]); err == nil {
		t.Fatal("loaded slot 2 of 2")
	}
	s, err := dec.NewSeq()
	if err != nil {
		t.Fatal(err)
	}
	s.Slot = 5
	if _, err := dec.Prefill(s, []int32{1, 2}); err == nil {
		t.Fatal("prefilled a sequence in slot 5 of 2")
	}
}
