package train

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ark-sched/ark/storage/checkpoint"
	"github.com/ark-sched/ark/worker/tokenizer"
)

// ParamTensor is one tensor of the model's flat parameter buffer.
type ParamTensor struct {
	Name string // wte, wpe, h0.ln1w, ..., lnfb
	Size int    // elements
}

// ParamLayout lists the parameter tensors in buffer order (see model.go):
// what an importer fills. Matrices are row-major [out, in] (a linear layer
// computes x·Wᵀ); wte is [Vocab, Width], wpe [Context, Width].
func (c Config) ParamLayout() []ParamTensor {
	specs := c.layout()
	out := make([]ParamTensor, len(specs))
	for i, s := range specs {
		out[i] = ParamTensor{s.name, s.size}
	}
	return out
}

// SaveWeights writes a whole model, its parameters in ParamLayout order and
// its tokenizer (nil: bytes), as step 0 of the STORE_URI/JOB location uri,
// with meta added to the manifest's metadata (model, source, ...); the
// location must hold no checkpoint yet. It
// returns the checkpoint's URI, STORE_URI/JOB/STEP. The checkpoint loads
// like one Ark trained (LoadModel, a fine-tune's base, a server's model);
// it has no optimizer moments, which a fine-tune starts fresh anyway.
func SaveWeights(ctx context.Context, uri string, cfg Config, params []float32, tok *tokenizer.BPE, meta map[string]string) (string, error) {
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	if len(params) != cfg.NumParams() {
		return "", fmt.Errorf("%w: %d parameters, model %+v has %d", ErrConfig, len(params), cfg, cfg.NumParams())
	}
	if tok != nil && tok.VocabSize() > cfg.Vocab {
		return "", fmt.Errorf("%w: tokenizer has %d tokens, the model's vocabulary %d", ErrConfig, tok.VocabSize(), cfg.Vocab)
	}
	store, job, err := OpenJobStore(ctx, uri)
	if err != nil {
		return "", err
	}
	// Writing step 0 over a job's checkpoints would put a different
	// model under the same name as its history.
	if infos, err := checkpoint.List(ctx, store, job); err != nil {
		return "", err
	} else if len(infos) > 0 {
		return "", fmt.Errorf("%w: %s already holds %d checkpoint(s): import into a new location", ErrConfig, uri, len(infos))
	}
	cj, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	md := map[string]string{}
	for k, v := range meta {
		md[k] = v
	}
	md["config"] = string(cj)
	md["layout"] = "whole model: params (no optimizer moments)"
	tensors := []checkpoint.Tensor{{Name: "params", DType: "f32", Shape: []int64{int64(len(params))}, Data: collectiveBytes(params)}}
	tt, err := tokenizerTensor(tok, md)
	if err != nil {
		return "", err
	}
	tensors = append(tensors, tt...)
	st := &checkpoint.State{Job: job, Step: 0, WorldSize: 1, Metadata: md, Shards: []checkpoint.Shard{{Rank: 0, Tensors: tensors}}}
	if _, err := checkpoint.Save(ctx, store, st, checkpoint.SaveOptions{}); err != nil {
		return "", fmt.Errorf("save %s: %w", uri, err)
	}
	storeURI, _, _ := SplitJobURI(uri)
	return checkpoint.JoinURI(storeURI, st.Ref()), nil
}

// CheckpointConfig is the model shape a whole-model checkpoint holds (see
// OpenCheckpoint): what a fine-tune of an imported model, whose shape is
// no preset's, builds its model with.
func CheckpointConfig(ctx context.Context, uri string, keys *CheckpointKeys) (Config, error) {
	c, err := OpenCheckpoint(ctx, uri, keys)
	if err != nil {
		return Config{}, err
	}
	if c.Manifest.Metadata[metaLoRA] != "" {
		return Config{}, fmt.Errorf("%w: checkpoint %s is a lora adapter, not a whole model", ErrConfig, c.Ref)
	}
	var cfg Config
	if err := json.Unmarshal([]byte(c.Manifest.Metadata["config"]), &cfg); err != nil {
		return Config{}, fmt.Errorf("checkpoint %s: model config in metadata: %w", c.Ref, err)
	}
	return cfg, cfg.Validate()
}
