package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/worker/train"
	"github.com/ark-sched/ark/worker/train/hfimport"
	"github.com/ark-sched/ark/worker/train/hfimport/hftest"
)

// TestServeImportedModel: a model imported with its BPE tokenizer is
// served with it: prompts are encoded and completions decoded by the BPE,
// as ark task generate does, and token-id prompts are its ids.
func TestServeImportedModel(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := hftest.Write(dir, hftest.Model{Layers: 2, Heads: 2, Width: 32, Context: 32, Vocab: 300, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	res, err := hfimport.Import(ctx, dir, "file://"+t.TempDir()+"/gpt2")
	if err != nil {
		t.Fatal(err)
	}
	d := cpu.New(1)
	t.Cleanup(func() { d.Close() })
	m, _, err := train.LoadModel(ctx, d, res.URI, nil)
	if err != nil {
		t.Fatal(err)
	}
	const prompt = "Hello world and the"
	want, err := m.Generate([]byte(prompt), 6, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	ids := m.Tokenizer().Encode([]byte(prompt))
	if len(ids) >= len(prompt) {
		t.Fatalf("prompt is %d tokens for %d bytes: not the BPE", len(ids), len(prompt))
	}
	// The random model's bytes need not be UTF-8: compare as JSON carries
	// them (each invalid byte a U+FFFD).
	var wantText string
	j, _ := json.Marshal(string(want))
	if err := json.Unmarshal(j, &wantText); err != nil {
		t.Fatal(err)
	}
	url, _, start := testServerOf(t, m, Options{})
	start()

	code, _, out := post(t, url, "/v1/generate", fmt.Sprintf(`{"prompt":%q,"tokens":6,"temperature":0}`, prompt))
	if code != 200 || out["text"] != wantText || out["tokens"].(float64) != 6 {
		t.Fatalf("/v1/generate: %d %v, want text %q", code, out, wantText)
	}
	idsJSON, _ := json.Marshal(ids)
	code, _, out = post(t, url, "/v1/completions", fmt.Sprintf(`{"model":"gpt-test","prompt":%s,"max_tokens":6,"temperature":0}`, idsJSON))
	choices, _ := out["choices"].([]any)
	if code != 200 || len(choices) != 1 || choices[0].(map[string]any)["text"] != wantText {
		t.Fatalf("/v1/completions with token ids: %d %v, want text %q", code, out, wantText)
	}
	code, _, out = post(t, url, "/v1/completions", `{"model":"gpt-test","prompt":[1, 292],"max_tokens":1}`)
	if code != 400 {
		t.Fatalf("token outside the BPE's 292: %d %v", code, out)
	}
}
