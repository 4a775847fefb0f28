package placement

import (
	"fmt"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// Usage is what live allocations hold on one node.
type Usage struct {
	// GPUs maps each GPU index something holds, whole or a share of, to
	// an allocation holding it.
	GPUs map[int]string
	// GPUMilli is the milli-GPU held per GPU index (1000 for a GPU held
	// whole, the sum of the shares otherwise).
	GPUMilli map[int]int64
	// GPUMemory is the GPU memory the shares on each GPU index hold.
	GPUMemory map[int]int64
	// Jobs maps each GPU index something holds to the job of an
	// allocation holding it: whom a pending job waits for.
	Jobs        map[int]string
	CPUMilli    int64
	MemoryBytes int64
}

// NodeUsage adds up what the given live (non-terminal) allocations hold,
// per node ID.
func NodeUsage(allocs []*api.Allocation) map[string]*Usage {
	out := map[string]*Usage{}
	for _, a := range allocs {
		if a.Terminal() {
			continue
		}
		out[a.NodeID] = out[a.NodeID].add(a)
	}
	return out
}

func newUsage() *Usage {
	return &Usage{GPUs: map[int]string{}, GPUMilli: map[int]int64{}, GPUMemory: map[int]int64{}, Jobs: map[int]string{}}
}

// allocMilli is the milli-GPU an allocation holds on each of its GPUs.
func allocMilli(a *api.Allocation) int64 {
	if a.GPUMilli > 0 {
		return a.GPUMilli
	}
	return MilliPerGPU
}

func (u *Usage) add(a *api.Allocation) *Usage {
	if u == nil {
		u = newUsage()
	}
	for _, g := range a.GPUs {
		u.GPUs[g] = a.ID
		u.Jobs[g] = a.JobID
		u.GPUMilli[g] += allocMilli(a)
		if a.GPUMilli > 0 {
			u.GPUMemory[g] += a.GPUMemoryBytes
		}
	}
	u.CPUMilli += a.CPUMilli
	u.MemoryBytes += a.MemoryBytes
	return u
}

// Add records an allocation in the usage (nil is an empty usage).
func (u *Usage) Add(a *api.Allocation) *Usage { return u.add(a) }

// UsedMilli is the milli-GPU held on GPU g (nil is an empty usage).
func (u *Usage) UsedMilli(g int) int64 {
	if u == nil {
		return 0
	}
	return u.GPUMilli[g]
}

// UsedGPUMemory is the GPU memory the shares on GPU g hold.
func (u *Usage) UsedGPUMemory(g int) int64 {
	if u == nil {
		return 0
	}
	return u.GPUMemory[g]
}

// Fit reports whether an allocation as placed fits on node given what is
// already used there: the allocation is the job's shape, its GPU indexes
// exist, are distinct and match the job's model and memory; then the node
// as the planner sees it (jobStates), narrowed to those GPUs, passes the
// planner's checkers (NodeState.Check) for what the allocation holds: the
// node is ready, the GPUs are free (a whole GPU: nothing holds any of it;
// a share: the GPU's free milli and memory hold it), CPU and memory fit.
// It is the plan's re-check before commit: no GPU milli is ever booked
// twice, and it cannot disagree with the planner. Errors name the node,
// the GPU and what holds it.
func Fit(node *api.Node, used *Usage, a *api.Allocation, req Request) error {
	if node.Status != api.NodeReady {
		return fmt.Errorf("node %s is %s", node.Name, node.Status)
	}
	if len(a.GPUs) != req.GPUs {
		return fmt.Errorf("allocation holds %d GPUs, job asks for %d", len(a.GPUs), req.GPUs)
	}
	if a.GPUMilli != req.GPUMilli {
		return fmt.Errorf("allocation holds %s of each GPU, job asks for %s", shareText(a.GPUMilli, a.GPUMemoryBytes), shareText(req.GPUMilli, req.ShareMemory()))
	}
	seen := map[int]bool{}
	for _, g := range a.GPUs {
		if g < 0 || g >= len(node.GPUs) {
			return fmt.Errorf("node %s has no GPU %d", node.Name, g)
		}
		if seen[g] {
			return fmt.Errorf("GPU %d listed twice", g)
		}
		seen[g] = true
		if _, why := req.gpuRule(node.GPUs[g]); why != "" {
			return fmt.Errorf("GPU %d of node %s: %s", g, node.Name, why)
		}
		if want := req.ShareMemoryOn(node.GPUs[g]); a.GPUMemoryBytes != want {
			return fmt.Errorf("allocation holds %s of GPU %d, job asks for %s", shareText(a.GPUMilli, a.GPUMemoryBytes), g, shareText(req.GPUMilli, want))
		}
	}
	s := allocState(node, used, a, req)
	t := Task{CPUMilli: a.CPUMilli, Memory: a.MemoryBytes, GPUs: len(a.GPUs), GPUMilli: allocMilli(a)}
	if len(a.GPUs) == 0 {
		t.GPUMilli = 0
	}
	switch r := s.Check(t); r {
	case RuleNone:
		return nil
	case RuleFreeGPUs, RuleGPUMilli:
		return gpuTaken(node, used, a)
	case RuleCPU:
		return fmt.Errorf("node %s has %dm CPU free, allocation needs %dm", node.Name, s.CPUFree, a.CPUMilli)
	case RuleMemory:
		return fmt.Errorf("node %s has %d bytes of memory free, allocation needs %d", node.Name, s.MemFree, a.MemoryBytes)
	default:
		return fmt.Errorf("node %s %s", node.Name, singular(nodeDetail(r, t, "")))
	}
}

// allocState is node as the planner sees it for req (jobStates), narrowed
// to the GPUs the allocation holds, in its order. Fit checked that each
// of them is in the view (it matches the request's model and memory).
func allocState(node *api.Node, used *Usage, a *api.Allocation, req Request) *NodeState {
	states, index := jobStates([]*api.Node{node}, map[string]*Usage{node.ID: used}, req)
	s := states[0]
	at := make(map[int]int, len(index[0]))
	for i, g := range index[0] {
		at[g] = i
	}
	free := make([]int64, len(a.GPUs))
	for k, g := range a.GPUs {
		free[k] = s.GPUFree[at[g]]
	}
	s.GPUFree, s.NVLinkGroup, s.NUMA = free, nil, nil
	return s
}

// gpuTaken says which of the allocation's GPUs is taken and by what.
func gpuTaken(node *api.Node, used *Usage, a *api.Allocation) error {
	for _, g := range a.GPUs {
		usedMilli := used.UsedMilli(g)
		if usedMilli == 0 {
			continue
		}
		holder := used.GPUs[g]
		switch {
		case usedMilli >= MilliPerGPU:
			return fmt.Errorf("GPU %d of node %s is held by allocation %s", g, node.Name, holder)
		case a.GPUMilli == 0:
			return fmt.Errorf("GPU %d of node %s is shared (%dm held, by allocation %s and maybe others), a whole GPU is asked", g, node.Name, usedMilli, holder)
		case usedMilli+a.GPUMilli > MilliPerGPU:
			return fmt.Errorf("GPU %d of node %s has %dm free, allocation needs %dm", g, node.Name, max(0, MilliPerGPU-usedMilli), a.GPUMilli)
		}
		if mem := used.UsedGPUMemory(g); mem+a.GPUMemoryBytes > node.GPUs[g].MemoryBytes {
			return fmt.Errorf("GPU %d of node %s has %s of memory free, allocation needs %s", g, node.Name,
				spec.FormatBytes(max(0, node.GPUs[g].MemoryBytes-mem)), spec.FormatBytes(a.GPUMemoryBytes))
		}
	}
	return fmt.Errorf("GPUs %v of node %s are taken", a.GPUs, node.Name)
}

// shareText renders what an allocation holds of each GPU: "whole GPUs",
// "500m" or "500m with 20Gi".
func shareText(milli, mem int64) string {
	switch {
	case milli == 0:
		return "whole GPUs"
	case mem > 0:
		return fmt.Sprintf("%dm with %s", milli, spec.FormatBytes(mem))
	}
	return fmt.Sprintf("%dm", milli)
}

// Request is what one replica of a job needs, in the units placement uses.
type Request struct {
	GPUs int
	// GPUMilli is the share of one GPU a shared replica asks (1..999; GPUs
	// is then 1); 0 asks for GPUs whole GPUs.
	GPUMilli int64
	// GPUMemoryBytes is the least memory of each GPU; for a share, also
	// the GPU memory the share holds.
	GPUMemoryBytes int64
	GPUModel       string
	CPUMilli       int64
	MemoryBytes    int64
	SameNode       bool
}

// Shared reports whether a replica asks for a share of one GPU.
func (r Request) Shared() bool { return r.GPUMilli > 0 }

// ShareMemory is the GPU memory a shared replica asks for explicitly (0
// for whole GPUs, which hold all of theirs, and for a share that leaves
// it to its proportion of the GPU: see ShareMemoryOn).
func (r Request) ShareMemory() int64 {
	if r.Shared() {
		return r.GPUMemoryBytes
	}
	return 0
}

// ShareMemoryOn is the GPU memory a shared replica holds on GPU g: what
// it asks, or by default its share of the GPU's memory (500m of a 141 GB
// GPU holds 70.5 GB), so that shares that name no memory are still
// counted and limited (CUDA_MPS_PINNED_DEVICE_MEM_LIMIT). 0 for whole GPUs.
func (r Request) ShareMemoryOn(g api.GPU) int64 {
	switch {
	case !r.Shared():
		return 0
	case r.GPUMemoryBytes > 0:
		return r.GPUMemoryBytes
	}
	return g.MemoryBytes * r.GPUMilli / MilliPerGPU
}

// Allocation is what one replica placed on gpus of node n holds, for
// usage accounting (ID, resources and GPUs only).
func (r Request) Allocation(id string, n *api.Node, gpus []int) *api.Allocation {
	a := &api.Allocation{ID: id, GPUs: gpus, GPUMilli: r.GPUMilli, CPUMilli: r.CPUMilli, MemoryBytes: r.MemoryBytes}
	if r.Shared() && len(gpus) == 1 && gpus[0] >= 0 && gpus[0] < len(n.GPUs) {
		a.GPUMemoryBytes = r.ShareMemoryOn(n.GPUs[gpus[0]])
	}
	return a
}

// gpuRule is the rule a GPU fails for the request (RuleModel or
// RuleGPUMemory) and why, or RuleNone and "". A job's view of a node
// (jobStates) keeps only the GPUs that pass.
func (r Request) gpuRule(g api.GPU) (Rule, string) {
	if r.GPUModel != "" && !AnyModelMatches(g.Model, r.GPUModel) {
		return RuleModel, fmt.Sprintf("model %q is not %s", g.Model, strings.Join(quoted(ModelAlternatives(r.GPUModel)), " or "))
	}
	if r.GPUMemoryBytes > 0 && g.MemoryBytes < r.GPUMemoryBytes {
		return RuleGPUMemory, fmt.Sprintf("has %d bytes of memory, job asks for %d", g.MemoryBytes, r.GPUMemoryBytes)
	}
	return RuleNone, ""
}

// ModelAlternatives splits a spec's gpuModel ("H100,H200") into the
// models it accepts.
func ModelAlternatives(want string) []string {
	var out []string
	for _, m := range strings.Split(want, ",") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	return out
}

// AnyModelMatches reports whether a GPU's model is one of the
// alternatives of a spec's gpuModel.
func AnyModelMatches(model, want string) bool {
	for _, m := range ModelAlternatives(want) {
		if ModelMatches(model, m) {
			return true
		}
	}
	return false
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// ModelMatches reports whether a GPU's model name ("NVIDIA H200 141GB
// HBM3e", "NVIDIA A100-SXM4-80GB") is the model a job asks for: the whole
// name, or one of its words, case-insensitively. "A10" does not match an
// A100, and "H200" matches every H200 variant.
func ModelMatches(model, want string) bool {
	if strings.EqualFold(model, want) {
		return true
	}
	words := strings.FieldsFunc(model, func(r rune) bool { return r == ' ' || r == '-' || r == '_' || r == '/' })
	for _, w := range words {
		if strings.EqualFold(w, want) {
			return true
		}
	}
	return false
}
