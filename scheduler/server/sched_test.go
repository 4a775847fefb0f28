package server

import (
	"context"
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

const gangSpec = `{"name":"gang","kind":"finetune","replicas":2,"resources":{"gpus":2},"task":{"driver":"exec","exec":{"command":["true"]}}}`

func fakeNode(name string, gpus int) *api.Node {
	n := &api.Node{Name: name, Address: "127.0.0.1", CPUMilli: 8000, MemoryBytes: 64 << 30}
	for i := 0; i < gpus; i++ {
		n.GPUs = append(n.GPUs, api.GPU{Index: i, UUID: name + "-gpu", Model: "NVIDIA H200", MemoryBytes: 141 << 30})
	}
	return n
}

func TestSchedulerPlacesGang(t *testing.T) {
	_, c := testServer(t, "")
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if _, err := c.RegisterNode(ctx, fakeNode(n, 2)); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := c.SubmitJob(ctx, []byte(gangSpec))
	if err != nil {
		t.Fatal(err)
	}
	var job *api.Job
	waitFor(t, 5*time.Second, "job running", func() bool {
		job, _, err = c.Job(ctx, resp.ID, 0, 0)
		return err == nil && job.Status == api.JobRunning
	})
	if len(job.Allocations) != 2 {
		t.Fatalf("allocations = %d, want 2", len(job.Allocations))
	}
	nodes := map[string]bool{}
	for _, a := range job.Allocations {
		nodes[a.Node] = true
		if a.MasterPort == 0 || a.MasterAddr != "127.0.0.1" {
			t.Errorf("rank %d rendezvous = %s:%d", a.Rank, a.MasterAddr, a.MasterPort)
		}
	}
	if len(nodes) != 2 {
		t.Errorf("gang of 2x2 GPUs on 2-GPU nodes should span both nodes, got %v", nodes)
	}
}
