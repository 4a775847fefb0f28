package hfimport

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ark-sched/ark/kernels/cpu"
	"github.com/ark-sched/ark/worker/train"
	"github.com/ark-sched/ark/worker/train/hfimport/hftest"
)

// numpyPython returns a python3 that imports numpy, or skips (fails under
// CI=true, where .ci installs python3-numpy, so the check cannot stop
// running unseen).
func numpyPython(t *testing.T) string {
	t.Helper()
	var tried []string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			tried = append(tried, p+": not found")
			continue
		}
		if out, err := exec.Command(path, "-c", "import numpy").CombinedOutput(); err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v %s", path, err, strings.TrimSpace(string(out))))
			continue
		}
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but no python3 with numpy for the reference forward pass: %s", strings.Join(tried, "; "))
	}
	t.Skipf("no python3 with numpy (install python3-numpy); reference check not run: %s", strings.Join(tried, "; "))
	return ""
}

type reference struct {
	Logits [][]float64 `json:"logits"`
	Greedy []int32     `json:"greedy"`
}

func runReference(t *testing.T, py, dir string, ids []int32, steps int) reference {
	t.Helper()
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	cmd := exec.Command(py, filepath.Join("testdata", "gpt2_ref.py"), dir, strings.Join(s, ","), strconv.Itoa(steps))
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("reference: %v\n%s", err, stderr)
	}
	var r reference
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("reference output: %v", err)
	}
	return r
}

// TestLogitsMatchReference imports random GPT-2s in the Hugging Face
// layout and checks Ark's logits, and its greedy continuation, against an
// independent NumPy forward pass over the same files.
func TestLogitsMatchReference(t *testing.T) {
	py := numpyPython(t)
	const tol = 1e-4
	tests := []struct {
		name string
		m    hftest.Model
	}{
		{"f32 hub names", hftest.Model{Layers: 2, Heads: 2, Width: 32, Context: 16, Vocab: 300, Seed: 1}},
		{"bf16 prefixed with buffers", hftest.Model{Layers: 2, Heads: 4, Width: 32, Context: 16, Vocab: 292, Seed: 2, Prefix: true, BF16: true, Buffers: true, Tokenizer: "files"}},
		{"one layer wide heads", hftest.Model{Layers: 1, Heads: 1, Width: 24, Context: 12, Vocab: 300, Seed: 3, Tokenizer: "json-pairs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			if err := hftest.Write(dir, tt.m); err != nil {
				t.Fatal(err)
			}
			res, err := Import(ctx, dir, "file://"+t.TempDir()+"/gpt2")
			if err != nil {
				t.Fatal(err)
			}
			m, _, err := train.LoadModel(ctx, cpu.New(1), res.URI, nil)
			if err != nil {
				t.Fatal(err)
			}
			// A prompt that fills the context but for the 4 tokens the
			// greedy check adds: every position's logits are compared.
			prompt := m.Tokenizer().Encode([]byte("Hello world, the king is singing of the world and"))
			prompt = prompt[:tt.m.Context-4]
			ref := runReference(t, py, dir, prompt, 4)
			got, err := m.Logits(prompt)
			if err != nil {
				t.Fatal(err)
			}
			V := tt.m.Vocab
			if len(ref.Logits) != len(prompt) || len(ref.Logits[0]) != V {
				t.Fatalf("reference logits %d x %d, want %d x %d", len(ref.Logits), len(ref.Logits[0]), len(prompt), V)
			}
			var worst float64
			var at [2]int
			var scale float64
			for i, row := range ref.Logits {
				for j, want := range row {
					scale = max(scale, math.Abs(want))
					if d := math.Abs(float64(got[i*V+j]) - want); d > worst {
						worst, at = d, [2]int{i, j}
					}
				}
			}
			t.Logf("%d x %d logits (largest |logit| %.3f): largest difference from the NumPy reference %.3g at position %d token %d",
				len(prompt), V, scale, worst, at[0], at[1])
			if worst > tol {
				t.Fatalf("logit differs from the reference by %.3g (> %g) at position %d token %d: ark %v, numpy %v",
					worst, tol, at[0], at[1], got[at[0]*V+at[1]], ref.Logits[at[0]][at[1]])
			}
			gen, err := m.GenerateTokens(prompt, len(ref.Greedy), 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(gen, ref.Greedy) {
				t.Fatalf("greedy continuation %v, reference %v", gen, ref.Greedy)
			}
			t.Logf("greedy continuation of %v: %v (matches the reference)", prompt, gen)
		})
	}
}
