package state

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
)

// keep commits one PendingReasons entry.
func keep(h *harness, prs ...PendingReason) {
	h.t.Helper()
	h.ok(PendingReasonsType, PendingReasonsRequest{Reasons: prs})
}

// TestKeptReasonShows: a kept reason is what every read of the pending job
// says; writing it moves the jobs' index but not the job's own
// ModifyIndex, and the same reason again writes nothing.
func TestKeptReasonShows(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", 2)
	before := h.addJob("p", 1, 8)
	why := []api.Reason{{Rule: "free_gpus", Nodes: 1, Detail: "lack 8 free GPUs", Holders: []string{"x"}}}
	keep(h, PendingReason{JobID: "p", Reason: "1 node lacks 8 free GPUs", Reasons: why, Never: true},
		PendingReason{JobID: "gone", Reason: "no such job"})
	at := h.index
	s := h.snap()
	for name, j := range map[string]*api.Job{
		"Job":               s.Job(nil, "p"),
		"Jobs":              s.Jobs(nil)[0],
		"JobsByStatus":      s.JobsByStatus(nil, api.JobPending)[0],
		"PendingJobsSince":  s.PendingJobsSince(0)[0],
		"as stored (FSM's)": before,
	} {
		want := "1 node lacks 8 free GPUs"
		if name == "as stored (FSM's)" {
			want = ""
		}
		if j.Reason != want || (want != "" && (!j.CannotFit || !api.SameHolders(j.Reasons, why))) {
			t.Errorf("%s: reason %q, reasons %+v, cannotFit %v; want %q", name, j.Reason, j.Reasons, j.CannotFit, want)
		}
		if j.ModifyIndex != before.ModifyIndex {
			t.Errorf("%s: modifyIndex %d, want the job's own %d", name, j.ModifyIndex, before.ModifyIndex)
		}
	}
	// The job as shown is made once, when the reason is kept: reading a
	// deep queue copies nothing.
	if s.Job(nil, "p") != s.JobsByStatus(nil, api.JobPending)[0] {
		t.Error("two reads of the job with its kept reason return two copies")
	}
	if got := s.Index(TableJobs); got != at {
		t.Errorf("jobs index %d, want %d (the reasons' entry)", got, at)
	}
	keep(h, PendingReason{JobID: "p", Reason: "1 node lacks 8 free GPUs", Reasons: why, Never: true})
	if got := h.snap().Index(TableJobs); got != at {
		t.Errorf("the same reason again moved the jobs index to %d", got)
	}
}

// TestKeptReasonLastsUntilTheJobIsWritten: any write of the job is newer
// than its kept reason, which is then forgotten; a legacy ApplyPlan reason
// is written into the job as before.
func TestKeptReasonLastsUntilTheJobIsWritten(t *testing.T) {
	tests := []struct {
		name       string
		write      func(h *harness)
		wantStatus string
		wantReason string
	}{
		{"nothing", func(*harness) {}, api.JobPending, "kept"},
		{"another job's write", func(h *harness) { h.addJob("q", 1, 1) }, api.JobPending, "kept"},
		{"a plan's reason (old logs)", func(h *harness) {
			h.ok(ApplyPlanType, ApplyPlanRequest{Plan: Plan{Pending: []PendingReason{{JobID: "p", Reason: "in the job"}}}})
		}, api.JobPending, "in the job"},
		{"placed", func(h *harness) { h.run("p", on("n1", 0)) }, api.JobRunning, ""},
		{"cancelled", func(h *harness) {
			h.ok(CancelJobType, CancelJobRequest{JobID: "p", Reason: "by user", Time: t0})
		}, api.JobCancelled, "by user"},
		{"placed, then requeued", func(h *harness) {
			h.run("p", on("n1", 0))
			h.ok(MigrateJobsType, MigrateJobsRequest{JobIDs: []string{"p"}, Reason: "moved", Time: t0})
		}, api.JobPending, "moved"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.addNode("n1", 2)
			h.addJob("p", 1, 1)
			keep(h, PendingReason{JobID: "p", Reason: "kept"})
			tc.write(h)
			if j := h.job("p"); j.Status != tc.wantStatus || j.Reason != tc.wantReason {
				t.Errorf("job %s %q, want %s %q", j.Status, j.Reason, tc.wantStatus, tc.wantReason)
			}
		})
	}
	t.Run("forgotten", func(t *testing.T) {
		h := newHarness(t)
		h.addJob("p", 1, 1)
		keep(h, PendingReason{JobID: "p", Reason: "kept"})
		h.ok(CancelJobType, CancelJobRequest{JobID: "p", Time: t0})
		h.ok(GCJobsType, GCJobsRequest{JobIDs: []string{"p"}, Before: t0.Add(time.Hour)})
		if n := len(collect[*keptReason](nil, h.snap().txn, tableReasons, "id")); n != 0 {
			t.Errorf("%d kept reasons left after the job was forgotten", n)
		}
	})
}

// TestKeptReasonsInSnapshots: a snapshot carries kept reasons as records of
// their own, so a restored server shows them and forgets them on the same
// writes as the others; a version 6 snapshot (reasons in the jobs) loads.
func TestKeptReasonsInSnapshots(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", 2)
	h.addJob("p", 1, 1)
	h.addJob("q", 1, 1)
	keep(h, PendingReason{JobID: "p", Reason: "kept p"}, PendingReason{JobID: "q", Reason: "kept q"})
	restored := NewFSM(h.fsm.log)
	if err := restored.Restore(readCloser(persist(t, h.fsm).Bytes())); err != nil {
		t.Fatal(err)
	}
	r := &harness{t: t, fsm: restored, index: h.index}
	for _, x := range []*harness{h, r} {
		x.run("p", on("n1", 0))
	}
	if a, b := dumpOf(h.snap()), dumpOf(r.snap()); !reflect.DeepEqual(a, b) {
		t.Errorf("restored server differs after the same write:\n%+v\n%+v", a, b)
	}
	kept := func(x *harness) []*keptReason { return collect[*keptReason](nil, x.snap().txn, tableReasons, "id") }
	if a, b := kept(h), kept(r); len(a) != 1 || !reflect.DeepEqual(a, b) {
		t.Errorf("kept reasons: %+v here, %+v restored; want q's alone on both", a, b)
	}
	if got := r.job("q").Reason; got != "kept q" {
		t.Errorf("restored q's reason %q", got)
	}
}

// TestKeptReasonWakesBlockingReads: a blocking read of a job or of the
// list wakes when a reason is kept.
func TestKeptReasonWakesBlockingReads(t *testing.T) {
	h := newHarness(t)
	h.addJob("p", 1, 1)
	for name, read := range map[string]func(memdb.WatchSet, *Snapshot){
		"job":  func(ws memdb.WatchSet, s *Snapshot) { s.Job(ws, "p") },
		"list": func(ws memdb.WatchSet, s *Snapshot) { s.Jobs(ws) },
	} {
		ws := memdb.NewWatchSet()
		read(ws, h.snap())
		keep(h, PendingReason{JobID: "p", Reason: name})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := ws.WatchCtx(ctx); err != nil {
			t.Errorf("%s: a blocking read did not wake on a kept reason", name)
		}
		cancel()
	}
}
