package sched

import (
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// service registers an inference service of replicas x gpus, marked a
// service as the leader marks it at submission.
func (c *cluster) service(id string, replicas, gpus, prio int) {
	s := spec.Job{Name: id, Namespace: "default", Queue: "default", Kind: spec.KindInference, Priority: prio, Replicas: replicas,
		Resources: spec.Resources{GPUs: gpus, CPU: "1", Memory: "1Gi"},
		Task:      spec.Task{Driver: spec.DriverExec, Exec: &spec.ExecTask{Command: []string{"serve"}}},
		Restart:   spec.Restart{Backoff: spec.Duration(10 * time.Second)}}
	j := &api.Job{ID: id, Name: id, Namespace: "default", Queue: "default", Kind: s.Kind, Priority: prio, Spec: s,
		SubmitTime: c.now, Service: true}
	c.apply(state.RegisterJobType, state.RegisterJobRequest{Job: j})
}

// serving returns the allocation serving each rank of a job.
func (c *cluster) serving(id string) map[int]*api.Allocation {
	out := map[int]*api.Allocation{}
	for _, a := range c.snap().AllocsByJob(nil, id) {
		if a.Serving() {
			if out[a.Rank] != nil {
				c.t.Fatalf("rank %d of %s is served twice: %s and %s", a.Rank, id, out[a.Rank].ID, a.ID)
			}
			out[a.Rank] = a
		}
	}
	return out
}

// keep checks that the ranks of a job other than those in replaced are
// served by the same allocations as before, and returns the new ones.
func (c *cluster) keep(id string, before map[int]*api.Allocation, replaced ...int) map[int]*api.Allocation {
	c.t.Helper()
	now := c.serving(id)
	gone := map[int]bool{}
	for _, r := range replaced {
		gone[r] = true
	}
	for r, a := range before {
		switch {
		case now[r] == nil:
			c.t.Fatalf("rank %d of %s is not served", r, id)
		case gone[r] && now[r].ID == a.ID:
			c.t.Fatalf("rank %d of %s was not replaced (still %s)", r, id, a.ID)
		case !gone[r] && now[r].ID != a.ID:
			c.t.Fatalf("rank %d of %s was replaced (%s -> %s) though it never failed", r, id, a.ID, now[r].ID)
		}
	}
	if j := c.job(id); j.Status != api.JobRunning {
		c.t.Fatalf("service %s is %s (%s), want running", id, j.Status, j.Reason)
	}
	return now
}

// TestServiceReplicasReplacedAlone drives the shipped pass over a real
// FSM through a crash loop, a lost node, a drain and a preemption of one
// replica of a 3-replica service: each time only that replica is
// replaced, the others keep their allocations, and the job stays running.
func TestServiceReplicasReplacedAlone(t *testing.T) {
	c := newCluster(t, Config{})
	c.node("a", 2)
	c.node("b", 2)
	c.node("c", 2)
	c.service("svc", 3, 1, 10)
	c.settle(5)
	reps := c.keep("svc", nil)
	if len(reps) != 3 {
		t.Fatalf("%d ranks served, want 3", len(reps))
	}

	// Rank 1 crashes twice in a row: its replacement waits 10s, then 20s.
	for i, wait := range []time.Duration{10 * time.Second, 20 * time.Second} {
		code := 1
		c.apply(state.AllocStatusType, state.AllocStatusRequest{AllocID: reps[1].ID, Update: api.AllocStatusUpdate{Status: api.AllocFailed, ExitCode: &code, Message: "boom"}, Time: c.now})
		out := Pass(FromSnapshot(c.snap()), c.cfg, Input{Now: c.now, Rand: c.rng})
		if !out.Empty() || !out.Wake.Equal(c.now.Add(wait)) {
			t.Fatalf("crash %d: plan %+v wake %s, want nothing until %s", i+1, out.Plan, out.Wake, c.now.Add(wait))
		}
		c.now = c.now.Add(wait)
		c.settle(5)
		reps = c.keep("svc", reps, 1)
		if r := c.job("svc").Replica(1); r.Restarts != i+1 || reps[1].Attempt != i+1 || r.LastExitCode == nil || *r.LastExitCode != 1 {
			t.Fatalf("crash %d: replica record %+v, allocation attempt %d", i+1, r, reps[1].Attempt)
		}
	}

	// The node of rank 0 goes down: rank 0 is replaced at once, elsewhere.
	// (and so is any other rank that was on that node).
	lostOn := reps[0].NodeID
	restarts := c.job("svc").Replica(1).Restarts
	c.apply(state.NodeStatusType, state.NodeStatusRequest{NodeID: lostOn, Status: api.NodeDown, Info: "test", Time: c.now})
	c.settle(5)
	reps = c.keep("svc", reps, ranksOn(reps, lostOn)...)
	for r, a := range reps {
		if a.NodeID == lostOn {
			t.Fatalf("rank %d replaced on its lost node %s", r, lostOn)
		}
	}
	if j := c.job("svc"); j.Replica(0).Restarts != 0 || j.Replica(1).Restarts != restarts {
		t.Fatalf("a lost replica was counted as a restart: %+v", j.ServiceReplicas)
	}

	// Draining rank 2's node moves rank 2 alone (with any other rank
	// there), to a node that joins meanwhile.
	c.node("d", 2)
	drained := reps[2].NodeID
	c.apply(state.NodeDrainType, state.NodeDrainRequest{NodeID: drained, Drain: &api.DrainStrategy{StartedAt: c.now, Deadline: c.now}})
	c.apply(state.MigrateJobsType, state.MigrateJobsRequest{JobIDs: []string{"svc"}, Reason: "moving off draining node", Time: c.now, NodeID: drained})
	c.settle(5)
	reps = c.keep("svc", reps, ranksOn(reps, drained)...)
	for r, a := range reps {
		if a.NodeID == drained {
			t.Fatalf("rank %d replaced on its draining node", r)
		}
	}
}

// ranksOn are the ranks of reps on node.
func ranksOn(reps map[int]*api.Allocation, node string) []int {
	var out []int
	for r, a := range reps {
		if a.NodeID == node {
			out = append(out, r)
		}
	}
	return out
}

// TestServicePreemptedReplicaReplaced: a job of higher priority that
// needs a whole node evicts only the service's replica there; the
// replica is replaced elsewhere once there is room, the others stay.
func TestServicePreemptedReplicaReplaced(t *testing.T) {
	c := newCluster(t, Config{})
	c.node("a", 2)
	c.node("b", 2)
	c.service("svc", 2, 1, 10)
	c.settle(5)
	reps := c.keep("svc", nil)
	if reps[0].NodeID == reps[1].NodeID {
		t.Fatalf("both replicas on node %s: the test needs one per node", reps[0].Node)
	}
	c.submit("big", 1, 2, 90)
	c.now = c.now.Add(time.Hour) // past any protection after start
	c.settle(10)
	if j := c.job("big"); j.Status != api.JobRunning {
		t.Fatalf("preemptor is %s (%s)", j.Status, j.Reason)
	}
	j := c.job("svc")
	if j.Status != api.JobRunning || j.Preemptions != 1 {
		t.Fatalf("service %s with %d preemptions, want running with 1", j.Status, j.Preemptions)
	}
	now := c.serving("svc")
	if len(now) != 2 {
		t.Fatalf("%d ranks served after the preemption, want 2 (the evicted one replaced where there is room)", len(now))
	}
	kept := 0
	for r, a := range reps {
		if now[r] != nil && now[r].ID == a.ID {
			kept++
		}
	}
	if kept != 1 {
		t.Fatalf("%d replicas kept their allocation, want 1 (only the evicted one replaced): before %v, now %v", kept, reps, now)
	}
}

// TestServiceScaledToZero: a service of zero replicas runs with none.
func TestServiceScaledToZero(t *testing.T) {
	c := newCluster(t, Config{})
	c.node("a", 2)
	c.service("zero", 0, 1, 50)
	c.settle(3)
	if j := c.job("zero"); j.Status != api.JobRunning {
		t.Fatalf("zero-replica service is %s (%s), want running", j.Status, j.Reason)
	}
	if n := len(c.snap().AllocsByJob(nil, "zero")); n != 0 {
		t.Fatalf("zero-replica service holds %d allocations", n)
	}
}

// TestServicePreemptionEvictsFewestReplicas: a job that needs a whole
// node takes the node where the service has fewer replicas: it gives up
// only the replicas there, so between nodes that lose the same work the
// one that stops fewer of them wins.
func TestServicePreemptionEvictsFewestReplicas(t *testing.T) {
	c := newCluster(t, Config{})
	c.node("a", 2)
	c.node("b", 2)
	c.service("svc", 3, 1, 10)
	c.settle(5)
	before := c.keep("svc", nil)
	perNode := map[string]int{}
	for _, a := range before {
		perNode[a.NodeID]++
	}
	if len(perNode) != 2 {
		t.Fatalf("replicas on %v: the test needs both nodes used", perNode)
	}
	c.submit("big", 1, 2, 90)
	c.now = c.now.Add(time.Hour) // past any protection after start
	c.settle(10)
	if j := c.job("big"); j.Status != api.JobRunning {
		t.Fatalf("preemptor is %s (%s)", j.Status, j.Reason)
	}
	evicted := 0
	for _, a := range c.snap().AllocsByJob(nil, "svc") {
		if a.Status == api.AllocPreempted {
			evicted++
		}
	}
	if evicted != 1 {
		t.Fatalf("%d replicas preempted, want 1 (the node with one replica; replicas per node were %v)", evicted, perNode)
	}
}
