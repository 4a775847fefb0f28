package hfimport

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ark-sched/ark/worker/tokenizer"
	"github.com/ark-sched/ark/worker/train"
)

// Result is what Import wrote.
type Result struct {
	URI       string       // the checkpoint, STORE_URI/JOB/STEP
	Config    train.Config // Ark's model shape
	Params    int
	Tokens    int    // the tokenizer's vocabulary
	Tokenizer string // the file(s) it came from
	Model     string // the config's _name_or_path, else the directory's name
}

// Import reads the GPT-2 model in dir and writes it as an Ark checkpoint
// at out, a STORE_URI/JOB location that holds no checkpoint yet.
func Import(ctx context.Context, dir, out string) (*Result, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dir, err)
		}
		return b, nil
	}
	cj, err := read("config.json")
	if err != nil {
		return nil, err
	}
	cfg, h, err := parseConfig(cj)
	if err != nil {
		return nil, err
	}
	tok, tokFrom, err := readTokenizer(dir)
	if err != nil {
		return nil, err
	}
	if tok.VocabSize() > cfg.Vocab {
		return nil, fmt.Errorf("%w: %s has %d tokens, config.json vocab_size %d", ErrUnsupported, tokFrom, tok.VocabSize(), cfg.Vocab)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors.index.json")); err == nil {
		return nil, fmt.Errorf("%w: %s: sharded safetensors (model.safetensors.index.json) are not supported; GPT-2's sizes ship as one model.safetensors", ErrUnsupported, dir)
	}
	data, err := read("model.safetensors")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (only safetensors weights are read: convert pytorch_model.bin first)", err)
	}
	if err != nil {
		return nil, err
	}
	ts, err := openTensors(data)
	if err != nil {
		return nil, err
	}
	params, err := ts.params(cfg)
	if err != nil {
		return nil, err
	}
	name := h.NameOrPath
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}
	abs, _ := filepath.Abs(dir)
	meta := map[string]string{"model": name, "architecture": "gpt2", "source": "hf-import " + abs}
	uri, err := train.SaveWeights(ctx, out, cfg, params, tok, meta)
	if err != nil {
		return nil, err
	}
	return &Result{URI: uri, Config: cfg, Params: len(params), Tokens: tok.VocabSize(), Tokenizer: tokFrom, Model: name}, nil
}

// readTokenizer loads tokenizer.json, else vocab.json and merges.txt.
func readTokenizer(dir string) (*tokenizer.BPE, string, error) {
	if b, err := os.ReadFile(filepath.Join(dir, "tokenizer.json")); err == nil {
		t, err := tokenizer.ParseTokenizerJSON(b)
		return t, "tokenizer.json", err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	v, verr := os.ReadFile(filepath.Join(dir, "vocab.json"))
	m, merr := os.ReadFile(filepath.Join(dir, "merges.txt"))
	if verr != nil || merr != nil {
		return nil, "", fmt.Errorf("%w: %s has no tokenizer: want tokenizer.json, or vocab.json and merges.txt", ErrUnsupported, dir)
	}
	t, err := tokenizer.ParseVocabMerges(v, m)
	return t, "vocab.json+merges.txt", err
}
