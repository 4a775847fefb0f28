package ui

import (
	"fmt"

	"github.com/ark-sched/ark/scheduler/api"
)

// The nodes page: each node's state, hardware and what runs on it.

type nodeInfo struct {
	*api.Node
	State  string
	GPUs   string // "8 x H200 (141 GiB)"
	Memory string
	Allocs int // live allocations, hidden jobs' included
}

func buildNodes(v *View) []nodeInfo {
	live := map[string]int{}
	count := func(a *api.Allocation) {
		if !a.Terminal() {
			live[a.NodeID]++
		}
	}
	for _, j := range v.Jobs {
		for _, a := range j.Allocations {
			count(a)
		}
	}
	for _, a := range v.Hidden {
		count(a)
	}
	var out []nodeInfo
	for _, n := range sortedNodes(v.Nodes) {
		ni := nodeInfo{Node: n, State: nodeState(n), Memory: bytesOf(n.MemoryBytes), Allocs: live[n.ID]}
		if len(n.GPUs) > 0 {
			ni.GPUs = fmt.Sprintf("%d x %s (%s)", len(n.GPUs), n.GPUs[0].Model, bytesOf(n.GPUs[0].MemoryBytes))
		}
		out = append(out, ni)
	}
	return out
}

func bytesOf(b int64) string {
	const gi = 1 << 30
	if b >= gi {
		return fmt.Sprintf("%.0f GiB", float64(b)/gi)
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}
