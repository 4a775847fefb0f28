package state

import (
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// addShareJob registers a pending job whose replicas each ask for milli of
// one GPU and gpuMem of its memory.
func (h *harness) addShareJob(id string, replicas, milli int, gpuMem string) {
	h.t.Helper()
	j := testJob(id, replicas, 1)
	j.Spec.Resources.GPUMilli = milli
	j.Spec.Resources.GPUMemory = spec.Quantity(gpuMem)
	h.ok(RegisterJobType, RegisterJobRequest{Job: j})
}

// sharePlacement is placementOf with each allocation holding milli (and
// mem bytes of GPU memory) of its GPU.
func sharePlacement(jobID string, milli, mem int64, slots ...slot) JobPlacement {
	p := placementOf(jobID, slots...)
	for _, a := range p.Allocs {
		a.GPUMilli, a.GPUMemoryBytes = milli, mem
	}
	return p
}

// TestApplyPlanShares: the FSM's re-check books GPU milli and GPU memory
// per GPU, so two plans made on the same snapshot can never over-commit a
// GPU shared by several jobs, and whole GPUs and shares never mix on one.
// (That an allocation holds what its job asks is sched.Verify's check.)
func TestApplyPlanShares(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", 2) // 141Gi per GPU
	h.addShareJob("a", 1, 600, "")
	h.addShareJob("b", 1, 600, "")
	h.addShareJob("c", 2, 200, "")
	h.addShareJob("m", 1, 100, "100Gi")
	h.addShareJob("m2", 1, 100, "50Gi")
	h.addJob("w", 1, 1)

	// A share that names no GPU memory holds its proportion of the GPU's
	// (whether a plan books it so is the leader's check: sched.Verify).
	prop := func(milli int64) int64 { return 141 * gi * milli / 1000 }
	// Two schedulers planned a and b on GPU 0 from the same snapshot: the
	// second is rejected at commit, not double-booked.
	r := h.place(sharePlacement("a", 600, prop(600), on("n1", 0)), sharePlacement("b", 600, prop(600), on("n1", 0)))
	if len(r.Placed) != 1 || r.Placed[0] != "a" || !strings.Contains(r.Rejected["b"], "rank 0: GPU 0 of node n1 has 400m free, allocation needs 600m") {
		t.Fatalf("placed %v, rejected %v", r.Placed, r.Rejected)
	}
	// Two ranks of one gang share what is left of GPU 0.
	if r := h.place(sharePlacement("c", 200, prop(200), on("n1", 0), on("n1", 0))); len(r.Placed) != 1 {
		t.Fatalf("c: rejected %v", r.Rejected)
	}
	if a := h.alloc("c-1"); a.GPUMilli != 200 || a.Status != api.AllocPending {
		t.Fatalf("c-1: %+v", a)
	}
	// GPU 0 is full (1000m): a whole GPU is not taken from it; GPU 1 is free.
	r = h.place(placementOf("w", on("n1", 0)))
	if !strings.Contains(r.Rejected["w"], "GPU 0 of node n1 is held by allocation") {
		t.Fatalf("whole GPU on a full shared GPU: %v", r.Rejected)
	}
	// GPU memory adds up too: 100Gi + 50Gi > 141Gi.
	if r := h.place(sharePlacement("m", 100, 100*gi, on("n1", 1))); len(r.Placed) != 1 {
		t.Fatalf("m: rejected %v", r.Rejected)
	}
	r = h.place(sharePlacement("m2", 100, 50*gi, on("n1", 1)))
	if !strings.Contains(r.Rejected["m2"], "GPU 1 of node n1 has 41Gi of memory free, allocation needs 50Gi") {
		t.Fatalf("memory over-commit: %v", r.Rejected)
	}
	// A whole GPU on a partly shared GPU is refused.
	r = h.place(placementOf("w", on("n1", 1)))
	if !strings.Contains(r.Rejected["w"], "GPU 1 of node n1 is shared (100m held") {
		t.Fatalf("rejected %v", r.Rejected)
	}
	// Once the shares on GPU 0 end, a whole GPU fits there.
	for _, id := range []string{"a-0", "c-0", "c-1"} {
		h.ok(AllocStatusType, AllocStatusRequest{AllocID: id, Update: api.AllocStatusUpdate{Status: api.AllocSucceeded}, Time: t0})
	}
	h.run("w", on("n1", 0))
}
