package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/worker/train"
	"github.com/ark-sched/ark/worker/train/hfimport/hftest"
)

// TestModelImportThenGenerate: `ark model import` writes a checkpoint that
// `ark task generate` continues with the imported BPE tokenizer.
func TestModelImportThenGenerate(t *testing.T) {
	ctx := context.Background()
	dir, out := t.TempDir(), "file://"+t.TempDir()+"/gpt2"
	if err := hftest.Write(dir, hftest.Model{Layers: 2, Heads: 2, Width: 32, Context: 16, Vocab: 300, Seed: 5, Tokenizer: "files"}); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := runModelImport(ctx, []string{dir, "--out", out}, &stdout); err != nil {
		t.Fatal(err)
	}
	uri := out + "/000000000000"
	for _, want := range []string{"2 layers, 2 heads, width 32, context 16, vocab 300", "BPE from vocab.json+merges.txt, 292 tokens", "checkpoint: " + uri} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("import output lacks %q:\n%s", want, stdout.String())
		}
	}

	const prompt = "Hello world and the"
	gen := newTaskGenerateCmd()
	var got bytes.Buffer
	gen.SetOut(&got)
	gen.SetArgs([]string{"--ckpt", out, "--prompt", prompt, "--temperature", "0", "--tokens", "5", "--device", "cpu"})
	if err := gen.ExecuteContext(ctx); err != nil {
		t.Fatal(err)
	}

	m, _, err := train.LoadModel(ctx, cpu.New(1), uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := m.Tokenizer().Encode([]byte(prompt))
	if len(ids) >= len(prompt) {
		t.Fatalf("prompt of %d bytes is %d tokens: not the BPE", len(prompt), len(ids))
	}
	cont, err := m.GenerateTokens(ids, 5, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	text, err := m.Tokenizer().Decode(cont)
	if err != nil {
		t.Fatal(err)
	}
	if want := prompt + string(text) + "\n"; got.String() != want {
		t.Fatalf("generate printed %q, want the prompt and its greedy continuation of tokens %v, %q", got.String(), cont, want)
	}
}

func TestModelImportUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "want one model directory, got 0 arguments"},
		{[]string{"a", "b", "--out", "file:///x/y"}, "got 2 arguments"},
		{[]string{t.TempDir()}, "--out is required"},
		{[]string{"--nope"}, "unknown flag: --nope"},
		{[]string{t.TempDir() + "/missing", "--out", "file://" + t.TempDir() + "/m"}, "config.json: no such file or directory"},
	}
	for _, tt := range tests {
		err := runModelImport(context.Background(), tt.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.args, err, tt.want)
		}
	}
}
