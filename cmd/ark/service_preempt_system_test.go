package main

import (
	"context"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/api/client"
)

// TestSystemServicePreemptedReplica: a higher-priority job that needs a
// whole node evicts only the service replicas there, while a closed-loop
// client calls the endpoint: no call fails, the replicas elsewhere keep
// their allocations, an evicted one is replaced where there is room, and
// the service is whole again once the job ends.
func TestSystemServicePreemptedReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	s := newSrv(t)
	s.start(t, "--preemption-min-runtime", "0s")
	startAgents(t, s.http, "2xH200:141Gi", []string{"a", "b"})
	c, err := client.New(s.http)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := submitSpec(t, s.http, `name: echo
kind: inference
priority: 10
replicas: 3
resources: {gpus: 1, cpu: 100m, memory: 64Mi}
task:
  driver: exec
  exec: {command: [ark, example, http-service, --delay, 5ms]}
  health: {http: {path: /v1/health}, interval: 250ms, timeout: 250ms, failures: 10}
`)
	serving := func() map[string]*api.Allocation {
		out := map[string]*api.Allocation{}
		j, _, err := c.Job(ctx, id, 0, 0)
		if err != nil {
			return nil
		}
		for _, a := range j.Allocations {
			if a.Serving() && a.Ready {
				out[a.ID] = a
			}
		}
		return out
	}
	waitUntil(t, 60*time.Second, "3 ready replicas", func() bool { return len(serving()) == 3 })
	before := serving()
	loop := startLoop(t, "http://"+s.http+"/v1/services/"+id+"/v1/completions", 2)
	waitUntil(t, 10*time.Second, "calls answered", func() bool { return loop.count("hello") > 20 })

	// Two GPUs on one node at priority 90: the node with one replica
	// gives it up.
	big := submitSpec(t, s.http, "name: big\npriority: 90\nkind: batch\nresources: {gpus: 2, cpu: 100m, memory: 64Mi}\n"+
		"task: {driver: exec, exec: {command: [sleep, '30']}}\n")
	preempted := time.Now()
	defer func() {
		if t.Failed() {
			t.Log(mustCLI(t, s.http, "job", "status", big))
			t.Log(mustCLI(t, s.http, "job", "status", id))
		}
	}()
	waitUntil(t, 60*time.Second, "the batch job running", func() bool {
		j, _, err := c.Job(ctx, big, 0, 0)
		return err == nil && j.Status == api.JobRunning
	})
	t.Logf("FIGURE priority job placed %s after its submission by preempting the replicas in its way", time.Since(preempted).Round(10*time.Millisecond))
	bj, _, _ := c.Job(ctx, big, 0, 0)
	on := bj.Allocations[0].Node
	waitUntil(t, 30*time.Second, "2 replicas serving (the 4 GPUs hold 2 and the job)", func() bool { return len(serving()) == 2 })
	now := serving()
	for id, a := range before {
		if a.Node != on && now[id] == nil {
			t.Fatalf("replica %s on node %s, not in the way of the job on %s, was moved", id, a.Node, on)
		}
	}
	loop.check(t, "the preemption of a replica")
	j, _, _ := c.Job(ctx, id, 0, 0)
	if j.Status != api.JobRunning || j.Preemptions != 0 && j.RestartCount != 0 {
		t.Fatalf("service after a replica's preemption: %s, restarts %d", j.Status, j.RestartCount)
	}

	// The job ends: the third replica comes back.
	if _, err := cli(t, s.http, "job", "cancel", big); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "3 ready replicas again", func() bool { return len(serving()) == 3 })
	loop.halt()
	loop.check(t, "the whole test")
	t.Logf("FIGURE %d calls through a preemption and the replica's return: 0 failed", loop.calls.Load())
}
