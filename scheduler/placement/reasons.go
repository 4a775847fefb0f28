package placement

import (
	"fmt"
	"strings"
)

// Reason says why a node cannot take a replica. Every feasibility checker
// returns one; explanations count nodes per reason.
type Reason int

// Rejection reasons, in the order the checkers run.
const (
	ReasonNone      Reason = iota
	ReasonNotReady         // node is not ready
	ReasonModel            // no GPU of an accepted model
	ReasonGPUMemory        // GPUs have too little memory
	ReasonGPUTotal         // fewer GPUs in total than one replica needs
	ReasonFreeGPUs         // too few completely free GPUs
	ReasonGPUMilli         // no GPU with enough free milli for a shared request
	ReasonCPU              // too little free CPU
	ReasonMemory           // too little free memory
	ReasonNVLink           // not enough free GPUs in one NVLink domain
	numReasons
)

var reasonText = [numReasons]string{
	ReasonNone:      "fit",
	ReasonNotReady:  "are not ready",
	ReasonModel:     "lack GPUs of the requested model",
	ReasonGPUMemory: "lack GPUs with enough memory",
	ReasonGPUTotal:  "have fewer GPUs in total than one replica needs",
	ReasonFreeGPUs:  "lack %d free GPUs",
	ReasonGPUMilli:  "lack a GPU with %dm free",
	ReasonCPU:       "have too little free CPU",
	ReasonMemory:    "have too little free memory",
	ReasonNVLink:    "lack %d free GPUs in one NVLink domain",
}

// Text is the reason as a phrase after a node count ("3 nodes lack 8 free
// GPUs"), with the task's numbers filled in.
func (r Reason) Text(t Task) string {
	if r < 0 || r >= numReasons {
		return fmt.Sprintf("reason(%d)", int(r))
	}
	s := reasonText[r]
	switch r {
	case ReasonFreeGPUs, ReasonNVLink:
		return fmt.Sprintf(s, t.GPUs)
	case ReasonGPUMilli:
		return fmt.Sprintf(s, t.GPUMilli)
	}
	return s
}

func (r Reason) String() string { return r.Text(Task{}) }

// ReasonCounts counts nodes per rejection reason.
type ReasonCounts [numReasons]int

// Explain renders the counts as "3 nodes lack 8 free GPUs, 1 node is not
// ready", most common first, ties in reason order.
func (c *ReasonCounts) Explain(t Task) string {
	type rc struct {
		r Reason
		n int
	}
	var list []rc
	for r := ReasonNotReady; r < numReasons; r++ {
		if c[r] > 0 {
			list = append(list, rc{r, c[r]})
		}
	}
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && list[j].n > list[j-1].n; j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
	parts := make([]string, 0, len(list))
	for _, e := range list {
		noun := "nodes"
		if e.n == 1 {
			noun = "node"
		}
		parts = append(parts, fmt.Sprintf("%d %s %s", e.n, noun, e.r.Text(t)))
	}
	return strings.Join(parts, ", ")
}

// A checker is one feasibility filter: ReasonNone when the node can take
// the task as far as this checker is concerned.
type checker func(n *NodeState, t Task) Reason

// checkers is the feasibility pipeline, cheapest and most decisive first.
var checkers = []checker{
	checkReady,
	checkModel,
	checkGPUMemory,
	checkGPUTotal,
	checkFreeGPUs,
	checkGPUMilli,
	checkCPU,
	checkMemory,
}

func checkReady(n *NodeState, _ Task) Reason {
	if n.NotReady {
		return ReasonNotReady
	}
	return ReasonNone
}

func checkModel(n *NodeState, t Task) Reason {
	if t.GPUs == 0 {
		return ReasonNone
	}
	if len(n.GPUFree) == 0 || !ModelAccepted(n.Model, t.Models) {
		return ReasonModel
	}
	return ReasonNone
}

func checkGPUMemory(n *NodeState, t Task) Reason {
	if t.GPUs > 0 && t.GPUMemory > 0 && n.GPUMemory < t.GPUMemory {
		return ReasonGPUMemory
	}
	return ReasonNone
}

func checkGPUTotal(n *NodeState, t Task) Reason {
	if t.GPUs > len(n.GPUFree) {
		return ReasonGPUTotal
	}
	return ReasonNone
}

func checkFreeGPUs(n *NodeState, t Task) Reason {
	if t.GPUs == 0 || t.Shared() {
		return ReasonNone
	}
	if n.FullyFree() < t.GPUs {
		return ReasonFreeGPUs
	}
	return ReasonNone
}

func checkGPUMilli(n *NodeState, t Task) Reason {
	if !t.Shared() {
		return ReasonNone
	}
	for _, f := range n.GPUFree {
		if f >= t.GPUMilli {
			return ReasonNone
		}
	}
	return ReasonGPUMilli
}

func checkCPU(n *NodeState, t Task) Reason {
	if n.CPUFree < t.CPUMilli {
		return ReasonCPU
	}
	return ReasonNone
}

func checkMemory(n *NodeState, t Task) Reason {
	if n.MemFree < t.Memory {
		return ReasonMemory
	}
	return ReasonNone
}
