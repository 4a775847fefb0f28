package placement

import "strings"

// MilliPerGPU is one whole GPU in milli-GPU.
const MilliPerGPU = 1000

// Task is what one replica asks of one node, in the units the packing
// policies use. A task takes either CPU only (GPUs == 0), a share of one GPU
// (GPUs == 1, GPUMilli < 1000), or GPUs whole GPUs (GPUMilli == 1000).
type Task struct {
	CPUMilli int64
	// Memory is host memory in the caller's unit (bytes in the engine, MiB
	// in the openb trace); it is only compared with NodeState memory.
	Memory   int64
	GPUs     int
	GPUMilli int64 // per GPU
	// Models are the GPU models the task accepts; empty accepts any.
	Models []string
	// GPUMemory is the least memory each GPU must have (0: any).
	GPUMemory int64
	// NVLink requires the replica's whole GPUs in one NVLink domain
	// (checkNVLink); Gang.NVLinkRequired sets it.
	NVLink bool
}

// Shared reports whether the task asks for a fraction of one GPU.
func (t Task) Shared() bool { return t.GPUs == 1 && t.GPUMilli < MilliPerGPU }

// TotalMilli is the GPU milli the task holds in all.
func (t Task) TotalMilli() int64 { return int64(t.GPUs) * t.GPUMilli }

// NodeState is the capacity and what is free on one node. Its GPUs are of
// one model (the openb cluster, and every node the agent reports today);
// the engine builds one NodeState per node from the api types.
type NodeState struct {
	Name        string
	Model       string
	GPUMemory   int64 // per GPU
	CPUMilli    int64 // capacity
	CPUFree     int64
	Memory      int64 // capacity
	MemFree     int64
	GPUFree     []int64 // milli free per GPU index
	NotReady    bool
	NVLinkGroup []int // NVLink domain of each GPU index (nil: one domain)
	NUMA        []int // NUMA side of each GPU index (nil: unknown)
	Fabric      string
	// Excluded is the rule that left GPUs of the node out of a job's view
	// (RuleModel or RuleGPUMemory), RuleNone when none was: the rule a GPU
	// task fails on a node left without GPUs.
	Excluded Rule
	// Order is the node's position in the cluster sorted by name (first fit).
	Order int
}

// Clone returns a deep copy of the node state.
func (n *NodeState) Clone() *NodeState {
	c := *n
	c.GPUFree = append([]int64(nil), n.GPUFree...)
	return &c
}

// FreeMilli is the GPU milli free on the node.
func (n *NodeState) FreeMilli() int64 {
	var s int64
	for _, f := range n.GPUFree {
		s += f
	}
	return s
}

// FullyFree counts the GPUs nothing holds.
func (n *NodeState) FullyFree() int {
	c := 0
	for _, f := range n.GPUFree {
		if f == MilliPerGPU {
			c++
		}
	}
	return c
}

// ModelAccepted reports whether a GPU model is one of the task's models.
func ModelAccepted(model string, models []string) bool {
	if len(models) == 0 {
		return true
	}
	for _, m := range models {
		if strings.EqualFold(m, model) || ModelMatches(model, m) {
			return true
		}
	}
	return false
}

// Check runs the feasibility checkers for one task on one node, in order,
// and returns the first rule it fails (RuleNone when it fits). It is the
// one per-node feasibility check: the planner, the explanation of a
// pending job and Fit all call it.
func (n *NodeState) Check(t Task) Rule {
	for _, c := range checkers {
		if r := c(n, t); r != RuleNone {
			return r
		}
	}
	return RuleNone
}

// Take takes the task's share of the given GPUs, CPU and memory (one
// task on one node; the pass over many jobs is Place).
func (n *NodeState) Take(t Task, gpus []int) {
	n.CPUFree -= t.CPUMilli
	n.MemFree -= t.Memory
	for _, g := range gpus {
		n.GPUFree[g] -= t.GPUMilli
	}
}

// Release gives back what Take took.
func (n *NodeState) Release(t Task, gpus []int) {
	n.CPUFree += t.CPUMilli
	n.MemFree += t.Memory
	for _, g := range gpus {
		n.GPUFree[g] += t.GPUMilli
	}
}

// Free gives back what a live allocation holds: CPU, memory, and on each of
// gpus its share (milli > 0) or the whole GPU (milli 0), the convention of
// Running and Ending. Preemption and reservations use it to see a node
// without some of its allocations.
func (n *NodeState) Free(cpuMilli, memory, milli int64, gpus []int) {
	n.CPUFree += cpuMilli
	n.MemFree += memory
	for _, g := range gpus {
		if milli > 0 {
			n.GPUFree[g] += milli
		} else {
			n.GPUFree[g] = MilliPerGPU
		}
	}
}

// lowestFree returns the lowest k GPU indexes with at least milli free
// (k whole GPUs: the lowest fully free ones), or nil.
func lowestFree(n *NodeState, k int, milli int64) []int {
	out := make([]int, 0, k)
	for i, f := range n.GPUFree {
		if len(out) == k {
			break
		}
		if f >= milli {
			out = append(out, i)
		}
	}
	if len(out) < k {
		return nil
	}
	return out
}

// tightestGPU returns the GPU with the least free milli that still holds
// milli (lowest index on ties), or -1.
func tightestGPU(n *NodeState, milli int64) int {
	best := -1
	for i, f := range n.GPUFree {
		if f >= milli && (best < 0 || f < n.GPUFree[best]) {
			best = i
		}
	}
	return best
}
