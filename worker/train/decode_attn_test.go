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
