package placement

import (
	"sort"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// Place is the default scheduler's pass: each pending job, in order, is
// placed all-or-nothing by the pipeline below, or left pending with the
// reason why. It is pure: the same Input gives the same Result.
//
//	checkers (reasons.go): ready, GPU model and memory, GPUs in total,
//	    free whole GPUs, free milli for a share, CPU, memory
//	scorer (Ark's policy, ark.go): least growth of expected fragmentation
//	    under the shape distribution learned from live and earlier jobs
//	gang (gang.go): one node and one NVLink domain, then fewest nodes in
//	    one fabric; inference replicas spread over nodes
//
// Assignments use the same GPU indexes Fit re-checks before commit.
func Place(in Input) Result {
	nodes := append([]*api.Node(nil), in.Nodes...)
	sort.Slice(nodes, func(i, k int) bool { return nodes[i].Name < nodes[k].Name })
	usage := NodeUsage(in.Allocs)
	policy := NewArk()
	// The distribution starts from what runs now (one shape per replica).
	for _, a := range in.Allocs {
		if !a.Terminal() {
			policy.Observe(Task{CPUMilli: a.CPUMilli, Memory: a.MemoryBytes, GPUs: len(a.GPUs), GPUMilli: MilliPerGPU})
		}
	}
	res := Result{Unplaced: map[string]string{}}
	for _, job := range in.Pending {
		req, err := RequestOf(job)
		if err != nil {
			res.Unplaced[job.ID] = "invalid resources: " + err.Error()
			continue
		}
		replicas := max(job.Spec.Replicas, 1)
		g := Gang{
			Replicas:       replicas,
			Task:           Task{CPUMilli: req.CPUMilli, Memory: req.MemoryBytes, GPUs: req.GPUs, GPUMilli: MilliPerGPU},
			SameNode:       req.SameNode,
			NVLinkRequired: job.Spec.Topology.NVLink == spec.PrefRequired,
			Spread:         job.Spec.Kind == spec.KindInference,
		}
		if req.GPUs == 0 {
			g.Task.GPUMilli = 0
		}
		policy.Observe(g.Task)
		states, index := jobStates(nodes, usage, req)
		c := NewCluster(states)
		slots, ok := c.PlaceGang(g, policy, nil)
		if !ok {
			res.Unplaced[job.ID] = explain(nodes, usage, replicas, req)
			continue
		}
		asg := make([]Assignment, len(slots))
		for r, s := range slots {
			n := nodes[s.Node]
			gpus := make([]int, len(s.GPUs))
			for i, gi := range s.GPUs {
				gpus[i] = index[s.Node][gi]
			}
			sort.Ints(gpus)
			asg[r] = Assignment{Rank: r, NodeID: n.ID, GPUs: gpus}
			usage[n.ID] = usage[n.ID].add(&api.Allocation{ID: job.ID, GPUs: gpus, CPUMilli: req.CPUMilli, MemoryBytes: req.MemoryBytes})
		}
		res.Placements = append(res.Placements, Placement{JobID: job.ID, Request: req, Assignments: asg})
	}
	return res
}

// jobStates builds one NodeState per node as this job sees it: only the
// GPUs of the model and memory it accepts, with index mapping each back to
// the node's GPU index. A GPU held by an allocation has nothing free.
func jobStates(nodes []*api.Node, usage map[string]*Usage, req Request) ([]*NodeState, [][]int) {
	states := make([]*NodeState, len(nodes))
	index := make([][]int, len(nodes))
	for i, n := range nodes {
		u := usage[n.ID]
		s := &NodeState{Name: n.Name, CPUMilli: n.CPUMilli, CPUFree: n.CPUMilli, Memory: n.MemoryBytes, MemFree: n.MemoryBytes,
			NotReady: n.Status != api.NodeReady, Order: i}
		if u != nil {
			s.CPUFree -= u.CPUMilli
			s.MemFree -= u.MemoryBytes
		}
		var numa, domains []int
		nvlinkKnown := false
		for gi, g := range n.GPUs {
			if req.gpuMismatch(g) != "" {
				continue
			}
			free := int64(MilliPerGPU)
			if u != nil {
				if _, busy := u.GPUs[gi]; busy {
					free = 0
				}
			}
			s.Model = g.Model
			s.GPUMemory = g.MemoryBytes
			s.GPUFree = append(s.GPUFree, free)
			numa = append(numa, g.NUMANode)
			// A GPU without NVLink peers is a domain of its own.
			d := g.NVLinkDomain
			if len(g.NVLinkPeers) == 0 {
				d = -1 - gi
			} else {
				nvlinkKnown = true
			}
			domains = append(domains, d)
			index[i] = append(index[i], gi)
		}
		for _, m := range numa {
			if m != numa[0] {
				s.NUMA = numa
				break
			}
		}
		for _, d := range domains {
			if nvlinkKnown && d != domains[0] {
				s.NVLinkGroup = domains
				break
			}
		}
		states[i] = s
	}
	return states, index
}
