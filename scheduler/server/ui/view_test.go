package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// fixedSource serves one view, as the server's store would with no writes:
// a blocking query past its index waits until its context ends.
type fixedSource struct {
	v    *View
	logs map[string]string // job ID -> rank 0's stdout
}

func (f fixedSource) View(ctx context.Context, index uint64) (*View, error) {
	if index >= f.v.Index {
		<-ctx.Done()
	}
	return f.v, nil
}

func (f fixedSource) JobLog(ctx context.Context, jobID string, rank int, w io.Writer) error {
	log, ok := f.logs[jobID]
	if !ok {
		return errors.New("node a of rank 0 serves no logs")
	}
	_, err := io.WriteString(w, log)
	return err
}

func gpuNode(name string, gpus int) *api.Node {
	n := &api.Node{ID: "id-" + name, Name: name, Status: api.NodeReady, CPUMilli: 64000, MemoryBytes: 512 << 30, Fake: true}
	for i := 0; i < gpus; i++ {
		n.GPUs = append(n.GPUs, api.GPU{Index: i, Model: "H200", MemoryBytes: 141 << 30})
	}
	return n
}

func alloc(job, node string, rank int, gpus []int, milli int64) *api.Allocation {
	return &api.Allocation{ID: fmt.Sprintf("%s-%d", job, rank), JobID: job, NodeID: "id-" + node, Node: node, Rank: rank,
		WorldSize: 2, GPUs: gpus, GPUMilli: milli, Status: api.AllocRunning, DesiredStatus: api.DesiredRun}
}

// testView: nodes a (8 GPUs, a 2-rank fine-tune and a half-GPU share),
// b (down) and c (draining, holding another namespace's job); a pending job
// with reasons.
func testView() *View {
	now := time.Now()
	a, b, c := gpuNode("node-a", 8), gpuNode("node-b", 8), gpuNode("node-c", 4)
	b.Status, b.StatusInfo = api.NodeDown, "missed heartbeats"
	c.Drain = &api.DrainStrategy{Deadline: now.Add(time.Hour), StartedAt: now}
	ft := &api.Job{ID: "ft-abc", Name: "ft", Namespace: "nlp", Queue: "research", Kind: "finetune", Status: api.JobRunning, SubmitTime: now, CreateIndex: 5, RestartCount: 1,
		Allocations: []*api.Allocation{alloc("ft-abc", "node-a", 0, []int{0, 1}, 0), alloc("ft-abc", "node-a", 1, []int{2, 3}, 0)}}
	ft.Allocations[0].Progress = "step 30/30 loss 1.9000"
	ft.Events = []api.JobEvent{{Time: now.Add(-time.Hour), Index: 5, Type: api.EventSubmitted, Message: "submitted to queue research"},
		{Time: now.Add(-50 * time.Minute), Index: 9, Type: api.EventRestarting, Message: "restarting (1 of 3) after rank 1 failed on node node-a: <exit 1>"}}
	sv := &api.Job{ID: "chat-xyz", Name: "chat", Namespace: "nlp", Queue: "serving", Kind: "inference", Status: api.JobRunning, SubmitTime: now, CreateIndex: 6, Service: true,
		Allocations:     []*api.Allocation{alloc("chat-xyz", "node-a", 0, []int{4}, 500)},
		ServiceReplicas: []api.ServiceReplica{{Rank: 0, Restarts: 2, LastMessage: "health check failed"}},
		Version:         3, StableVersion: 2,
		Deployment: &api.Deployment{Version: 3, Status: api.DeploymentRunning, Message: "1 canary replica(s) of version 3 healthy"},
		LastScale:  &api.ScaleEvent{From: 1, To: 2, Reason: "queue depth 9.0 per replica against the target 4 for 15s"}}
	wait := &api.Job{ID: "big-q1", Name: "big", Namespace: "nlp", Queue: "research", Kind: "finetune", Status: api.JobPending, SubmitTime: now, CreateIndex: 7,
		Reason: "no node fits", Reasons: []api.Reason{{Rule: "gpus", Nodes: 3, Detail: "lack 16 free GPUs in one NVLink domain"}}}
	done := &api.Job{ID: "old-1", Name: "old", Namespace: "vision", Queue: "default", Kind: "batch", Status: api.JobSucceeded, SubmitTime: now.Add(-72 * time.Hour), CreateIndex: 2}
	return &View{
		Index:  42,
		Nodes:  []*api.Node{c, b, a},
		Jobs:   []*api.Job{ft, sv, wait, done},
		Hidden: []*api.Allocation{{NodeID: "id-node-c", Node: "node-c", GPUs: []int{1}, Status: api.AllocRunning}},
		Queues: []Queue{{Name: "research", QuotaGPUs: 2, Weight: 1, Borrow: true, UsedGPUs: 4, BorrowedGPUs: 2, RunningJobs: 1, PendingJobs: 1},
			{Name: "serving", Weight: 2, UsedGPUs: 0.5, RunningJobs: 1}},
	}
}

const trainerLog = `loading model gpt-test
step 1/30 loss 4.1000 lr 1.00e-04 grad-norm 1.200 tok/s/rank 900 rank 0/2
step 10/30 loss 3.2000 lr 3.00e-04 grad-norm 0.900 tok/s/rank 1200 rank 0/2
step 20/30 loss 2.5000 lr 3.00e-04 grad-norm 0.700 tok/s/rank 1250 rank 0/2
step 30/30 loss 1.9000 lr 1.00e-04 grad-norm 0.500 tok/s/rank 1300 rank 0/2
saved checkpoint step 30`
