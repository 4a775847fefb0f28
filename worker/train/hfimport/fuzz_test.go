package hfimport

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ark-sched/ark/worker/train"
	"github.com/ark-sched/ark/worker/train/hfimport/hftest"
)

// FuzzSafetensors: whatever model.safetensors holds, reading it and
// assembling parameters returns an error or parameters, never panics
// (the container library parses the header; this code trusts its shapes).
func FuzzSafetensors(f *testing.F) {
	dir := f.TempDir()
	m := hftest.Model{Layers: 1, Heads: 1, Width: 4, Context: 2, Vocab: 292, Seed: 1, Buffers: true}
	if err := hftest.Write(dir, m); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(good[:8])
	f.Add([]byte{})
	cfg := train.Config{Layers: 1, Heads: 1, Width: 4, Context: 2, Vocab: 292}
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := openTensors(data)
		if err != nil {
			return
		}
		p, err := ts.params(cfg)
		if err == nil && len(p) != cfg.NumParams() {
			t.Fatalf("%d parameters, want %d", len(p), cfg.NumParams())
		}
	})
}
