package agent

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestServiceReplicaHealth runs a 2-replica service on a real server and
// agent: both replicas become ready once their exec health check passes;
// rank 1's first run turns unhealthy, is stopped by the agent after 3
// failed checks and replaced alone (restart 1 on its record), while rank
// 0 keeps its allocation and the job keeps running.
func TestServiceReplicaHealth(t *testing.T) {
	c := cluster(t, 1)
	ctx := context.Background()
	b, _ := json.Marshal(map[string]any{
		"name": "svc", "kind": "inference", "replicas": 2,
		"resources": map[string]any{"gpus": 1, "cpu": "100m", "memory": "64Mi"},
		"restart":   map[string]any{"backoff": "100ms"},
		"task": map[string]any{"driver": "exec",
			"exec": map[string]any{"command": []string{"/bin/sh", "-c",
				`touch "$HOME/ok"; if [ "$RANK" = 1 ] && [ "$ARK_RESTART_COUNT" = 0 ]; then sleep 1; rm "$HOME/ok"; fi; exec sleep 300`}},
			"health": map[string]any{"exec": map[string]any{"command": []string{"/bin/sh", "-c", `test -f "$HOME/ok"`}},
				"interval": "100ms", "timeout": "100ms", "failures": 3}},
	})
	resp, err := c.SubmitJob(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CancelJob(context.Background(), resp.ID) })
	var job *api.Job
	ready := func(j *api.Job) map[int]*api.Allocation {
		out := map[int]*api.Allocation{}
		for _, a := range j.Allocations {
			if a.Ready && a.Status == api.AllocRunning && a.DesiredStatus == api.DesiredRun {
				out[a.Rank] = a
			}
		}
		return out
	}
	var first map[int]*api.Allocation
	waitFor(t, 15*time.Second, "both replicas ready", func() bool {
		job, _, err = c.Job(ctx, resp.ID, 0, 0)
		first = ready(job)
		return err == nil && len(first) == 2
	})
	waitFor(t, 20*time.Second, "rank 1 replaced and ready", func() bool {
		job, _, err = c.Job(ctx, resp.ID, 0, 0)
		now := ready(job)
		return err == nil && len(now) == 2 && now[1].ID != first[1].ID
	})
	if job.Status != api.JobRunning {
		t.Fatalf("service is %s (%s)", job.Status, job.Reason)
	}
	now := ready(job)
	if now[0].ID != first[0].ID {
		t.Fatalf("rank 0 was replaced (%s -> %s) though it stayed healthy", first[0].ID, now[0].ID)
	}
	r := job.Replica(1)
	if r.Restarts != 1 || !strings.Contains(r.LastMessage, "health check failed 3 times in a row") {
		t.Fatalf("rank 1's record %+v, want 1 restart after its health check failed", r)
	}
	if job.Replica(0).Restarts != 0 || now[1].Attempt != 1 {
		t.Fatalf("records %+v, rank 1 attempt %d", job.ServiceReplicas, now[1].Attempt)
	}
}
