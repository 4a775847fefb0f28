package placement

import (
	"fmt"
	"sort"

	"github.com/ark-sched/ark/scheduler/api"
)

// Input is everything a placement pass may look at.
type Input struct {
	// Nodes are every known node, ready or not.
	Nodes []*api.Node
	// Allocs are the live (non-terminal) allocations.
	Allocs []*api.Allocation
	// Pending are the jobs to place, in the order to try them.
	Pending []*api.Job

	// Run holds what preemption and backfill read of each live
	// allocation (by ID); one missing is never preempted and is taken to
	// run without a declared end.
	Run map[string]RunInfo
	// Preempt lets a job that fits nowhere evict lower-priority gangs
	// (and, when Reclaim has it, borrowed ones).
	Preempt bool
	// Reclaim marks the pending jobs within their queue's quota.
	Reclaim map[string]bool
	// QuotaNeed marks the pending jobs past their queue's quota that may
	// run only by evicting lower-priority work of their own queue: at least
	// this many milli-GPU of it. They are never placed directly.
	QuotaNeed map[string]int64
	// Backfill holds room for the first job that fits nowhere: later jobs
	// use the held nodes only if their maxRuntime ends before it starts.
	Backfill bool
	// MaxReservations is how many jobs of a pass may hold room (0 or 1:
	// the first). Each further GPU job that fits nowhere is held nodes no
	// earlier reservation holds, and only when it can say when it starts.
	MaxReservations int
	// MaxPreemptSearches bounds the victim searches of one pass (0: no
	// bound); jobs past it wait for the next pass. Jobs whose earlier
	// preemption is under way are always searched.
	MaxPreemptSearches int
	// MaxExplain bounds how many jobs of a pass that simply keep waiting
	// are explained anew (0: all). An explanation reads every node, so a
	// deep queue would cost pending jobs x nodes a pass; jobs past the
	// bound that already have a reason (Job.Reason) keep it and are left
	// out of the Result until they move up, as Slurm's main scheduler
	// looks only at the first default_queue_depth jobs. Jobs without a
	// reason, preemptors and jobs waiting for quota are always explained.
	MaxExplain int
	// Holds are nodes freed by committed preemptions: closed to every job
	// but the preemptor, which is tried before other work. A hold's In is
	// unused.
	Holds []Hold
	// Views, when set, carries the pass's per-kind node views to the next
	// pass given the same cache, which re-reads only the nodes that
	// changed (ViewCache). The Result is the same with or without it.
	Views *ViewCache
}

// Assignment places one rank.
type Assignment struct {
	Rank   int
	NodeID string
	GPUs   []int
}

// Placement places every rank of one job.
type Placement struct {
	JobID       string
	Request     Request
	Assignments []Assignment
}

// Result is a placement pass's plan.
type Result struct {
	Placements []Placement
	// Unplaced maps each job that stays pending to the reason why, as
	// text (Why[id].Text()).
	Unplaced map[string]string
	// Why maps each job that stays pending to its structured reasons,
	// counted per rule; the leader adds its own (quota, ports, held nodes)
	// and renders them with Explanation.Text.
	Why map[string]Explanation
	// Preemptions are the evictions jobs that fit nowhere asked for.
	Preemptions []Preemption
	// Held are the jobs nodes are held for (backfill), in pass order.
	Held []Hold
}

// Hold is room held for a pending job: later jobs of the pass use these
// nodes only if their maxRuntime ends within In seconds.
type Hold struct {
	JobID string
	Nodes []string // node IDs, sorted
	// In is the seconds until the job can start as allocations end by
	// their declared maxRuntime; 0 when unknown (it needs an allocation
	// that declared none), and the nodes are then held for everyone.
	In float64
}

// RequestOf converts a job's spec to what one replica needs.
func RequestOf(j *api.Job) (Request, error) {
	r := j.Spec.Resources
	gm, err := r.GPUMemory.Bytes()
	if err != nil {
		return Request{}, fmt.Errorf("resources.gpuMemory: %w", err)
	}
	cpu, err := r.CPU.Milli()
	if err != nil {
		return Request{}, fmt.Errorf("resources.cpu: %w", err)
	}
	mem, err := r.Memory.Bytes()
	if err != nil {
		return Request{}, fmt.Errorf("resources.memory: %w", err)
	}
	req := Request{GPUs: r.GPUs, GPUMemoryBytes: gm, GPUModel: r.GPUModel, CPUMilli: cpu, MemoryBytes: mem, SameNode: j.Spec.Topology.SameNode}
	if r.GPUMilli != 0 {
		if r.GPUMilli < 0 || r.GPUMilli >= MilliPerGPU {
			return Request{}, fmt.Errorf("resources.gpuMilli: must be between 1 and %d, got %d", MilliPerGPU-1, r.GPUMilli)
		}
		req.GPUs, req.GPUMilli = 1, int64(r.GPUMilli)
	}
	return req, nil
}

// FirstFit places each pending job, in order, rank by rank on the first
// node (by name) with room, taking the lowest free GPU indexes. A gang is
// placed all-or-nothing: if any rank does not fit, none is placed and the
// job gets a reason. It sees the nodes as Place does (jobStates) and
// judges them by the same checkers.
func FirstFit(in Input) Result {
	nodes := append([]*api.Node(nil), in.Nodes...)
	sort.Slice(nodes, func(i, k int) bool { return nodes[i].Name < nodes[k].Name })
	usage := NodeUsage(in.Allocs)
	byID := map[string]*api.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	res := Result{Unplaced: map[string]string{}, Why: map[string]Explanation{}}
	for _, job := range in.Pending {
		req, err := RequestOf(job)
		if err != nil {
			res.pending(job.ID, Explain(Reason{Rule: RuleInvalid, Detail: "invalid resources: " + err.Error()}))
			continue
		}
		g := Gang{Replicas: max(job.Spec.Replicas, 1), Task: taskOf(req), SameNode: req.SameNode}
		asg := placeFirstFit(nodes, usage, g, req)
		if asg == nil {
			res.pending(job.ID, explainGang(nodes, usage, g, req))
			continue
		}
		for _, a := range asg {
			al := req.Allocation(job.ID, byID[a.NodeID], a.GPUs)
			al.JobID = job.ID
			usage[a.NodeID] = usage[a.NodeID].add(al)
		}
		res.Placements = append(res.Placements, Placement{JobID: job.ID, Request: req, Assignments: asg})
	}
	return res
}

// placeFirstFit places every replica or none on the first nodes that pass
// the checkers; it does not change usage.
func placeFirstFit(nodes []*api.Node, usage map[string]*Usage, g Gang, req Request) []Assignment {
	states, index := jobStates(nodes, usage, req)
	take := func(i int) []int {
		s := states[i]
		if s.Check(g.Task) != RuleNone {
			return nil
		}
		local := lowestFree(s, g.Task.GPUs, g.Task.GPUMilli)
		s.Take(g.Task, local)
		gpus := make([]int, len(local))
		for k, l := range local {
			gpus[k] = index[i][l]
		}
		return gpus
	}
	var asg []Assignment
	if g.SameNode {
		for i, n := range nodes {
			s := states[i].Clone()
			asg = asg[:0]
			for r := 0; r < g.Replicas; r++ {
				gpus := take(i)
				if gpus == nil {
					break
				}
				asg = append(asg, Assignment{Rank: r, NodeID: n.ID, GPUs: gpus})
			}
			if len(asg) == g.Replicas {
				return asg
			}
			states[i] = s
		}
		return nil
	}
	for r := 0; r < g.Replicas; r++ {
		placed := false
		for i, n := range nodes {
			if gpus := take(i); gpus != nil {
				asg = append(asg, Assignment{Rank: r, NodeID: n.ID, GPUs: gpus})
				placed = true
				break
			}
		}
		if !placed {
			return nil
		}
	}
	return asg
}

// shares is how many replicas of a shared request GPU g holds given what
// is used there (by milli and by GPU memory).
func (r Request) shares(g api.GPU, usedMilli, usedMem int64) int64 {
	k := (MilliPerGPU - usedMilli) / r.GPUMilli
	if m := r.ShareMemoryOn(g); m > 0 {
		k = min(k, (g.MemoryBytes-usedMem)/m)
	}
	return max(k, 0)
}

// Clone returns a copy of the usage that may be changed freely (nil is an
// empty usage).
func (u *Usage) Clone() *Usage {
	c := newUsage()
	if u == nil {
		return c
	}
	for k, v := range u.GPUs {
		c.GPUs[k] = v
	}
	for k, v := range u.GPUMilli {
		c.GPUMilli[k] = v
	}
	for k, v := range u.Jobs {
		c.Jobs[k] = v
	}
	for k, v := range u.GPUMemory {
		c.GPUMemory[k] = v
	}
	c.CPUMilli, c.MemoryBytes = u.CPUMilli, u.MemoryBytes
	return c
}
