package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/worker/train"
)

// TestBuiltinModelsMatchTrainer: the models a spec may name are the ones
// the trainer has.
func TestBuiltinModelsMatchTrainer(t *testing.T) {
	if !slices.Equal(spec.BuiltinModels, train.Presets()) {
		t.Errorf("spec.BuiltinModels %v, worker/train presets %v", spec.BuiltinModels, train.Presets())
	}
}

// TestBuiltinSpecErrorsAtSubmit: a builtin task naming an unknown model or
// a file this machine lacks is refused before it reaches the cluster
// (exit 2, field paths, the known models), not a run that fails on a node.
// Against a remote cluster a missing file is only a warning.
func TestBuiltinSpecErrorsAtSubmit(t *testing.T) {
	dir := t.TempDir()
	data, _ := filepath.Abs("../../examples/data/shakespeare.txt")
	write := func(name, builtin string) string {
		p := filepath.Join(dir, name)
		body := "name: ft\nkind: finetune\nresources: {gpus: 1}\ntask:\n  driver: builtin\n  builtin: " + builtin + "\n"
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	huge := write("huge.yaml", "{model: gpt-huge, data: "+data+"}")
	nodata := write("nodata.yaml", "{model: gpt-tiny, data: "+filepath.Join(dir, "missing.txt")+", base: file://"+filepath.Join(dir, "nobase")+"}")
	good := write("good.yaml", "{model: gpt-tiny, data: "+data+"}")
	closed := "127.0.0.1:1" // nothing listens: the spec must be refused before any dial

	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown model on submit", []string{"job", "submit", huge, "--addr", closed}, exitUsage,
			[]string{"task.builtin.model: unknown model \"gpt-huge\"; the builtin models are gpt-small, gpt-test, gpt-tiny"}},
		{"unknown model on validate", []string{"job", "validate", huge}, exitUsage, []string{"unknown model \"gpt-huge\""}},
		{"missing files on a local cluster", []string{"job", "submit", nodata, "--addr", closed}, exitUsage,
			[]string{"task.builtin.data: " + filepath.Join(dir, "missing.txt") + " does not exist", "task.builtin.base: " + filepath.Join(dir, "nobase") + " does not exist"}},
		{"missing files on a remote cluster warn", []string{"job", "validate", nodata, "--addr", "http://gpu-cluster.example:4680"}, exitOK,
			[]string{"warning: task.builtin.data: " + filepath.Join(dir, "missing.txt") + " does not exist here; the nodes must have it"}},
		{"a good spec", []string{"job", "validate", good}, exitOK, []string{"is valid: finetune job \"ft\""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, _ := runArk(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d: %s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output %q lacks %q", out, w)
				}
			}
			// A refused spec never reaches the network; a valid one is
			// offered to a cluster when one answers (job validate).
			if tc.code == exitUsage && strings.Contains(out, "no Ark server") {
				t.Errorf("the CLI dialled the cluster for a spec it should refuse: %s", out)
			}
		})
	}
}
