package train

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// Dataset is a text corpus split into a training part and a held-out tail
// for evaluation: its byte-level tokens, and, for a model that carries its
// own tokenizer (an imported one), the same text split the same way in
// that tokenizer's tokens (see tokensFor).
type Dataset struct {
	Train, Val []int32

	text    []byte
	valFrac float64
	mu      sync.Mutex
	byTok   map[Tokenizer]*Dataset
}

// NewDataset tokenizes text and keeps the last valFrac of it for
// evaluation.
func NewDataset(text []byte, valFrac float64) *Dataset {
	ds := split(Encode(text), valFrac)
	ds.text, ds.valFrac = text, valFrac
	return ds
}

func split(ids []int32, valFrac float64) *Dataset {
	nVal := int(float64(len(ids)) * valFrac)
	return &Dataset{Train: ids[:len(ids)-nVal], Val: ids[len(ids)-nVal:]}
}

// tokensFor returns the dataset in tok's tokens: ds itself for bytes (nil),
// else the text tokenized by tok once and kept. Eval and training call it
// with their model's tokenizer, so one Dataset serves a byte-level base
// and an imported model alike.
func (ds *Dataset) tokensFor(tok Tokenizer) *Dataset {
	if tok == nil {
		return ds
	}
	if _, ok := tok.(ByteTokenizer); ok {
		return ds
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if t, ok := ds.byTok[tok]; ok {
		return t
	}
	t := split(tok.Encode(ds.text), ds.valFrac)
	if ds.byTok == nil {
		ds.byTok = map[Tokenizer]*Dataset{}
	}
	ds.byTok[tok] = t
	return t
}

// Batch fills ids and targets (B x T each) with rank's batch for step. Each
// rank samples windows from its own contiguous shard of the training text,
// with a generator seeded by (seed, step, rank): the data order is a pure
// function of the step, so a resumed run sees the batches the interrupted
// run would have seen.
func (ds *Dataset) Batch(seed uint64, step, rank, world, B, T int, ids, targets []int32) error {
	shard := len(ds.Train) / world
	lo := rank * shard
	if shard < T+2 {
		return fmt.Errorf("%w: training text of %d tokens is too short for %d ranks x context %d", ErrConfig, len(ds.Train), world, T)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(step)<<20|uint64(rank)))
	for b := range B {
		off := lo + rng.IntN(shard-T-1)
		copy(ids[b*T:(b+1)*T], ds.Train[off:off+T])
		copy(targets[b*T:(b+1)*T], ds.Train[off+1:off+T+1])
	}
	return nil
}

// evalWindows returns the start offsets of the held-out windows: up to max
// non-overlapping windows of T+1 tokens.
func (ds *Dataset) evalWindows(T, max int) []int {
	var offs []int
	for off := 0; off+T+1 <= len(ds.Val) && len(offs) < max; off += T {
		offs = append(offs, off)
	}
	return offs
}
