package sched

import (
	"fmt"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/state"
)

// Verify re-checks a plan against v, the latest state, just before the
// leader proposes it: the leader's scheduling loop is the only writer of
// plans, so a placement that passes here and the FSM's version-stable
// checks at commit fits what the planner's rules say. It returns the plan
// without the placements that no longer fit, and why each was dropped
// (whole gangs only). Preemptions and reasons pass through: the FSM
// re-checks preemptions itself.
//
// It is the same feasibility the planner uses (placement.Fit over
// placement.NodeUsage), so the planner and the check cannot disagree on a
// state that did not move.
func Verify(v View, plan state.Plan) (state.Plan, map[string]string) {
	rejected := map[string]string{}
	if len(plan.Placements) == 0 {
		return plan, rejected
	}
	nodes := map[string]*api.Node{}
	for _, n := range v.Nodes() {
		nodes[n.ID] = n
	}
	usage := placement.NodeUsage(v.LiveAllocs())
	kept := plan.Placements[:0:0]
	for _, p := range plan.Placements {
		tentative, why := verifyOne(v, nodes, usage, p)
		if why != "" {
			rejected[p.JobID] = why
			continue
		}
		for id, u := range tentative {
			usage[id] = u
		}
		kept = append(kept, p)
	}
	plan.Placements = kept
	return plan, rejected
}

// verifyOne checks one job's placement on top of usage and returns the
// usage of its nodes with it added.
func verifyOne(v View, nodes map[string]*api.Node, usage map[string]*placement.Usage, p state.JobPlacement) (map[string]*placement.Usage, string) {
	j := v.Job(p.JobID)
	switch {
	case j == nil:
		return nil, "job no longer exists"
	case j.Status != api.JobPending && !(j.Service && j.Status == api.JobRunning):
		// A running service's placements replace missing replicas.
		return nil, "job is " + j.Status + ", not pending"
	}
	req, err := placement.RequestOf(j)
	if err != nil {
		return nil, err.Error()
	}
	tentative := map[string]*placement.Usage{}
	for _, a := range p.Allocs {
		n := nodes[a.NodeID]
		if n == nil {
			return nil, fmt.Sprintf("rank %d: node %s does not exist", a.Rank, a.NodeID)
		}
		if a.CPUMilli != req.CPUMilli || a.MemoryBytes != req.MemoryBytes {
			return nil, fmt.Sprintf("rank %d asks for other resources than the job", a.Rank)
		}
		u, ok := tentative[a.NodeID]
		if !ok {
			u = usage[a.NodeID].Clone()
		}
		if err := placement.Fit(n, u, a, req); err != nil {
			return nil, fmt.Sprintf("rank %d: %v", a.Rank, err)
		}
		tentative[a.NodeID] = u.Add(a)
	}
	return tentative, ""
}
