package train

import (
	"fmt"

	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/worker/tokenizer"
)

// Tokenizer turns text into a model's token ids and back. A model trained
// by Ark uses bytes (ByteTokenizer); an imported one carries its BPE in
// its checkpoint.
type Tokenizer interface {
	Encode(text []byte) []int32
	// Decode fails on an id outside the vocabulary.
	Decode(ids []int32) ([]byte, error)
	VocabSize() int
}

// ByteTokenizer is Ark's own: one token per byte.
type ByteTokenizer struct{}

func (ByteTokenizer) Encode(text []byte) []int32 { return Encode(text) }

func (ByteTokenizer) Decode(ids []int32) ([]byte, error) {
	for i, id := range ids {
		if id < 0 || id >= ByteVocab {
			return nil, fmt.Errorf("%w: token %d (at %d) is not a byte", ErrConfig, id, i)
		}
	}
	return Decode(ids), nil
}

func (ByteTokenizer) VocabSize() int { return ByteVocab }

// Checkpoint metadata and tensor of a model's tokenizer. A checkpoint
// without metaTokenizer is byte-level (every checkpoint Ark trained before
// imports existed).
const (
	metaTokenizer       = "tokenizer"      // "bpe": tensor tokenizerTensor holds a tokenizer.json
	tokenizerBPE        = "bpe"            // the one value of metaTokenizer so far
	tokenizerTensorName = "tokenizer.json" // u8 bytes
)

// Tokenizer is the model's tokenizer: the one its checkpoint carried, else
// bytes.
func (m *Model) Tokenizer() Tokenizer {
	if m.tok != nil {
		return m.tok
	}
	return ByteTokenizer{}
}

// tokenizer is the model's BPE as a Tokenizer, nil for bytes (a nil
// *BPE in the interface would not compare nil).
func (m *Model) tokenizer() Tokenizer {
	if m.tok == nil {
		return nil
	}
	return m.tok
}

// SetTokenizer sets the model's tokenizer (nil: bytes); its vocabulary
// must fit the model's.
func (m *Model) SetTokenizer(t *tokenizer.BPE) error {
	if t == nil {
		m.tok = nil
		return nil
	}
	if t.VocabSize() > m.Cfg.Vocab {
		return fmt.Errorf("%w: tokenizer has %d tokens, the model's vocabulary %d", ErrConfig, t.VocabSize(), m.Cfg.Vocab)
	}
	m.tok = t
	return nil
}

// tokenizerOf reads the tokenizer a checkpoint carries; nil for bytes.
func tokenizerOf(st *checkpoint.State) (*tokenizer.BPE, error) {
	switch kind := st.Metadata[metaTokenizer]; kind {
	case "":
		return nil, nil
	case tokenizerBPE:
		data, ok := stateTensors(st)[tokenizerTensorName]
		if !ok {
			return nil, fmt.Errorf("%w: checkpoint %s: metadata says tokenizer %q but there is no tensor %q", ErrConfig, st.Ref(), kind, tokenizerTensorName)
		}
		t, err := tokenizer.ParseTokenizerJSON(data)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", st.Ref(), err)
		}
		return t, nil
	default:
		return nil, fmt.Errorf("%w: checkpoint %s: tokenizer %q (this Ark knows %q)", ErrConfig, st.Ref(), kind, tokenizerBPE)
	}
}

// tokenizerTensor describes tok for a checkpoint: metadata to add and the
// tensor to store; none for bytes (nil).
func tokenizerTensor(tok *tokenizer.BPE, meta map[string]string) ([]checkpoint.Tensor, error) {
	if tok == nil {
		return nil, nil
	}
	data, err := tok.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode tokenizer: %w", err)
	}
	meta[metaTokenizer] = tokenizerBPE
	return []checkpoint.Tensor{{Name: tokenizerTensorName, DType: "u8", Shape: []int64{int64(len(data))}, Data: data}}, nil
}

// Tokenizer is the decoded model's tokenizer.
func (d *Decoder) Tokenizer() Tokenizer { return d.m.Tokenizer() }
