package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// TestSystemPreemption: on one agent with 2 fake GPUs, a priority-90 job
// evicts a running priority-10 job, runs once its GPUs are free, and the
// evicted job is requeued whole and runs again afterwards, its restarts
// untouched. Then a job past its maxRuntime is stopped.
func TestSystemPreemption(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t, "--preemption-min-runtime", "0s")
	startAgents(t, s.http, "2xH200:141Gi", []string{"a"}, "--stop-grace", "1s")
	c, _ := client.New(s.http)
	ctx := context.Background()
	job := func(id string) *api.Job {
		j, _, err := c.Job(ctx, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	running := func(id string) bool {
		j := job(id)
		return j.Status == api.JobRunning && len(j.Allocations) > 0 && j.Allocations[len(j.Allocations)-1].Status == api.AllocRunning
	}

	low := submitSpec(t, s.http, "name: low\nkind: batch\npriority: 10\nresources: {gpus: 2, cpu: 500m, memory: 64Mi}\n"+
		"task: {driver: exec, exec: {command: [sleep, '300']}}\n")
	waitUntil(t, 20*time.Second, "low running", func() bool { return running(low) })

	high := submitSpec(t, s.http, "name: high\nkind: batch\npriority: 90\nresources: {gpus: 2, cpu: 500m, memory: 64Mi}\n"+
		"task: {driver: exec, exec: {command: [sleep, '2']}}\n")
	waitUntil(t, 20*time.Second, "low preempted", func() bool {
		j := job(low)
		return j.Status == api.JobPending && j.Preemptions == 1
	})
	if j := job(low); !strings.Contains(j.Reason, "preempted by job "+high) && !strings.Contains(j.Reason, "waiting") {
		t.Errorf("preempted job's reason %q", j.Reason)
	}
	waitUntil(t, 30*time.Second, "high succeeded", func() bool { return job(high).Status == api.JobSucceeded })
	waitUntil(t, 30*time.Second, "low running again", func() bool { return running(low) })
	j := job(low)
	if j.RestartCount != 1 || j.Preemptions != 1 {
		t.Errorf("requeued job: restarts %d preemptions %d", j.RestartCount, j.Preemptions)
	}
	out, err := cli(t, s.http, "job", "status", low)
	if err != nil || !strings.Contains(out, "1 preempted") {
		t.Errorf("job status: %v\n%s", err, out)
	}
	if _, err := cli(t, s.http, "job", "cancel", low); err != nil {
		t.Fatal(err)
	}

	// maxRuntime is enforced.
	capped := submitSpec(t, s.http, "name: capped\nkind: batch\nmaxRuntime: 2s\nresources: {gpus: 1, cpu: 500m, memory: 64Mi}\n"+
		"task: {driver: exec, exec: {command: [sleep, '300']}}\n")
	waitUntil(t, 30*time.Second, "capped stopped", func() bool { return job(capped).Terminal() })
	if j := job(capped); j.Status != api.JobCancelled || !strings.Contains(j.Reason, "ran past its maxRuntime of 2s") {
		t.Errorf("capped job: %s %q", j.Status, j.Reason)
	}
}
