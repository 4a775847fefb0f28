package placement

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
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
	// Unplaced maps each job that stays pending to the reason why.
	Unplaced map[string]string
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
// job gets a reason.
func FirstFit(in Input) Result {
	nodes := append([]*api.Node(nil), in.Nodes...)
	sort.Slice(nodes, func(i, k int) bool { return nodes[i].Name < nodes[k].Name })
	usage := NodeUsage(in.Allocs)
	byID := map[string]*api.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	res := Result{Unplaced: map[string]string{}}
	for _, job := range in.Pending {
		req, err := RequestOf(job)
		if err != nil {
			res.Unplaced[job.ID] = "invalid resources: " + err.Error()
			continue
		}
		asg, reason := placeGang(nodes, usage, job.Spec.Replicas, req)
		if asg == nil {
			res.Unplaced[job.ID] = reason
			continue
		}
		for _, a := range asg {
			usage[a.NodeID] = usage[a.NodeID].add(req.Allocation(job.ID, byID[a.NodeID], a.GPUs))
		}
		res.Placements = append(res.Placements, Placement{JobID: job.ID, Request: req, Assignments: asg})
	}
	return res
}

// placeGang places every replica or none; it does not change usage.
func placeGang(nodes []*api.Node, usage map[string]*Usage, replicas int, req Request) ([]Assignment, string) {
	if req.SameNode {
		for _, n := range nodes {
			u := usage[n.ID].Clone()
			var asg []Assignment
			for r := 0; r < replicas; r++ {
				gpus, _ := fitNode(n, u, req)
				if gpus == nil {
					break
				}
				u = u.add(req.Allocation("", n, gpus))
				asg = append(asg, Assignment{Rank: r, NodeID: n.ID, GPUs: gpus})
			}
			if len(asg) == replicas {
				return asg, ""
			}
		}
		return nil, explain(nodes, usage, replicas, req)
	}
	tentative := map[string]*Usage{}
	get := func(id string) *Usage {
		if u, ok := tentative[id]; ok {
			return u
		}
		u := usage[id].Clone()
		tentative[id] = u
		return u
	}
	var asg []Assignment
	for r := 0; r < replicas; r++ {
		placed := false
		for _, n := range nodes {
			u := get(n.ID)
			gpus, _ := fitNode(n, u, req)
			if gpus == nil {
				continue
			}
			tentative[n.ID] = u.add(req.Allocation("", n, gpus))
			asg = append(asg, Assignment{Rank: r, NodeID: n.ID, GPUs: gpus})
			placed = true
			break
		}
		if !placed {
			return nil, explain(nodes, usage, replicas, req)
		}
	}
	return asg, ""
}

// Rejection reasons, per node, for one replica.
const (
	reasonDown     = "not ready"
	reasonModel    = "lack GPUs of the requested model and memory"
	reasonTotal    = "have fewer GPUs in total than one replica needs"
	reasonBusyGPUs = "have too few free GPUs"
	reasonCPU      = "have too little free CPU"
	reasonMemory   = "have too little free memory"
)

// busyReason is the rejection of a node whose matching GPUs are taken:
// too few free whole GPUs, or no GPU with room for the share.
func (r Request) busyReason() string {
	if !r.Shared() {
		return reasonBusyGPUs
	}
	if r.GPUMemoryBytes > 0 {
		return fmt.Sprintf("have no GPU with %dm and %s free", r.GPUMilli, spec.FormatBytes(r.GPUMemoryBytes))
	}
	return fmt.Sprintf("have no GPU with %dm free", r.GPUMilli)
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

// fitNode returns the lowest free matching GPU indexes for one replica (a
// share: the lowest GPU with room for it), or nil and the reason the node
// cannot take it.
func fitNode(n *api.Node, u *Usage, req Request) ([]int, string) {
	if n.Status != api.NodeReady {
		return nil, reasonDown
	}
	var matching, free []int
	for i, g := range n.GPUs {
		if req.gpuMismatch(g) != "" {
			continue
		}
		matching = append(matching, i)
		switch {
		case req.Shared():
			if req.shares(g, u.UsedMilli(i), u.UsedGPUMemory(i)) > 0 {
				free = append(free, i)
			}
		case u.UsedMilli(i) == 0:
			free = append(free, i)
		}
	}
	switch {
	case len(matching) == 0:
		return nil, reasonModel
	case len(matching) < req.GPUs:
		return nil, reasonTotal
	case len(free) < req.GPUs:
		return nil, req.busyReason()
	}
	var cpu, mem int64
	if u != nil {
		cpu, mem = u.CPUMilli, u.MemoryBytes
	}
	if cpu+req.CPUMilli > n.CPUMilli {
		return nil, reasonCPU
	}
	if mem+req.MemoryBytes > n.MemoryBytes {
		return nil, reasonMemory
	}
	return append([]int(nil), free[:req.GPUs]...), ""
}

// explain says why a gang does not fit, counting nodes by reason, and
// whether it could ever fit on the nodes as they are.
func explain(nodes []*api.Node, usage map[string]*Usage, replicas int, req Request) string {
	if len(nodes) == 0 {
		return "no nodes are registered"
	}
	counts := map[string]int{}
	fitOne := 0
	largest, capacity, largestFits := 0, 0, 0
	for _, n := range nodes {
		matching, fits := 0, 0
		for _, g := range n.GPUs {
			if req.gpuMismatch(g) == "" {
				matching++
				if req.Shared() {
					fits += int(req.shares(g, 0, 0))
				}
			}
		}
		if !req.Shared() {
			fits = matching / max(req.GPUs, 1)
		}
		if n.Status == api.NodeReady {
			largest = max(largest, matching)
			largestFits = max(largestFits, fits)
			capacity += fits
		}
		if _, why := fitNode(n, usage[n.ID], req); why != "" {
			counts[why]++
		} else {
			fitOne++
		}
	}
	shape := fmt.Sprintf("%d replica(s) x %d GPU(s)", replicas, req.GPUs)
	if req.Shared() {
		shape = fmt.Sprintf("%d replica(s) x %dm of a GPU", replicas, req.GPUMilli)
		if req.GPUMemoryBytes > 0 {
			shape += " with " + spec.FormatBytes(req.GPUMemoryBytes)
		}
	}
	if req.GPUModel != "" {
		shape += " of model " + strings.Join(ModelAlternatives(req.GPUModel), " or ")
	}
	var parts []string
	for _, why := range []string{reasonDown, reasonModel, reasonTotal, req.busyReason(), reasonCPU, reasonMemory} {
		if c := counts[why]; c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c, why))
		}
	}
	detail := fmt.Sprintf("%d/%d nodes can take a replica now", fitOne, len(nodes))
	if len(parts) > 0 {
		detail += "; " + strings.Join(parts, ", ")
	}
	ready := 0
	for _, n := range nodes {
		if n.Status == api.NodeReady {
			ready++
		}
	}
	switch {
	case ready == 0:
		return fmt.Sprintf("waiting for resources: %s, and no node is ready (%s)", shape, detail)
	case largest < req.GPUs:
		return fmt.Sprintf("cannot fit on this cluster: %s needs %d GPUs on one node, the largest ready node has %d matching (%s)", shape, req.GPUs, largest, detail)
	case req.SameNode && req.Shared() && largestFits < replicas:
		return fmt.Sprintf("cannot fit on this cluster: %s on one node, the largest ready node holds %d such shares (%s)", shape, largestFits, detail)
	case req.SameNode && largest < req.GPUs*replicas:
		return fmt.Sprintf("cannot fit on this cluster: %s on one node needs %d GPUs, the largest ready node has %d matching (%s)", shape, req.GPUs*replicas, largest, detail)
	case capacity < replicas:
		return fmt.Sprintf("cannot fit on this cluster: %s, but the ready nodes hold only %d such replicas even when idle (%s)", shape, capacity, detail)
	}
	return fmt.Sprintf("waiting for resources: %s (%s)", shape, detail)
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
	for k, v := range u.GPUMemory {
		c.GPUMemory[k] = v
	}
	c.CPUMilli, c.MemoryBytes = u.CPUMilli, u.MemoryBytes
	return c
}
