package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
	"github.com/ark-sched/ark/scheduler/server"
)

// TestSystemLoRA drives 1+N through the CLI and HTTP, as separate
// processes: a finetune job trains a LoRA adapter on the shipped base, an
// eval job reports base vs adapter held-out loss, and an inference job
// serves the base and the adapter together over the OpenAI API.
func TestSystemLoRA(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	cpuHeavy(t)
	s := newSrv(t)
	// With a cluster key: checkpoints are sealed (the replicas read the
	// adapters with their namespace's key).
	keyFile := filepath.Join(t.TempDir(), "cluster.key")
	if err := server.CreateClusterKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	s.start(t, "--cluster-key-file", keyFile)
	startAgents(t, s.http, "1xH200:141Gi", []string{"a"})
	c, err := client.New(s.http)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := filepath.Abs("../../examples/base/gpt-tiny")
	data, _ := filepath.Abs("../../examples/data/shakespeare.txt")
	wait := func(id string) *api.Job {
		t.Helper()
		var j *api.Job
		waitUntil(t, 120*time.Second, "job "+id+" to end", func() bool {
			var err error
			j, _, err = c.Job(context.Background(), id, 0, 0)
			return err == nil && j.Terminal()
		})
		if j.Status != api.JobSucceeded {
			logs, _ := cli(t, s.http, "job", "logs", id)
			t.Fatalf("job %s %s: %s\n%s", id, j.Status, j.Reason, logs)
		}
		return j
	}
	ft := submitSpec(t, s.http, fmt.Sprintf(`name: lora-ft
kind: finetune
resources: {gpus: 1, cpu: 1, memory: 256Mi}
task:
  driver: builtin
  builtin: {model: gpt-tiny, base: %s, data: %s, steps: 30, batch: 4, lr: 3e-3, lora: {rank: 8, alpha: 16, targets: [attn, mlp]}}
`, base, data))
	j := wait(ft)
	var adapter string
	for _, a := range j.Allocations {
		if a.LastCheckpoint != nil {
			adapter = a.LastCheckpoint.URI
		}
	}
	if adapter == "" {
		t.Fatal("the lora fine-tune reported no checkpoint")
	}
	logs, _ := cli(t, s.http, "job", "logs", ft)
	if !strings.Contains(logs, "lora rank 8 alpha 16 targets attn,mlp on frozen base") || !strings.Contains(logs, "16384 trainable parameters of 120576") {
		t.Errorf("fine-tune log does not show the adapter:\n%s", logs)
	}

	ev := submitSpec(t, s.http, fmt.Sprintf(`name: lora-eval
kind: eval
resources: {gpus: 1, cpu: 1, memory: 256Mi}
task:
  driver: builtin
  builtin: {model: gpt-tiny, data: %s, base: "%s,%s"}
`, data, base, adapter))
	wait(ev)
	logs, _ = cli(t, s.http, "job", "logs", ev)
	if !strings.Contains(logs, "| "+base+" | 600 |") || !strings.Contains(logs, "(lora adapter on file://"+base+"/000000000600) | 30 |") {
		t.Errorf("eval log does not compare the base and the adapter:\n%s", logs)
	}

	srv := submitSpec(t, s.http, fmt.Sprintf(`name: lora-serve
kind: inference
resources: {gpus: 1, cpu: 500m, memory: 256Mi}
task:
  driver: builtin
  builtin: {model: gpt-tiny, base: %s, adapters: [{name: bard, uri: "%s"}]}
`, base, adapter))
	var endpoint string
	waitUntil(t, 60*time.Second, "the replica serving", func() bool {
		j, _, err := c.Job(context.Background(), srv, 0, 0)
		if err != nil || len(j.Allocations) == 0 {
			return false
		}
		ep, ok := strings.CutPrefix(j.Allocations[0].Progress, "serving on ")
		endpoint = ep
		return ok
	})
	ask := func(model string) (int, string) {
		body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"ROMEO:"}],"max_tokens":12,"temperature":0}`, model)
		var code int
		var text string
		waitUntil(t, 30*time.Second, model+" answering", func() bool {
			resp, err := http.Post(endpoint+"/v1/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			code, text = resp.StatusCode, string(b)
			return true
		})
		return code, text
	}
	code, out := ask("bard")
	var answer struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if code != 200 || json.Unmarshal([]byte(out), &answer) != nil || answer.Model != "bard" || len(answer.Choices) != 1 {
		t.Fatalf("adapter answer: %d %s", code, out)
	}
	if code, out := ask("gpt-tiny"); code != 200 {
		t.Fatalf("base answer: %d %s", code, out)
	}
	if code, out := ask("nope"); code != 404 || !strings.Contains(out, "model_not_found") {
		t.Fatalf("unknown model: %d %s", code, out)
	}
	inferCLI(t, s.http, srv, answer.Choices[0].Message.Content)
	adapterCLI(t, s.http, srv, endpoint, adapter)
	resp, err := http.Get(endpoint + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"id":"bard"`) || !strings.Contains(string(b), `"parent":"gpt-tiny"`) {
		t.Errorf("models: %s", b)
	}
	if _, err := cli(t, s.http, "job", "cancel", srv); err != nil {
		t.Fatal(err)
	}
}

// inferCLI asks service srv, which serves gpt-tiny and the adapter bard,
// with ark infer --model/--chat/--stream/-o json through the endpoint;
// bardChat is bard's greedy chat answer to "ROMEO:" in 12 tokens, asked
// of the replica directly.
func inferCLI(t *testing.T, addr, srv, bardChat string) {
	t.Helper()
	args := func(more ...string) []string {
		return append([]string{"infer", srv, "--prompt", "ROMEO:", "--tokens", "12", "--temperature", "0"}, more...)
	}
	out, err := cli(t, addr, args("--chat", "--model", "bard", "-o", "json")...)
	var whole struct {
		Object  string `json:"object"`
		Model   string `json:"model"`
		Choices []struct {
			Message struct{ Role, Content string } `json:"message"`
		} `json:"choices"`
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err != nil || json.Unmarshal([]byte(out), &whole) != nil || whole.Object != "chat.completion" || whole.Model != "bard" ||
		len(whole.Choices) != 1 || whole.Choices[0].Message.Role != "assistant" || whole.Choices[0].Message.Content != bardChat ||
		whole.Usage.CompletionTokens != 12 {
		t.Fatalf("infer --chat --model bard -o json: %v\n%s\nwant the content %q", err, out, bardChat)
	}
	// Streamed, the same greedy answer arrives piece by piece.
	if out, err := cli(t, addr, args("--chat", "--model", "bard", "--stream")...); err != nil || out != bardChat+"\n" {
		t.Errorf("infer --chat --model bard --stream: %v %q, want %q", err, out, bardChat+"\n")
	}
	// A completion of the base continues the prompt, whole or streamed.
	whole1, err := cli(t, addr, args("--model", "gpt-tiny")...)
	if err != nil || !strings.HasPrefix(whole1, "ROMEO:") || len(whole1) <= len("ROMEO:\n") {
		t.Fatalf("infer --model gpt-tiny: %v %q", err, whole1)
	}
	if out, err := cli(t, addr, args("--model", "gpt-tiny", "--stream")...); err != nil || out != whole1 {
		t.Errorf("infer --model gpt-tiny --stream: %v %q, want %q", err, out, whole1)
	}
	// The replica's OpenAI error comes back with its message and exit 1;
	// --stream with -o json is a usage error.
	if _, err := cli(t, addr, args("--chat", "--model", "nope")...); exitCodeOf(err) != 1 || !strings.Contains(err.Error(), `404 Not Found: the model "nope" does not exist`) {
		t.Errorf("infer --model nope: %v, want exit 1 naming the model", err)
	}
	if _, err := cli(t, addr, args("--chat", "--model", "nope", "--stream")...); exitCodeOf(err) != 1 || !strings.Contains(err.Error(), `model "nope"`) {
		t.Errorf("infer --model nope --stream: %v, want exit 1 naming the model", err)
	}
	if _, err := cli(t, addr, args("--stream", "-o", "json")...); exitCodeOf(err) != 2 {
		t.Errorf("infer --stream -o json: %v, want exit 2", err)
	}
}

// adapterCLI adds adapterURI to service srv as a second adapter with ark
// job adapter add (an update applied in place), asks it with ark infer
// once the replica took it, and removes it. The replica (at endpoint)
// takes no adapter from a caller on its machine.
func adapterCLI(t *testing.T, addr, srv, endpoint, adapterURI string) {
	t.Helper()
	resp, err := http.Post(endpoint+"/v1/adapters", "application/json", strings.NewReader(`{"name":"x","uri":"`+adapterURI+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a local caller without the token loads an adapter: %s, want 401", resp.Status)
	}
	out, err := cli(t, addr, "job", "adapter", "add", srv, "bard2", adapterURI)
	if err != nil || !strings.Contains(out, "adapter bard2 added from "+adapterURI+": version 1, applied in place on 1 replicas") {
		t.Fatalf("job adapter add: %v %q", err, out)
	}
	ask := []string{"infer", srv, "--chat", "--model", "bard2", "--prompt", "ROMEO:", "--tokens", "4", "--temperature", "0", "-o", "json"}
	waitUntil(t, 30*time.Second, "bard2 answering", func() bool {
		out, err = cli(t, addr, ask...)
		return err == nil
	})
	if !strings.Contains(out, `"model": "bard2"`) {
		t.Fatalf("infer --model bard2: %q", out)
	}
	if out, err := cli(t, addr, "job", "adapter", "rm", srv, "bard2"); err != nil || !strings.Contains(out, "adapter bard2 removed") {
		t.Fatalf("job adapter rm: %v %q", err, out)
	}
	waitUntil(t, 30*time.Second, "bard2 gone", func() bool {
		_, err := cli(t, addr, ask...)
		return exitCodeOf(err) == 1 && strings.Contains(err.Error(), `"bard2" does not exist`)
	})
}
