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
	nodes := planNodesOf(v)
	kept := plan.Placements[:0:0]
	for _, p := range plan.Placements {
		tentative, why := verifyOne(v, nodes, p)
		if why != "" {
			rejected[p.JobID] = why
			continue
		}
		for id, u := range tentative {
			nodes.usage[id] = u
		}
		kept = append(kept, p)
	}
	plan.Placements = kept
	return plan, rejected
}

// NodeReader is an optional capability of a View: one node, and the
// allocations on it, read without listing the cluster. With it Verify
// reads only the plan's nodes (a few, where the cluster has 10,000);
// without it, it lists every node and allocation once.
type NodeReader interface {
	Node(id string) *api.Node
	// AllocsOn returns the allocations on a node; terminal ones may be
	// among them (usage leaves them out).
	AllocsOn(nodeID string) []*api.Allocation
}

// planNodes reads the nodes a plan places on, each once, and keeps their
// usage with the placements kept so far added.
type planNodes struct {
	node  func(id string) *api.Node
	read  func(id string) *placement.Usage // the committed usage
	usage map[string]*placement.Usage      // by node, once read
}

func planNodesOf(v View) *planNodes {
	pn := &planNodes{usage: map[string]*placement.Usage{}}
	if r, ok := v.(NodeReader); ok {
		pn.node = r.Node
		pn.read = func(id string) *placement.Usage { return placement.NodeUsage(r.AllocsOn(id))[id] }
		return pn
	}
	nodes := map[string]*api.Node{}
	for _, n := range v.Nodes() {
		nodes[n.ID] = n
	}
	all := placement.NodeUsage(v.LiveAllocs())
	pn.node = func(id string) *api.Node { return nodes[id] }
	pn.read = func(id string) *placement.Usage { return all[id] }
	return pn
}

// of is a node's usage now: committed, plus the placements kept.
func (pn *planNodes) of(id string) *placement.Usage {
	u, ok := pn.usage[id]
	if !ok {
		u = pn.read(id)
		pn.usage[id] = u
	}
	return u
}

// verifyOne checks one job's placement on top of the usage so far and
// returns the usage of its nodes with it added.
func verifyOne(v View, nodes *planNodes, p state.JobPlacement) (map[string]*placement.Usage, string) {
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
		n := nodes.node(a.NodeID)
		if n == nil {
			return nil, fmt.Sprintf("rank %d: node %s does not exist", a.Rank, a.NodeID)
		}
		if a.CPUMilli != req.CPUMilli || a.MemoryBytes != req.MemoryBytes {
			return nil, fmt.Sprintf("rank %d asks for other resources than the job", a.Rank)
		}
		u, ok := tentative[a.NodeID]
		if !ok {
			u = nodes.of(a.NodeID).Clone()
		}
		if err := placement.Fit(n, u, a, req); err != nil {
			return nil, fmt.Sprintf("rank %d: %v", a.Rank, err)
		}
		tentative[a.NodeID] = u.Add(a)
	}
	return tentative, ""
}
