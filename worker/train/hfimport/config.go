package hfimport

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/ark-sched/ark/worker/train"
)

// ErrUnsupported: the model is not one Ark's runtime computes exactly.
var ErrUnsupported = errors.New("hfimport: unsupported model")

// hfConfig is the part of a GPT-2 config.json the import reads. Pointers
// tell "absent" (the transformers default applies) from a value.
type hfConfig struct {
	ModelType         string   `json:"model_type"`
	NLayer            int      `json:"n_layer"`
	NHead             int      `json:"n_head"`
	NEmbd             int      `json:"n_embd"`
	NPositions        int      `json:"n_positions"`
	NCtx              int      `json:"n_ctx"` // older files
	VocabSize         int      `json:"vocab_size"`
	NInner            *int     `json:"n_inner"`
	LayerNormEpsilon  *float64 `json:"layer_norm_epsilon"`
	Activation        *string  `json:"activation_function"`
	ScaleAttnWeights  *bool    `json:"scale_attn_weights"`
	ScaleByLayerIdx   *bool    `json:"scale_attn_by_inverse_layer_idx"`
	TieWordEmbeddings *bool    `json:"tie_word_embeddings"`
	NameOrPath        string   `json:"_name_or_path"`
}

// tanhGELUs are the activation names transformers computes as GPT-2's tanh
// approximation, which is what Ark's GELU kernel is.
var tanhGELUs = map[string]bool{"gelu_new": true, "gelu_pytorch_tanh": true, "gelu_fast": true}

// parseConfig reads config.json into Ark's model shape, refusing settings
// the runtime would not compute the same way.
func parseConfig(data []byte) (train.Config, hfConfig, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return train.Config{}, h, fmt.Errorf("config.json: %w", err)
	}
	bad := func(field string, got any, want string) error {
		return fmt.Errorf("%w: config.json: %s is %v, Ark runs %s", ErrUnsupported, field, got, want)
	}
	if h.ModelType != "gpt2" {
		return train.Config{}, h, bad("model_type", fmt.Sprintf("%q", h.ModelType), `"gpt2" only`)
	}
	ctx := h.NPositions
	if ctx == 0 {
		ctx = h.NCtx
	}
	cfg := train.Config{Layers: h.NLayer, Heads: h.NHead, Width: h.NEmbd, Context: ctx, Vocab: h.VocabSize}
	if err := cfg.Validate(); err != nil {
		return cfg, h, fmt.Errorf("config.json: n_layer, n_head, n_embd, n_positions, vocab_size: %w", err)
	}
	switch {
	case h.NInner != nil && *h.NInner != 4*h.NEmbd:
		return cfg, h, bad("n_inner", *h.NInner, fmt.Sprintf("4 x n_embd = %d", 4*h.NEmbd))
	case h.LayerNormEpsilon != nil && math.Abs(*h.LayerNormEpsilon-1e-5) > 1e-12:
		return cfg, h, bad("layer_norm_epsilon", *h.LayerNormEpsilon, "1e-5")
	case h.Activation != nil && !tanhGELUs[*h.Activation]:
		return cfg, h, bad("activation_function", fmt.Sprintf("%q", *h.Activation), "the tanh GELU (gelu_new)")
	case h.ScaleAttnWeights != nil && !*h.ScaleAttnWeights:
		return cfg, h, bad("scale_attn_weights", false, "attention scaled by 1/sqrt(head size)")
	case h.ScaleByLayerIdx != nil && *h.ScaleByLayerIdx:
		return cfg, h, bad("scale_attn_by_inverse_layer_idx", true, "no per-layer attention scaling")
	case h.TieWordEmbeddings != nil && !*h.TieWordEmbeddings:
		return cfg, h, bad("tie_word_embeddings", false, "the output layer tied to wte")
	}
	return cfg, h, nil
}
