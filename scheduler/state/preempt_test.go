package state

import (
	"strings"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
)

// preemptSetup: node n1 (4 GPUs) fully held by "low" (priority 10,
// running), and "high" (priority 90) and "peer" (priority 10) pending.
func preemptSetup(t *testing.T) *harness {
	h := newHarness(t)
	h.addNode("n1", 4)
	low := testJob("low", 1, 4)
	low.Priority, low.Spec.Priority = 10, 10
	low.Spec.Restart.MaxRestarts = 1
	h.ok(RegisterJobType, RegisterJobRequest{Job: low})
	h.run("low", on("n1", 0, 1, 2, 3))
	if err := report(h, "low-0", api.AllocRunning, 0, ""); err != nil {
		t.Fatal(err)
	}
	high := testJob("high", 1, 4)
	high.Priority, high.Spec.Priority = 90, 90
	h.ok(RegisterJobType, RegisterJobRequest{Job: high})
	peer := testJob("peer", 1, 4)
	peer.Priority, peer.Spec.Priority = 10, 10
	h.ok(RegisterJobType, RegisterJobRequest{Job: peer})
	return h
}

func (h *harness) preempt(pr Preemption) *ApplyPlanResponse {
	h.t.Helper()
	return h.ok(ApplyPlanType, ApplyPlanRequest{Plan: Plan{Preemptions: []Preemption{pr}}, Time: t0}).(*ApplyPlanResponse)
}

func TestPreemptionLifecycle(t *testing.T) {
	h := preemptSetup(t)
	r := h.preempt(Preemption{JobID: "high", Victims: []string{"low"}, LostGPUSeconds: 120})
	if len(r.Rejected) != 0 || len(r.Preempted["high"]) != 1 {
		t.Fatalf("preempted %v rejected %v", r.Preempted, r.Rejected)
	}
	low := h.job("low")
	if low.Status != api.JobPending || low.RestartCount != 1 || low.Preemptions != 1 ||
		low.Reason != "preempted by job high (priority 90 over 10)" {
		t.Fatalf("victim = %s restarts %d preemptions %d %q", low.Status, low.RestartCount, low.Preemptions, low.Reason)
	}
	if a := h.alloc("low-0"); a.DesiredStatus != api.DesiredStop {
		t.Fatalf("victim allocation desired %s, want stop", a.DesiredStatus)
	}
	high := h.job("high")
	if len(high.Preempting) != 1 || high.Preempting[0] != "low" || !strings.Contains(high.Reason, "preempting low") {
		t.Fatalf("preemptor = %+v", high)
	}
	// The GPUs are still held until the victim stops: placing now fails.
	r = h.place(placementOf("high", on("n1", 0, 1, 2, 3)))
	if len(r.Placed) != 0 {
		t.Fatal("preemptor placed on GPUs its victim still holds")
	}
	// The victim's task is killed: the old attempt's failure neither
	// fails nor restarts the requeued job.
	if err := report(h, "low-0", api.AllocFailed, 0, "SIGTERM"); err != nil {
		t.Fatal(err)
	}
	if low := h.job("low"); low.Status != api.JobPending || low.RestartCount != 1 {
		t.Fatalf("victim after its rank stopped = %s restarts %d", low.Status, low.RestartCount)
	}
	h.run("high", on("n1", 0, 1, 2, 3))
	if high := h.job("high"); high.Status != api.JobRunning || high.Preempting != nil {
		t.Fatalf("preemptor after placement = %+v", high)
	}

	// A preemption does not use up restarts: low (maxRestarts 1) runs
	// again, fails once, and still restarts.
	h.ok(CancelJobType, CancelJobRequest{JobID: "high", Reason: "done", Time: t0})
	if err := report(h, "high-0", api.AllocSucceeded, 0, ""); err != nil {
		t.Fatal(err)
	}
	p := placementOf("low", on("n1", 0, 1, 2, 3))
	p.Allocs[0].ID, p.Allocs[0].Attempt = "low-b", 1
	if r := h.place(p); len(r.Placed) != 1 {
		t.Fatalf("replacing low: rejected %v", r.Rejected)
	}
	if err := report(h, "low-b", api.AllocFailed, 1, ""); err != nil {
		t.Fatal(err)
	}
	if low := h.job("low"); low.Status != api.JobPending || !strings.Contains(low.Reason, "restarting (1 of 1)") {
		t.Fatalf("victim after a failure = %s %q, want a restart", low.Status, low.Reason)
	}
}

func TestPreemptionRejects(t *testing.T) {
	tests := []struct {
		name string
		pr   Preemption
		want string
	}{
		{"equal priority", Preemption{JobID: "peer", Victims: []string{"low"}}, "victim low has priority 10, not below 10"},
		{"unknown victim", Preemption{JobID: "high", Victims: []string{"low", "ghost"}}, "victim ghost no longer exists"},
		{"pending victim", Preemption{JobID: "high", Victims: []string{"peer"}}, "victim peer is pending, not running"},
		{"running preemptor", Preemption{JobID: "low", Victims: []string{"high"}}, "job is running, not pending"},
		{"no victims", Preemption{JobID: "high"}, "preemption names no victims"},
		{"unknown job", Preemption{JobID: "ghost", Victims: []string{"low"}}, "job no longer exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := preemptSetup(t)
			before := h.index
			r := h.preempt(tt.pr)
			if r.Rejected[tt.pr.JobID] != tt.want {
				t.Fatalf("rejected %v, want %q", r.Rejected, tt.want)
			}
			// Nothing changed: the victim still runs and no index moved.
			if low := h.job("low"); low.Status != api.JobRunning || low.Preemptions != 0 {
				t.Fatalf("victim = %s after a rejected preemption", low.Status)
			}
			if got := h.snap().Index(TableJobs); got > before {
				t.Fatalf("jobs index moved to %d on a rejected preemption", got)
			}
		})
	}
}

func TestPreemptionReclaim(t *testing.T) {
	h := preemptSetup(t)
	r := h.preempt(Preemption{JobID: "peer", Victims: []string{"low"}, Reclaim: true})
	if len(r.Rejected) != 0 {
		t.Fatalf("rejected %v", r.Rejected)
	}
	if low := h.job("low"); !strings.Contains(low.Reason, "reclaimed the GPUs this job borrowed") {
		t.Fatalf("victim reason %q", low.Reason)
	}
}
