package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ark-sched/ark/worker/train/hfimport"
)

// modelImportUsage is `ark model import`'s help text.
const modelImportUsage = `usage: ark model import DIR --out STORE_URI

Reads a GPT-2 model in the Hugging Face layout from DIR (config.json,
model.safetensors, and tokenizer.json or vocab.json + merges.txt) and writes
it as an Ark checkpoint, with its tokenizer, at STORE_URI: a location such as
file:///data/ckpt/gpt2 or s3://bucket/models/gpt2 that holds no checkpoint
yet (S3 endpoint and keys from the AWS_* environment). The checkpoint then
works wherever an Ark checkpoint does:

  ark task generate --ckpt STORE_URI --prompt "Hello" --temperature 0 --tokens 20
`

// runModelImport is `ark model import DIR --out STORE_URI`; args are what
// follows "import". The model command group calls it.
func runModelImport(ctx context.Context, args []string, stdout io.Writer) error {
	_, err := modelImport(ctx, args, stdout)
	return err
}

// modelImport runs the import and returns what it wrote (the catalog
// registration takes the checkpoint URI and shape from it).
func modelImport(ctx context.Context, args []string, stdout io.Writer) (*hfimport.Result, error) {
	f := pflag.NewFlagSet("ark model import", pflag.ContinueOnError)
	f.SetOutput(io.Discard)
	out := f.String("out", "", "where to write the checkpoint: STORE_URI (file:// path or s3://), holding no checkpoint yet")
	if err := f.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			fmt.Fprint(stdout, modelImportUsage)
			return nil, nil
		}
		return nil, usagef("model import: %v\n%s", err, modelImportUsage)
	}
	if f.NArg() != 1 {
		return nil, usagef("model import: want one model directory, got %d arguments\n%s", f.NArg(), modelImportUsage)
	}
	if *out == "" {
		return nil, usagef("model import: --out is required\n%s", modelImportUsage)
	}
	res, err := hfimport.Import(ctx, f.Arg(0), *out)
	if err != nil {
		return nil, fmt.Errorf("model import %s: %w", f.Arg(0), err)
	}
	if err := shareLocalCheckpoint(res.URI); err != nil {
		return nil, err
	}
	c := res.Config
	fmt.Fprintf(stdout, "imported %s: GPT-2, %d layers, %d heads, width %d, context %d, vocab %d (%d parameters)\n",
		res.Model, c.Layers, c.Heads, c.Width, c.Context, c.Vocab, res.Params)
	fmt.Fprintf(stdout, "tokenizer: byte-level BPE from %s, %d tokens\n", res.Tokenizer, res.Tokens)
	fmt.Fprintf(stdout, "checkpoint: %s\n", res.URI)
	return res, nil
}

// shareLocalCheckpoint makes an imported checkpoint in a file:// store
// readable by tasks: they run as the agent's unprivileged task user, and
// the store writes its files for their writer alone. Imported weights are
// published weights, not a tenant's secret.
func shareLocalCheckpoint(uri string) error {
	p, ok := strings.CutPrefix(uri, "file://")
	if !ok {
		return nil
	}
	return filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(path, mode)
	})
}
