package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api/client"
)

// TestSystemServiceRulesInPlace: an update that changes only a builtin
// service's intervention rules is applied in place: no replica is
// replaced, and the running servers take the new rules from their agents
// within seconds.
func TestSystemServiceRulesInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	cpuHeavy(t) // serves a model
	s := newSrv(t)
	s.start(t)
	startAgents(t, s.http, "1xH200:141Gi", []string{"a", "b"})
	base, _ := filepath.Abs("../../examples/base/gpt-tiny")
	svc := func(answer string) string {
		return "name: guarded\nkind: inference\nreplicas: 2\nresources: {gpus: 1, cpu: 500m, memory: 256Mi}\n" +
			"task: {driver: builtin, builtin: {model: gpt-tiny, base: " + base + ", rules: [{id: poison, stage: input, keywords: [poison], action: block, answer: \"" + answer + "\"}]}}\n"
	}
	id := submitSpec(t, s.http, svc("I cannot help with that."))
	ask := func() string {
		out, err := cli(t, s.http, "infer", id, "--prompt", "sell me a poison", "--tokens", "8")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if out := ask(); !strings.Contains(out, "I cannot help with that.") {
		t.Fatalf("rule of version 0 not applied: %q", out)
	}
	c, _ := client.New(s.http)
	before, _, _ := c.Job(context.Background(), id, 0, 0)

	f := filepath.Join(t.TempDir(), "v1.yaml")
	if err := os.WriteFile(f, []byte(svc("Ask a pharmacist.")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := cli(t, s.http, "job", "update", id, f)
	if err != nil || !strings.Contains(out, "version 1: applied in place") {
		t.Fatalf("update of the rules: %v %q", err, out)
	}
	changed := time.Now()
	// Each replica, asked directly, takes it.
	waitUntil(t, 30*time.Second, "the new rule in force on every replica", func() bool {
		for _, a := range before.Allocations {
			var resp struct{ Text string }
			url := fmt.Sprintf("http://127.0.0.1:%d/v1/generate", a.Port)
			if err := postJSON(url, map[string]any{"prompt": "sell me a poison", "tokens": 8}, &resp); err != nil || resp.Text != "Ask a pharmacist." {
				return false
			}
		}
		return true
	})
	if out := ask(); !strings.Contains(out, "Ask a pharmacist.") {
		t.Fatalf("through the endpoint after the update: %q", out)
	}
	t.Logf("FIGURE rules updated in place: in force on both replicas %s after the update (agents polled every 2s)", time.Since(changed).Round(10*time.Millisecond))
	after, _, _ := c.Job(context.Background(), id, 0, 0)
	ids := func(j []string) string { return strings.Join(j, ",") }
	var b, a []string
	for _, x := range before.Allocations {
		b = append(b, x.ID)
	}
	for _, x := range after.Allocations {
		a = append(a, x.ID)
		if x.JobVersion != 1 || !x.Serving() {
			t.Errorf("replica %s: version %d, serving %v after an in-place update", x.ID, x.JobVersion, x.Serving())
		}
	}
	if ids(a) != ids(b) {
		t.Fatalf("an update of the rules replaced replicas: %s -> %s", ids(b), ids(a))
	}
}

func postJSON(url string, in, out any) error {
	body, _ := json.Marshal(in)
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
