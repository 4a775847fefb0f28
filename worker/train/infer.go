package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"unsafe"

	"github.com/ark-sched/ark/kernels"
)

// collectiveBytes views a float32 slice as bytes (no copy).
func collectiveBytes(s []float32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 4*len(s))
}

// EvalResult is the loss on held-out text.
type EvalResult struct {
	Loss       float64 // mean cross-entropy per token (nats)
	Perplexity float64
	Tokens     int
}

// Eval computes the mean loss over up to maxWindows non-overlapping
// context-length windows of the held-out split (in the model's tokens),
// batch at a time.
func (m *Model) Eval(ds *Dataset, batch, maxWindows int) (EvalResult, error) {
	T := m.Cfg.Context
	ds = ds.tokensFor(m.tokenizer())
	offs := ds.evalWindows(T, maxWindows)
	if len(offs) == 0 {
		return EvalResult{}, fmt.Errorf("%w: held-out text of %d tokens is shorter than one window of %d", ErrConfig, len(ds.Val), T+1)
	}
	batch = max(1, min(batch, len(offs)))
	a, err := m.actsFor(batch)
	if err != nil {
		return EvalResult{}, err
	}
	ids, tgts := make([]int32, batch*T), make([]int32, batch*T)
	var sum float64
	var count int
	for i := 0; i < len(offs); i += batch {
		for b := range batch {
			row, trow := ids[b*T:(b+1)*T], tgts[b*T:(b+1)*T]
			if i+b < len(offs) {
				off := offs[i+b]
				copy(row, ds.Val[off:off+T])
				copy(trow, ds.Val[off+1:off+T+1])
				continue
			}
			for j := range row {
				row[j], trow[j] = 0, -1 // padding: ignored
			}
		}
		if err := m.setBatch(a, ids, tgts); err != nil {
			return EvalResult{}, err
		}
		loss, err := m.forward(a, false)
		if err != nil {
			return EvalResult{}, err
		}
		n := min(batch, len(offs)-i) * T
		sum += loss * float64(n)
		count += n
	}
	loss := sum / float64(count)
	return EvalResult{Loss: loss, Perplexity: math.Exp(loss), Tokens: count}, nil
}

// Generate continues prompt by n tokens: greedy when temperature <= 0, else
// sampled from softmax(logits/temperature) with a generator seeded by seed.
// The text goes through the model's tokenizer (bytes, or the BPE an
// imported checkpoint carries). The model sees at most its context's last
// tokens.
func (m *Model) Generate(prompt []byte, n int, temperature float64, seed uint64) ([]byte, error) {
	tok := m.Tokenizer()
	ids := tok.Encode(prompt)
	if len(ids) == 0 {
		ids = tok.Encode([]byte("\n"))
	}
	out, err := m.GenerateTokens(ids, n, temperature, seed)
	if err != nil {
		return nil, err
	}
	return tok.Decode(out)
}

// GenerateTokens continues the token ids prompt (not empty) by n tokens, as
// Generate does.
func (m *Model) GenerateTokens(prompt []int32, n int, temperature float64, seed uint64) ([]int32, error) {
	T, V := m.Cfg.Context, m.Cfg.Vocab
	if len(prompt) == 0 {
		return nil, fmt.Errorf("%w: empty prompt", ErrConfig)
	}
	a, err := m.actsFor(1)
	if err != nil {
		return nil, err
	}
	toks := append([]int32(nil), prompt...)
	sampler := NewSampler(temperature, seed)
	ids, tgts := make([]int32, T), make([]int32, T)
	for i := range tgts {
		tgts[i] = -1
	}
	row := make([]float32, V)
	var out []int32
	for range n {
		window := toks
		if len(window) > T {
			window = window[len(window)-T:]
		}
		clear(ids)
		copy(ids, window) // causal: the padding after the window does not change its logits
		if err := m.setBatch(a, ids, tgts); err != nil {
			return nil, err
		}
		if err := m.forwardLogits(a); err != nil {
			return nil, err
		}
		last, err := m.d.Slice(a.logits, (len(window)-1)*V, V)
		if err != nil {
			return nil, err
		}
		if err := kernels.ReadFloat32(m.d, row, last); err != nil {
			return nil, err
		}
		next := sampler.Next(row)
		toks = append(toks, next)
		out = append(out, next)
	}
	return out, nil
}

// Logits runs the model over ids (1 to Context tokens) and returns the
// logits of every position, len(ids) x Vocab, row-major: what a reference
// implementation is checked against.
func (m *Model) Logits(ids []int32) ([]float32, error) {
	T, V := m.Cfg.Context, m.Cfg.Vocab
	if len(ids) == 0 || len(ids) > T {
		return nil, fmt.Errorf("%w: %d tokens: want 1 to the context of %d", ErrConfig, len(ids), T)
	}
	a, err := m.actsFor(1)
	if err != nil {
		return nil, err
	}
	row, tgts := make([]int32, T), make([]int32, T)
	copy(row, ids)
	for i := range tgts {
		tgts[i] = -1
	}
	if err := m.setBatch(a, row, tgts); err != nil {
		return nil, err
	}
	if err := m.forwardLogits(a); err != nil {
		return nil, err
	}
	got, err := m.d.Slice(a.logits, 0, len(ids)*V)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(ids)*V)
	if err := kernels.ReadFloat32(m.d, out, got); err != nil {
		return nil, err
	}
	return out, nil
}

// sample picks a token from logits: the first largest at temperature <= 0,
// else a draw from softmax(logits/temperature) by inverse CDF over probs
// (scratch, grown to the vocabulary). The softmax is float32 through
// expSoftmax; math.Exp in float64 over the vocabulary, on every token of
// every sequence, was an eighth of a batched step.
func sample(logits []float32, temperature float64, rng *rand.Rand, probs *[]float32) int32 {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	if temperature <= 0 {
		return int32(best)
	}
	*probs = growFloats(*probs, len(logits))
	p := *probs
	sum := expSoftmax(p, logits, logits[best], float32(1/temperature))
	// Float32 is in [0, 1), so r < sum; the fallback to best only catches
	// the sum's rounding leaving r a hair above the running total.
	r := rng.Float32() * sum
	for i, q := range p {
		if r -= q; r < 0 {
			return int32(i)
		}
	}
	return int32(best)
}
