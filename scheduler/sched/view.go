package sched

import (
	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/state"
)

// View is the state a pass reads. A server's is its Raft snapshot
// (FromSnapshot); the trace simulator keeps its own.
type View interface {
	// Nodes returns every node, eligible or not.
	Nodes() []*api.Node
	// LiveAllocs returns the allocations not yet terminal.
	LiveAllocs() []*api.Allocation
	// Job returns a job by ID, or nil.
	Job(id string) *api.Job
	// Pending returns the pending jobs created after index since (all of
	// them when since is 0), by priority then age.
	Pending(since uint64) []*api.Job
	// Holding returns the pending jobs that hold nodes freed by their
	// preemptions, whatever their age.
	Holding() []*api.Job
}

// FromSnapshot is the View of a state snapshot.
func FromSnapshot(s *state.Snapshot) View { return snapView{s} }

type snapView struct{ s *state.Snapshot }

func (v snapView) Nodes() []*api.Node { return v.s.Nodes(nil) }

func (v snapView) LiveAllocs() []*api.Allocation {
	all := v.s.Allocs(nil)
	live := all[:0:0]
	for _, a := range all {
		if !a.Terminal() {
			live = append(live, a)
		}
	}
	return live
}

func (v snapView) Job(id string) *api.Job { return v.s.Job(nil, id) }

func (v snapView) Pending(since uint64) []*api.Job {
	if since == 0 {
		return v.s.JobsByStatus(nil, api.JobPending)
	}
	return v.s.PendingJobsSince(since)
}

func (v snapView) Holding() []*api.Job { return v.s.JobsHoldingNodes() }

// Node and AllocsOn make a snapshot a NodeReader (Verify's fast path).
func (v snapView) Node(id string) *api.Node { return v.s.Node(nil, id) }

func (v snapView) AllocsOn(nodeID string) []*api.Allocation { return v.s.AllocsByNode(nil, nodeID) }

// jobLookup finds jobs by ID, each looked up once: a pass reads the job of
// every live allocation, and gangs hold several.
func jobLookup(v View) func(id string) *api.Job {
	jobs := map[string]*api.Job{}
	return func(id string) *api.Job {
		j, ok := jobs[id]
		if !ok {
			j = v.Job(id)
			jobs[id] = j
		}
		return j
	}
}
