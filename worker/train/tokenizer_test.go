package train

import (
	"strings"
	"testing"

	"github.com/ark-sched/ark/storage/checkpoint"
)

func TestTokenizerOf(t *testing.T) {
	state := func(meta map[string]string, tensors ...checkpoint.Tensor) *checkpoint.State {
		return &checkpoint.State{Job: "m", Metadata: meta, Shards: []checkpoint.Shard{{Tensors: tensors}}}
	}
	tests := []struct {
		name string
		st   *checkpoint.State
		want string // error; "" for bytes
	}{
		{"byte-level (no key)", state(map[string]string{"config": "{}"}), ""},
		{"unknown kind", state(map[string]string{metaTokenizer: "sentencepiece"}), `tokenizer "sentencepiece" (this Ark knows "bpe")`},
		{"bpe without its tensor", state(map[string]string{metaTokenizer: tokenizerBPE}), `no tensor "tokenizer.json"`},
		{"bpe tensor corrupt", state(map[string]string{metaTokenizer: tokenizerBPE}, checkpoint.Tensor{Name: tokenizerTensorName, Data: []byte("{")}), "tokenizer.json"},
	}
	for _, tt := range tests {
		tok, err := tokenizerOf(tt.st)
		switch {
		case tt.want == "" && (err != nil || tok != nil):
			t.Errorf("%s: %v, %v; want bytes", tt.name, tok, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}
