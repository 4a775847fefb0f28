package state

import (
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestApplyPlanStaleAttempt: a plan made for a job's earlier attempt (on a
// snapshot taken before the job was placed, then restarted or preempted
// back to pending) is refused. It used to commit: the job ran with
// allocations of an old attempt, which reconcileJob ignores, so the job
// never ended, and it counted as holding no gang (found by TestFSMModel).
func TestApplyPlanStaleAttempt(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", 4)
	h.addJob("a", 1, 1)
	stale := placementOf("a", on("n1", 1)) // planned at attempt 0, committed later
	for _, al := range stale.Allocs {
		al.ID, al.MasterPort = "stale-"+al.ID, 30001
	}
	h.run("a", on("n1", 0))
	h.ok(MigrateJobsType, MigrateJobsRequest{JobIDs: []string{"a"}, Reason: "drain", Time: t0})
	if j := h.job("a"); j.Status != api.JobPending || j.RestartCount != 1 {
		t.Fatalf("after migrate: %s attempt %d", j.Status, j.RestartCount)
	}

	r := h.place(stale)
	if len(r.Placed) != 0 || !strings.Contains(r.Rejected["a"], "rank 0 was planned for attempt 0, the job is at attempt 1") {
		t.Fatalf("stale plan: placed %v, rejected %v", r.Placed, r.Rejected)
	}
	// The plan for the current attempt commits, and its end ends the job.
	p := placementOf("a", on("n1", 2))
	p.Allocs[0].ID, p.Allocs[0].Attempt, p.Allocs[0].MasterPort = "a-next", 1, 30002
	if r := h.place(p); len(r.Placed) != 1 {
		t.Fatalf("current plan rejected: %v", r.Rejected)
	}
	h.ok(AllocStatusType, AllocStatusRequest{AllocID: "a-next", Update: api.AllocStatusUpdate{Status: api.AllocSucceeded}, Time: t0})
	if j := h.job("a"); j.Status != api.JobSucceeded {
		t.Fatalf("job %s after its current attempt succeeded", j.Status)
	}
}
