package tokenizer

import (
	"errors"
	"fmt"
	"sync"
)

// ErrTokenizer: a tokenizer file is malformed or not a byte-level BPE.
var ErrTokenizer = errors.New("tokenizer")

// pair is two adjacent symbols.
type pair struct{ a, b string }

// BPE is a byte-level BPE tokenizer. It is safe for concurrent use.
type BPE struct {
	vocab  map[string]int32 // symbol -> id
	tokens []string         // id -> symbol
	merges []pair           // in rank order
	ranks  map[pair]int

	mu    sync.Mutex
	cache map[string][]int32 // pre-token -> ids
}

// maxCache bounds the pre-token cache; past it the cache starts over.
const maxCache = 1 << 16

// NewBPE builds a tokenizer from its vocabulary (symbol -> id) and merges
// (in rank order). It refuses what would make Encode or Decode fail later:
// ids that are negative or repeated, a symbol that is not made of byte
// characters, a byte without a symbol, a repeated merge, a merge whose parts or result are
// not in the vocabulary.
func NewBPE(vocab map[string]int32, merges [][2]string) (*BPE, error) {
	t := &BPE{vocab: vocab, ranks: make(map[pair]int, len(merges)), cache: map[string][]int32{}}
	n := int32(0)
	for sym, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("%w: vocab: %q has id %d", ErrTokenizer, sym, id)
		}
		n = max(n, id+1)
	}
	if int(n) > len(vocab) {
		// Real vocabularies are dense; a hole would be an id Decode
		// cannot name.
		return nil, fmt.Errorf("%w: vocab: ids run to %d but there are %d entries (repeated or missing ids)", ErrTokenizer, n-1, len(vocab))
	}
	t.tokens = make([]string, n)
	for sym, id := range vocab {
		if _, ok := symbolBytes(nil, sym); !ok {
			return nil, fmt.Errorf("%w: vocab: %q (id %d) is not a byte-level symbol", ErrTokenizer, sym, id)
		}
		t.tokens[id] = sym
	}
	for b := range 256 {
		if _, ok := vocab[string(byteToRune[b])]; !ok {
			return nil, fmt.Errorf("%w: vocab: byte 0x%02x (%q) has no token", ErrTokenizer, b, string(byteToRune[b]))
		}
	}
	for i, m := range merges {
		for _, part := range []string{m[0], m[1], m[0] + m[1]} {
			if _, ok := vocab[part]; !ok {
				return nil, fmt.Errorf("%w: merges[%d] %q %q: %q is not in the vocab", ErrTokenizer, i, m[0], m[1], part)
			}
		}
		p := pair{m[0], m[1]}
		if r, dup := t.ranks[p]; dup {
			// GPT-2 would keep the later rank, Hugging Face the earlier:
			// a file that depends on which is ambiguous.
			return nil, fmt.Errorf("%w: merges[%d] %q %q repeats merges[%d]", ErrTokenizer, i, m[0], m[1], r)
		}
		t.ranks[p] = i
		t.merges = append(t.merges, p)
	}
	return t, nil
}

// VocabSize is the number of ids.
func (t *BPE) VocabSize() int { return len(t.tokens) }

// Encode tokenizes text.
func (t *BPE) Encode(text []byte) []int32 {
	var out []int32
	for _, piece := range Pretokenize(string(text)) {
		out = append(out, t.encodePiece(piece)...)
	}
	return out
}

func (t *BPE) encodePiece(piece string) []int32 {
	t.mu.Lock()
	ids, ok := t.cache[piece]
	t.mu.Unlock()
	if ok {
		return ids
	}
	syms := t.merge(piece)
	ids = make([]int32, len(syms))
	for i, s := range syms {
		ids[i] = t.vocab[s] // NewBPE checked every byte and merge result is in the vocab
	}
	t.mu.Lock()
	if len(t.cache) >= maxCache {
		clear(t.cache)
	}
	t.cache[piece] = ids
	t.mu.Unlock()
	return ids
}

// merge is GPT-2's bpe(): start from one symbol per byte, and while some
// adjacent pair has a rank, merge every occurrence of the lowest-ranked
// pair, left to right.
func (t *BPE) merge(piece string) []string {
	syms := make([]string, 0, len(piece))
	for _, r := range ByteSymbols([]byte(piece)) {
		syms = append(syms, string(r))
	}
	for len(syms) > 1 {
		best, bestRank := pair{}, -1
		for i := 0; i+1 < len(syms); i++ {
			p := pair{syms[i], syms[i+1]}
			if r, ok := t.ranks[p]; ok && (bestRank < 0 || r < bestRank) {
				best, bestRank = p, r
			}
		}
		if bestRank < 0 {
			break
		}
		next := syms[:0:0]
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == best.a && syms[i+1] == best.b {
				next = append(next, best.a+best.b)
				i++
				continue
			}
			next = append(next, syms[i])
		}
		syms = next
	}
	return syms
}

// Decode maps ids back to bytes; an id outside the vocabulary is an error.
func (t *BPE) Decode(ids []int32) ([]byte, error) {
	var out []byte
	for i, id := range ids {
		if id < 0 || int(id) >= len(t.tokens) {
			return nil, fmt.Errorf("%w: token %d (at %d) is outside the vocabulary of %d", ErrTokenizer, id, i, len(t.tokens))
		}
		out, _ = symbolBytes(out, t.tokens[id]) // NewBPE checked every symbol
	}
	return out, nil
}
