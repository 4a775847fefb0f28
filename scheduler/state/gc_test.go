package state

import (
	"testing"
	"time"

	"github.com/ark-sched/ark/scheduler/api"
)

// TestGCJobs: only terminal jobs that ended before the cutoff go, with all
// their allocations; running jobs, late enders and unknown IDs stay, and a
// GC that removes nothing moves no index.
func TestGCJobs(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", 4)
	for _, id := range []string{"old", "late", "live", "stuck"} {
		h.addJob(id, 1, 1)
	}
	h.run("old", on("n1", 0))
	h.run("late", on("n1", 1))
	h.run("live", on("n1", 2))
	h.run("stuck", on("n1", 3))
	h.ok(CancelJobType, CancelJobRequest{JobID: "stuck", Reason: "done", Time: t0}) // its task never reports the stop
	h.ok(CancelJobType, CancelJobRequest{JobID: "old", Reason: "done", Time: t0})
	if err := report(h, "old-0", api.AllocFailed, 0, "SIGTERM"); err != nil {
		t.Fatal(err)
	}
	h.ok(CancelJobType, CancelJobRequest{JobID: "late", Reason: "done", Time: t0.Add(time.Hour)})

	before := h.index
	r := h.ok(GCJobsType, GCJobsRequest{JobIDs: []string{"old", "late", "live", "stuck", "ghost"}, Before: t0.Add(time.Minute)}).(*GCJobsResponse)
	if r.Jobs != 1 || r.Allocs != 1 {
		t.Fatalf("gc removed %d jobs %d allocations, want 1 and 1", r.Jobs, r.Allocs)
	}
	if h.snap().Job(nil, "old") != nil || h.snap().Alloc(nil, "old-0") != nil {
		t.Fatal("old job or its allocation survived")
	}
	for _, id := range []string{"late", "live", "stuck"} {
		h.job(id)
	}
	if got := h.snap().Index(TableJobs); got != before+1 {
		t.Errorf("jobs index %d, want %d", got, before+1)
	}
	idx := h.index
	r = h.ok(GCJobsType, GCJobsRequest{JobIDs: []string{"late", "live"}, Before: t0.Add(time.Minute)}).(*GCJobsResponse)
	if r.Jobs != 0 || h.snap().Index(TableJobs) != idx {
		t.Errorf("a GC that removes nothing: %+v, jobs index %d (was %d)", r, h.snap().Index(TableJobs), idx)
	}
	if GCJobsType != 11 || GCJobsType.String() != "GCJobs" {
		t.Fatal("GCJobs type value or name changed")
	}
}
