package placement

import (
	"fmt"
	"strings"

	"github.com/ark-sched/ark/scheduler/api"
)

// Usage is what live allocations hold on one node.
type Usage struct {
	GPUs        map[int]string // GPU index -> allocation ID
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

func (u *Usage) add(a *api.Allocation) *Usage {
	if u == nil {
		u = &Usage{GPUs: map[int]string{}}
	}
	for _, g := range a.GPUs {
		u.GPUs[g] = a.ID
	}
	u.CPUMilli += a.CPUMilli
	u.MemoryBytes += a.MemoryBytes
	return u
}

// Add records an allocation in the usage (nil is an empty usage).
func (u *Usage) Add(a *api.Allocation) *Usage { return u.add(a) }

// Fit reports whether an allocation as placed fits on node given what is
// already used there: the node is ready, its GPU indexes exist, match the
// job's model and memory, and are free, and CPU and memory fit.
func Fit(node *api.Node, used *Usage, a *api.Allocation, req Request) error {
	if node.Status != api.NodeReady {
		return fmt.Errorf("node %s is %s", node.Name, node.Status)
	}
	if len(a.GPUs) != req.GPUs {
		return fmt.Errorf("allocation holds %d GPUs, job asks for %d", len(a.GPUs), req.GPUs)
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
		if used != nil {
			if holder, busy := used.GPUs[g]; busy {
				return fmt.Errorf("GPU %d of node %s is held by allocation %s", g, node.Name, holder)
			}
		}
		if why := req.gpuMismatch(node.GPUs[g]); why != "" {
			return fmt.Errorf("GPU %d of node %s: %s", g, node.Name, why)
		}
	}
	var cpu, mem int64
	if used != nil {
		cpu, mem = used.CPUMilli, used.MemoryBytes
	}
	if cpu+a.CPUMilli > node.CPUMilli {
		return fmt.Errorf("node %s has %dm CPU free, allocation needs %dm", node.Name, node.CPUMilli-cpu, a.CPUMilli)
	}
	if mem+a.MemoryBytes > node.MemoryBytes {
		return fmt.Errorf("node %s has %d bytes of memory free, allocation needs %d", node.Name, node.MemoryBytes-mem, a.MemoryBytes)
	}
	return nil
}

// Request is what one replica of a job needs, in the units placement uses.
type Request struct {
	GPUs           int
	GPUMemoryBytes int64
	GPUModel       string
	CPUMilli       int64
	MemoryBytes    int64
	SameNode       bool
}

// gpuMismatch says why a GPU cannot serve the request, or "".
func (r Request) gpuMismatch(g api.GPU) string {
	if r.GPUModel != "" && !ModelMatches(g.Model, r.GPUModel) {
		return fmt.Sprintf("model %q is not %q", g.Model, r.GPUModel)
	}
	if r.GPUMemoryBytes > 0 && g.MemoryBytes < r.GPUMemoryBytes {
		return fmt.Sprintf("has %d bytes of memory, job asks for %d", g.MemoryBytes, r.GPUMemoryBytes)
	}
	return ""
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
