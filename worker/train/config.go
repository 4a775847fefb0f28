package train

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrConfig: a model configuration or option is invalid.
var ErrConfig = errors.New("train: invalid configuration")

// Config is the shape of a GPT-style decoder: pre-layernorm blocks of
// causal self-attention and a 4x GELU MLP, learned positions, output
// embedding tied to the token embedding.
type Config struct {
	Layers  int `json:"layers"`
	Heads   int `json:"heads"`
	Width   int `json:"width"`   // C, the residual width
	Context int `json:"context"` // T, the longest sequence
	Vocab   int `json:"vocab"`   // 256: byte-level tokens
}

// presets are the builtin model names a spec's task.builtin.model may use.
var presets = map[string]Config{
	// Learns visible structure of English text in a few hundred steps on
	// two CPU cores.
	"gpt-tiny":  {Layers: 2, Heads: 4, Width: 64, Context: 64, Vocab: ByteVocab},
	"gpt-small": {Layers: 4, Heads: 4, Width: 128, Context: 128, Vocab: ByteVocab},
	// For tests: a few thousand parameters.
	"gpt-test": {Layers: 2, Heads: 2, Width: 16, Context: 16, Vocab: ByteVocab},
}

// Presets lists the builtin model names.
func Presets() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Preset returns the configuration of a builtin model name.
func Preset(name string) (Config, error) {
	c, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("%w: unknown model %q (want one of %s)", ErrConfig, name, strings.Join(Presets(), ", "))
	}
	return c, nil
}

// Validate checks the dimensions.
func (c Config) Validate() error {
	switch {
	case c.Layers < 1, c.Heads < 1, c.Width < 1, c.Context < 1, c.Vocab < 1:
		return fmt.Errorf("%w: every dimension must be >= 1: %+v", ErrConfig, c)
	case c.Width%c.Heads != 0:
		return fmt.Errorf("%w: width %d not divisible by heads %d", ErrConfig, c.Width, c.Heads)
	}
	return nil
}

// ByteVocab is the vocabulary of the byte-level tokenizer.
const ByteVocab = 256

// Encode is the byte-level tokenizer: one token per byte.
func Encode(s []byte) []int32 {
	out := make([]int32, len(s))
	for i, b := range s {
		out[i] = int32(b)
	}
	return out
}

// Decode is the inverse of Encode.
func Decode(ids []int32) []byte {
	out := make([]byte, len(ids))
	for i, id := range ids {
		out[i] = byte(id)
	}
	return out
}

// shape is c in a few words ("2 layers x 64 wide, 4 heads, context 64,
// vocab 256"), for errors that compare two models.
func (c Config) shape() string {
	return fmt.Sprintf("%d layers x %d wide, %d heads, context %d, vocab %d", c.Layers, c.Width, c.Heads, c.Context, c.Vocab)
}
