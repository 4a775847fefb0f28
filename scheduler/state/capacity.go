package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// The FSM's capacity check is plain arithmetic over what allocations
// hold, with no placement rule in it (GPU models, memory per GPU,
// topology, shares' GPU memory): those run on the leader before the
// commit (scheduler/sched.Verify). A later version's rules then never
// change how an old log replays, so servers of two versions reach the
// same state. What is checked here cannot change between versions: a GPU
// index exists, no GPU holds more than milliPerGPU or more GPU memory than
// it has (as the allocations record it), and CPU and memory stay within
// the node.

// milliPerGPU is a whole GPU in milli-GPU, the unit shares are counted in.
const milliPerGPU = 1000

// nodeLoad is what live allocations hold on one node.
type nodeLoad struct {
	milli    map[int]int64  // per GPU index
	gpuMem   map[int]int64  // GPU memory shares hold, per GPU index
	holder   map[int]string // an allocation holding each GPU, for messages
	cpuMilli int64
	memory   int64
}

// loadsOf sums what the live allocations hold, per node ID.
func loadsOf(live []*api.Allocation) map[string]*nodeLoad {
	out := map[string]*nodeLoad{}
	for _, a := range live {
		if a.Terminal() {
			continue
		}
		l := out[a.NodeID]
		if l == nil {
			l = newLoad()
			out[a.NodeID] = l
		}
		l.add(a)
	}
	return out
}

// heldMilli is the milli-GPU an allocation holds on each of its GPUs.
func heldMilli(a *api.Allocation) int64 {
	if a.GPUMilli > 0 {
		return a.GPUMilli
	}
	return milliPerGPU
}

func (l *nodeLoad) add(a *api.Allocation) {
	for _, g := range a.GPUs {
		l.milli[g] += heldMilli(a)
		l.gpuMem[g] += a.GPUMemoryBytes
		l.holder[g] = a.ID
	}
	l.cpuMilli += a.CPUMilli
	l.memory += a.MemoryBytes
}

// check says why allocation a cannot be added to node n under load l, or
// "". l may be nil (nothing held).
func (l *nodeLoad) check(n *api.Node, a *api.Allocation) string {
	if a.GPUMilli < 0 || a.GPUMilli > milliPerGPU || a.CPUMilli < 0 || a.MemoryBytes < 0 || a.GPUMemoryBytes < 0 {
		return "allocation holds negative resources or more than a GPU's share"
	}
	if l == nil {
		l = newLoad()
	}
	held, gpuMem, cpu, mem := l.milli, l.gpuMem, l.cpuMilli, l.memory
	seen := map[int]bool{}
	for _, g := range a.GPUs {
		switch {
		case g < 0 || g >= len(n.GPUs):
			return fmt.Sprintf("node %s has no GPU %d", n.Name, g)
		case seen[g]:
			return fmt.Sprintf("GPU %d listed twice", g)
		case held[g] >= milliPerGPU:
			return fmt.Sprintf("GPU %d of node %s is held by allocation %s", g, n.Name, l.holder[g])
		case held[g] > 0 && a.GPUMilli == 0:
			return fmt.Sprintf("GPU %d of node %s is shared (%dm held, by allocation %s and maybe others), a whole GPU is asked", g, n.Name, held[g], l.holder[g])
		case held[g]+heldMilli(a) > milliPerGPU:
			return fmt.Sprintf("GPU %d of node %s has %dm free, allocation needs %dm", g, n.Name, max(0, milliPerGPU-held[g]), heldMilli(a))
		case a.GPUMemoryBytes > 0 && gpuMem[g]+a.GPUMemoryBytes > n.GPUs[g].MemoryBytes:
			return fmt.Sprintf("GPU %d of node %s has %s of memory free, allocation needs %s", g, n.Name,
				spec.FormatBytes(max(0, n.GPUs[g].MemoryBytes-gpuMem[g])), spec.FormatBytes(a.GPUMemoryBytes))
		}
		seen[g] = true
	}
	if cpu+a.CPUMilli > n.CPUMilli {
		return fmt.Sprintf("node %s has %dm CPU free, allocation needs %dm", n.Name, n.CPUMilli-cpu, a.CPUMilli)
	}
	if mem+a.MemoryBytes > n.MemoryBytes {
		return fmt.Sprintf("node %s has %d bytes of memory free, allocation needs %d", n.Name, n.MemoryBytes-mem, a.MemoryBytes)
	}
	return ""
}

func newLoad() *nodeLoad {
	return &nodeLoad{milli: map[int]int64{}, gpuMem: map[int]int64{}, holder: map[int]string{}}
}

func (l *nodeLoad) clone() *nodeLoad {
	c := newLoad()
	if l != nil {
		for g, m := range l.milli {
			c.milli[g] = m
		}
		for g, m := range l.gpuMem {
			c.gpuMem[g] = m
		}
		for g, id := range l.holder {
			c.holder[g] = id
		}
		c.cpuMilli, c.memory = l.cpuMilli, l.memory
	}
	return c
}

// onNode checks that rank a's node exists, is ready and eligible, and has
// room for it on top of loads and what earlier ranks of the same placement
// took (tentative, which it extends); it returns the node, or why not.
func onNode(txn *memdb.Txn, loads, tentative map[string]*nodeLoad, a *api.Allocation) (*api.Node, string) {
	rawNode, _ := txn.First(tableNodes, "id", a.NodeID)
	if rawNode == nil {
		return nil, fmt.Sprintf("rank %d: node %s does not exist", a.Rank, a.NodeID)
	}
	nd := rawNode.(*api.Node)
	switch {
	case nd.Ineligible:
		return nil, fmt.Sprintf("rank %d: node %s is not eligible for new allocations", a.Rank, nd.Name)
	case nd.Status != api.NodeReady:
		return nil, fmt.Sprintf("rank %d: node %s is %s", a.Rank, nd.Name, nd.Status)
	}
	l, ok := tentative[a.NodeID]
	if !ok {
		l = loads[a.NodeID].clone()
		tentative[a.NodeID] = l
	}
	if why := l.check(nd, a); why != "" {
		return nil, fmt.Sprintf("rank %d: %s", a.Rank, why)
	}
	l.add(a)
	return nd, ""
}
