package state

import (
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestHeldIndex: JobsHoldingNodes finds exactly the jobs with held nodes,
// through an index that holds no entry for the others, and follows a job
// that gains and loses them.
func TestHeldIndex(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"a", "b", "c"} {
		h.ok(RegisterJobType, RegisterJobRequest{Job: testJob(id, 1, 1)})
	}
	setHeld := func(id string, nodes ...string) {
		rewriteJob(t, h, id, func(j *api.Job) { j.HeldNodes = nodes })
	}
	holding := func() []string { return jobIDs(h.snap().JobsHoldingNodes()) }
	if got := holding(); len(got) != 0 {
		t.Fatalf("holding %v before any hold", got)
	}
	setHeld("b", "n1")
	if got := holding(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("holding %v, want [b]", got)
	}
	setHeld("b")
	if got := holding(); len(got) != 0 {
		t.Fatalf("holding %v after b let go", got)
	}
	if _, err := heldIndex.FromArgs(false); err == nil {
		t.Fatal("a lookup with false was accepted (no job is indexed under it)")
	}
}

// TestRunningServiceIndex: RunningServices finds exactly the running jobs
// that are services, and follows a service that stops running.
func TestRunningServiceIndex(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"batch", "svc", "pending-svc"} {
		h.ok(RegisterJobType, RegisterJobRequest{Job: testJob(id, 1, 1)})
	}
	set := func(id string, service bool, status string) {
		rewriteJob(t, h, id, func(j *api.Job) { j.Service, j.Status = service, status })
	}
	running := func() []string { return jobIDs(h.snap().RunningServices()) }
	set("batch", false, api.JobRunning)
	set("svc", true, api.JobRunning)
	set("pending-svc", true, api.JobPending)
	if got := running(); len(got) != 1 || got[0] != "svc" {
		t.Fatalf("running services %v, want [svc]", got)
	}
	set("svc", true, api.JobFailed)
	if got := running(); len(got) != 0 {
		t.Fatalf("running services %v after svc failed, want none", got)
	}
}

// rewriteJob changes job id's record in place in the store, past the FSM:
// what the flag indexes read, without the commands that set it.
func rewriteJob(t *testing.T, h *harness, id string, change func(*api.Job)) {
	t.Helper()
	txn := h.fsm.store.writeTxn()
	defer txn.Abort()
	j := *h.job(id)
	change(&j)
	if err := txn.Insert(tableJobs, &j); err != nil {
		t.Fatal(err)
	}
	txn.Commit()
}

// jobIDs are the jobs' IDs, in order.
func jobIDs(jobs []*api.Job) (ids []string) {
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	return ids
}
