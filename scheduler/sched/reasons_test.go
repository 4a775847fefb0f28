package sched

import (
	"fmt"
	"testing"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
)

// TestReasonsReachTheJob: a pending job's reasons are committed with it,
// one per rule, structured as the API shows them, and their text is its
// Reason.
func TestReasonsReachTheJob(t *testing.T) {
	c := newCluster(t, Config{Queues: map[string]placement.Queue{"small": {Name: "small", QuotaGPUs: 1, Weight: 1}}, NoPreemption: true})
	c.node("n1", 8)
	c.node("n2", 8)
	c.node("n3", 8)
	c.apply(state.NodeEligibilityType, state.NodeEligibilityRequest{NodeID: "id-n3", Eligible: false})
	c.submit("huge", 1, 16, 50)
	c.submit("over", 1, 2, 50, func(s *spec.Job) { s.Queue = "small" })
	c.settle(3)
	has := func(j *api.Job, rule string) bool {
		for _, r := range j.Reasons {
			if r.Rule == rule {
				return true
			}
		}
		return false
	}
	cases := []struct {
		job   string
		rules []string
	}{
		{"huge", []string{"gpu_total", "ineligible"}},
		{"over", []string{"quota", "ineligible"}},
	}
	for _, tc := range cases {
		j := c.job(tc.job)
		if j.Status != api.JobPending || j.Reason == "" {
			t.Fatalf("%s: %s %q", tc.job, j.Status, j.Reason)
		}
		for _, r := range tc.rules {
			if !has(j, r) {
				t.Errorf("%s: no %s reason in %+v (%q)", tc.job, r, j.Reasons, j.Reason)
			}
		}
	}
	if r := c.job("huge").Reasons; r[0].Rule != "gpu_total" || r[0].Nodes != 2 {
		t.Errorf("huge: %+v, want gpu_total on the 2 eligible nodes first", r)
	}
}

// TestWireReasonsCarryHolders: a reason goes out with the holders
// placement named (at most MaxReasonHolders, TestFirstHolders) and the
// count of the rest, so a full cluster's reason stays small in Raft.
func TestWireReasonsCarryHolders(t *testing.T) {
	var holders []string
	for i := range api.MaxReasonHolders {
		holders = append(holders, fmt.Sprintf("job-%02d", i))
	}
	var e placement.Explanation
	e.Add(placement.Reason{Rule: placement.RuleFreeGPUs, Nodes: 40, Detail: "lack 8 free GPUs", Holders: holders, MoreHolders: 24})
	w := wireReasons(e)
	if len(w) != 1 || w[0].Rule != "free_gpus" || w[0].Nodes != 40 || len(w[0].Holders) != api.MaxReasonHolders || w[0].MoreHolders != 24 || w[0].Holders[0] != "job-00" {
		t.Fatalf("wire reasons %+v", w)
	}
}
