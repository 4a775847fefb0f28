package train

import (
	"math"
	"testing"

	"github.com/ark-sched/ark/kernels"
)

// deviceOnly hides the CPU device's HostAccess, so the decoder takes the
// path every other device takes.
type deviceOnly struct{ kernels.Device }

// The host attention and the device path give the same logits, for a
// batch of rows at different positions running past the context (the
// sliding window).
func TestHostAttentionMatchesDevicePath(t *testing.T) {
	m := perturbedModel(t)
	if _, ok := m.d.(kernels.HostAccess); !ok {
		t.Fatal("test device has no HostAccess: the host path is not under test")
	}
	viaDev := *m
	viaDev.d, viaDev.acts = deviceOnly{m.d}, map[int]*acts{}
	T, V := m.Cfg.Context, m.Cfg.Vocab
	prompts := [][]int32{Encode([]byte("the cat")), Encode([]byte("x")), Encode(testText[:T-2])}
	run := func(m *Model) [][]float32 {
		dec := m.NewDecoder()
		seqs := make([]*Seq, len(prompts))
		for i := range seqs {
			s, err := dec.NewSeq()
			if err != nil {
				t.Fatal(err)
			}
			seqs[i] = s
		}
		if _, err := dec.PrefillBatch(seqs, prompts); err != nil {
			t.Fatal(err)
		}
		var out [][]float32
		toks := []int32{1, 2, 3}
		for step := range 2 * T {
			logits, err := dec.Step(seqs, toks)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, append([]float32(nil), logits...))
			for i := range toks {
				toks[i] = int32((step*7 + i*13) % V)
			}
		}
		return out
	}
	host, dev := run(m), run(&viaDev)
	for step := range host {
		for j := range host[step] {
			if d := math.Abs(float64(host[step][j] - dev[step][j])); d > 1e-4 {
				t.Fatalf("step %d, logit %d: host %g, device %g", step, j, host[step][j], dev[step][j])
			}
		}
	}
}

// BenchmarkHostAttentionHead is hostAttention's work for one (row, head)
// of gpt-tiny's shape (head size 16) at position 48: scores, softmax and
// the weighted sum of the values.
func BenchmarkHostAttentionHead(b *testing.B) {
	const n, hs = 48, 16
	q, keys, vals := make([]float32, hs), make([]float32, n*hs), make([]float32, n*hs)
	for i := range keys {
		keys[i], vals[i] = float32(i%7)/7, float32(i%5)/5
	}
	for i := range q {
		q[i] = float32(i) / 16
	}
	sc, out := make([]float32, n), make([]float32, hs)
	for range b.N {
		top := float32(-1e30)
		scores(sc, q, keys, 0.25)
		for _, v := range sc {
			top = max(top, v)
		}
		sum := expSoftmax(sc, sc, top, 1)
		weightedSum(out, sc, vals, 1/sum)
	}
}
