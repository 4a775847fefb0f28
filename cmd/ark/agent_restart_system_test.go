package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestSystemAllocStates: what stopped a task shows in its allocation's
// status, not "failed" with EXIT 0. An agent restarted cleanly with
// --keep-tasks-on-exit re-attaches to its running task, which then ends
// as its own (succeeded); a job cancelled while its task runs shows its
// rank cancelled in `ark job status`.
func TestSystemAllocStates(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t)
	agentDir := t.TempDir()
	agentArgs := []string{"agent", "--name", "restarty", "--servers", s.http, "--data-dir", agentDir,
		"--fake-gpus", "2xH200:141Gi", "--keep-tasks-on-exit", "--log-level", "info"}
	a := start(t, agentArgs...)
	waitNodes(t, s.http, 1)
	submit := func(name, script string) string {
		return submitSpec(t, s.http, fmt.Sprintf("name: %s\nkind: batch\nresources: {gpus: 1}\ntask: {driver: exec, exec: {command: [sh, -c, %q]}}\n", name, script))
	}
	job := func(id string) api.Job {
		out, err := cli(t, s.http, "job", "status", id, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var j api.Job
		if err := json.Unmarshal([]byte(out), &j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	running := func(id string) bool {
		j := job(id)
		return j.Status == api.JobRunning && len(j.Allocations) == 1 && j.Allocations[0].Status == api.AllocRunning
	}
	// A gate file in the task's working directory says when it ends.
	until := "until [ -e release ]; do sleep 0.05; done"
	kept := submit("kept", "echo begin; "+until+"; echo end")
	cancelled := submit("cancelled", "trap 'exit 0' TERM; echo begin; while :; do sleep 0.05; done")
	waitUntil(t, 15*time.Second, "both running", func() bool { return running(kept) && running(cancelled) })

	// A clean restart of the agent: SIGTERM, wait for it to exit, start it
	// again on the same data dir.
	a.signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		t.Fatal("the agent did not exit on SIGTERM")
	}
	if j := job(kept); j.Status != api.JobRunning || j.Allocations[0].Status != api.AllocRunning {
		t.Fatalf("after the agent's clean exit, job %s is %s, rank %s (%s)", kept, j.Status, j.Allocations[0].Status, j.Allocations[0].Message)
	}
	b := start(t, agentArgs...)
	waitUntil(t, 20*time.Second, "the restarted agent to re-attach", func() bool {
		out, _ := os.ReadFile(b.out)
		return strings.Count(string(out), "re-attached to a running task") == 2
	})

	// The cancelled job's task exits 0 on SIGTERM: its rank is cancelled,
	// and the plain status says so.
	if out, err := cli(t, s.http, "job", "cancel", cancelled); err != nil {
		t.Fatal(out, err)
	}
	waitUntil(t, 20*time.Second, "the cancelled task to end", func() bool { return job(cancelled).Allocations[0].Terminal() })
	if a := job(cancelled).Allocations[0]; a.Status != api.AllocCancelled {
		t.Errorf("a cancelled job's rank ended %s (%s), want cancelled", a.Status, a.Message)
	}
	out, err := cli(t, s.http, "job", "status", cancelled)
	if err != nil || !regexp.MustCompile(`(?m)^0 .* cancelled +0 `).MatchString(out) || strings.Contains(out, "failed") {
		t.Errorf("job status of a cancelled job (%v):\n%s", err, out)
	}

	gate := filepath.Join(agentDir, "allocs", job(kept).Allocations[0].ID, "work", "release")
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the kept job to end", func() bool {
		j := job(kept)
		return j.Status != api.JobRunning && j.Status != api.JobPending
	})
	if j := job(kept); j.Status != api.JobSucceeded || j.RestartCount != 0 {
		t.Errorf("job across a clean agent restart: %s after %d restarts (%s)", j.Status, j.RestartCount, j.Reason)
	}
	if logs, err := cli(t, s.http, "job", "logs", kept); err != nil || !strings.Contains(logs, "begin") || !strings.Contains(logs, "end") {
		t.Errorf("kept job's log %q (%v)", logs, err)
	}
}
