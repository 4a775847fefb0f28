package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/worker/train/hfimport/hftest"
)

// TestSystemCatalog drives the model catalog through the CLI, as separate
// processes: a base registered by hand, a full fine-tune and a LoRA
// fine-tune that register their results with lineage, an eval job over
// catalog versions whose results are filed with them (ark model compare),
// a version in use that cannot be removed, and a removal that deletes the
// data the catalog's job wrote.
func TestSystemCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	cpuHeavy(t)
	s := newSrv(t)
	s.start(t)
	startAgents(t, s.http, "2xH200:141Gi", []string{"a"})
	c, err := client.New(s.http)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base, _ := filepath.Abs("../../examples/base/gpt-tiny")
	data, _ := filepath.Abs("../../examples/data/shakespeare.txt")
	wait := func(id string) *api.Job {
		t.Helper()
		var j *api.Job
		waitUntil(t, 120*time.Second, "job "+id+" to end", func() bool {
			var err error
			j, _, err = c.Job(ctx, id, 0, 0)
			return err == nil && j.Terminal()
		})
		if j.Status != api.JobSucceeded {
			logs, _ := cli(t, s.http, "job", "logs", id)
			t.Fatalf("job %s %s: %s\n%s", id, j.Status, j.Reason, logs)
		}
		return j
	}
	// model is what ark model show -o json prints, or an empty model.
	model := func(name string) *api.Model {
		t.Helper()
		var m api.Model
		out, err := cli(t, s.http, "model", "show", name, "-o", "json")
		if err == nil {
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("model show -o json: %v\n%s", err, out)
			}
		}
		return &m
	}

	out, err := cli(t, s.http, "model", "register", "shake", "--uri", "file://"+base, "--arch", "gpt-tiny", "--description", "gpt-tiny on tinyshakespeare")
	if err != nil || !strings.Contains(out, "registered shake@1") {
		t.Fatalf("register: %v\n%s", err, out)
	}

	// A reference to a model that does not exist is a spec error with
	// its field path, before anything runs.
	spec := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(spec, []byte("name: bad\nkind: inference\nresources: {gpus: 1}\ntask: {driver: builtin, builtin: {base: \"model://shak\"}}\n"), 0o644)
	if out, err := cli(t, s.http, "job", "submit", spec); err == nil || !strings.Contains(err.Error(), `task.builtin.base: "model://shak": no model "shak" in namespace "default"`) || !strings.Contains(err.Error(), `did you mean "shake"?`) {
		t.Errorf("unknown model: %v\n%s", err, out)
	}

	// A full fine-tune from the catalog base: no model field (the base
	// brings its architecture), the result registered as shake@2.
	ft := submitSpec(t, s.http, fmt.Sprintf(`name: cat-ft
kind: finetune
resources: {gpus: 1, cpu: 1, memory: 256Mi}
task:
  driver: builtin
  builtin: {base: "model://shake@1", data: %s, steps: 20, batch: 4, lr: 1e-3}
output: {model: shake, description: fine-tuned on the first half}
`, data))
	j := wait(ft)
	if len(j.Models) != 1 || j.Models[0].Model != "shake" || j.Models[0].Version != 1 || j.Spec.Task.Builtin.Model != "gpt-tiny" {
		t.Fatalf("the job's resolved models: %+v, model %q", j.Models, j.Spec.Task.Builtin.Model)
	}
	waitUntil(t, 30*time.Second, "the fine-tune registered as shake@2", func() bool { return len(model("shake").Versions) == 2 })
	v2 := model("shake").Versions[1]
	if l := v2.Lineage; v2.Version != 2 || l == nil || l.Parent != "shake@1" || l.Job != ft || l.Method != api.MethodFull || l.FinalLoss == nil || l.Steps != 20 || v2.Adapter {
		t.Fatalf("shake@2: %+v lineage %+v", v2, v2.Lineage)
	}
	if j, _, _ := c.Job(ctx, ft, 0, 0); j.Output != "shake@2" {
		t.Errorf("job output %q, want shake@2", j.Output)
	}

	// A LoRA adapter of the base, registered as a model of its own.
	lft := submitSpec(t, s.http, fmt.Sprintf(`name: cat-lora
kind: finetune
resources: {gpus: 1, cpu: 1, memory: 256Mi}
task:
  driver: builtin
  builtin: {base: "model://shake@1", data: %s, steps: 20, batch: 4, lr: 3e-3, lora: {rank: 4}}
output: {model: bard}
`, data))
	wait(lft)
	waitUntil(t, 30*time.Second, "the adapter registered as bard@1", func() bool { return len(model("bard").Versions) == 1 })
	if v := model("bard").Versions[0]; !v.Adapter || v.Lineage == nil || v.Lineage.Method != api.MethodLoRA || v.Lineage.Rank != 4 || v.Lineage.Parent != "shake@1" {
		t.Fatalf("bard@1: %+v lineage %+v", v, v.Lineage)
	}
	out, _ = cli(t, s.http, "model", "lineage", "bard@1")
	if !strings.Contains(out, "bard@1  lora r4  job "+lft) || !strings.Contains(out, "└─ shake@1  base") {
		t.Errorf("lineage:\n%s", out)
	}

	// One eval job over three catalog versions, fanned out over two
	// ranks; its results are filed with them.
	ev := submitSpec(t, s.http, fmt.Sprintf(`name: cat-eval
kind: eval
replicas: 2
resources: {gpus: 1, cpu: 1, memory: 256Mi}
task:
  driver: builtin
  builtin: {data: %s, base: "model://shake@1,model://shake@2,model://bard@1", batch: 4}
`, data))
	wait(ev)
	waitUntil(t, 30*time.Second, "the eval results filed", func() bool {
		j, _, err := c.Job(ctx, ev, 0, 0)
		return err == nil && j.EvalsRecorded
	})
	out, err = cli(t, s.http, "model", "compare", "shake", "bard", "--dataset", "shakespeare.txt")
	if err != nil {
		t.Fatalf("compare: %v\n%s", err, out)
	}
	for _, want := range []string{"| shake@1 | base | - | " + data + " | 2.3", "| shake@2 | fine-tune | shake@1 |", "| bard@1 | lora r4 | shake@1 |", "| " + ev + " |"} {
		if !strings.Contains(out, want) {
			t.Errorf("compare lacks %q:\n%s", want, out)
		}
	}
	t.Logf("ark model compare shake bard:\n%s", out)

	// Prompt/answer pairs: exact match and overlap per candidate.
	qaDir := t.TempDir()
	for _, d := range []string{qaDir, filepath.Dir(qaDir)} {
		os.Chmod(d, 0o755)
	}
	qa := filepath.Join(qaDir, "qa.jsonl")
	os.WriteFile(qa, []byte(`{"prompt": "ROMEO:\n", "answer": "I will not."}
{"prompt": "JULIET:\n", "answer": "O Romeo, Romeo!"}
`), 0o644)
	qev := submitSpec(t, s.http, fmt.Sprintf(`name: cat-qa
kind: eval
resources: {gpus: 1, cpu: 1, memory: 256Mi}
task:
  driver: builtin
  builtin: {data: %s, base: "model://shake@1,model://bard@1"}
`, qa))
	wait(qev)
	waitUntil(t, 30*time.Second, "the QA results filed", func() bool {
		j, _, err := c.Job(ctx, qev, 0, 0)
		return err == nil && j.EvalsRecorded
	})
	out, err = cli(t, s.http, "model", "compare", "shake@1", "bard@1", "--dataset", "qa.jsonl")
	if err != nil || !strings.Contains(out, "| shake@1 | base | - | "+qa+" | - | - | - | 0.") || !strings.Contains(out, "| 2 | "+qev+" |") {
		t.Errorf("QA compare: %v\n%s", err, out)
	}

	// A version in use by a running job stays; once the job ends a
	// removal deletes the checkpoint a job wrote, and keeps a
	// hand-registered one.
	srv := submitSpec(t, s.http, "name: cat-serve\nkind: inference\nresources: {gpus: 1, cpu: 500m, memory: 256Mi}\ntask: {driver: builtin, builtin: {base: \"model://shake@2\"}}\n")
	waitUntil(t, 60*time.Second, "the service running", func() bool {
		j, _, err := c.Job(ctx, srv, 0, 0)
		return err == nil && j.Status == api.JobRunning
	})
	// bard@1 is an adapter of shake@1: the servers refuse it on a service
	// of shake@2 from the catalog's lineage, before any replica loads it.
	out, err = cli(t, s.http, "job", "adapter", "add", srv, "bard", "model://bard@1")
	if exitCodeOf(err) != 2 || !strings.Contains(fmt.Sprint(err), `task.builtin.adapters[0].uri: "model://bard@1" is bard@1, a LoRA adapter of base shake@1 (`) ||
		!strings.Contains(fmt.Sprint(err), "but this service's base is shake@2 (") {
		t.Errorf("adding an adapter of shake@1 to a service of shake@2: %v\n%s\nwant exit 2 naming the field and both bases", err, out)
	}
	if out, err := cli(t, s.http, "model", "rm", "shake@2"); err == nil || !strings.Contains(err.Error(), "in use by unfinished job "+srv) {
		t.Errorf("removing a version in use: %v\n%s", err, out)
	}
	if _, err := cli(t, s.http, "job", "cancel", srv); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "the service to end", func() bool {
		j, _, err := c.Job(ctx, srv, 0, 0)
		return err == nil && j.Terminal()
	})
	dir := strings.TrimPrefix(v2.URI, "file://")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("shake@2's checkpoint: %v", err)
	}
	out, err = cli(t, s.http, "model", "rm", "shake@2")
	if err != nil || !strings.Contains(out, "deleted checkpoint "+v2.URI) {
		t.Fatalf("rm shake@2: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); !os.IsNotExist(err) {
		t.Errorf("shake@2's checkpoint is still there: %v", err)
	}
	out, err = cli(t, s.http, "model", "rm", "shake")
	if err != nil || !strings.Contains(out, "kept checkpoint file://"+base) {
		t.Fatalf("rm shake: %v\n%s", err, out)
	}
	if _, err := os.Stat(base); err != nil {
		t.Fatalf("the hand-registered base was deleted: %v", err)
	}

	// A GPT-2 in the Hugging Face layout, imported and registered, is
	// fine-tuned from the catalog with its own shape and tokenizer.
	hf := t.TempDir()
	if err := hftest.Write(hf, hftest.Model{Layers: 1, Heads: 2, Width: 32, Context: 16, Vocab: 300, Seed: 3, Tokenizer: "json"}); err != nil {
		t.Fatal(err)
	}
	// Tasks run as an unprivileged user: the store must be readable
	// by them (t.TempDir's directories are the test user's alone).
	store := t.TempDir()
	for _, d := range []string{store, filepath.Dir(store)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, err = cli(t, s.http, "model", "import", hf, "--out", "file://"+store+"/gpt2", "--name", "tiny-gpt2", "--license", "MIT")
	if err != nil || !strings.Contains(out, "registered tiny-gpt2@1") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if v := model("tiny-gpt2").Versions; len(v) != 1 || v[0].Lineage == nil || v[0].Lineage.Method != api.MethodImported {
		t.Fatalf("tiny-gpt2 versions %+v", v)
	}
	hft := submitSpec(t, s.http, fmt.Sprintf(`name: gpt2-ft
kind: finetune
resources: {gpus: 1, cpu: 1, memory: 256Mi}
task:
  driver: builtin
  builtin: {base: "model://tiny-gpt2", data: %s, steps: 5, batch: 2, lr: 1e-3}
output: {model: tiny-gpt2}
`, data))
	wait(hft)
	waitUntil(t, 30*time.Second, "the imported model's fine-tune registered", func() bool { return len(model("tiny-gpt2").Versions) == 2 })
	if l := model("tiny-gpt2").Versions[1].Lineage; l == nil || l.Parent != "tiny-gpt2@1" || l.Steps != 5 {
		t.Errorf("tiny-gpt2@2 lineage %+v", l)
	}
}
