package sched

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/placement"
	"github.com/ark-sched/ark/scheduler/spec"
	"github.com/ark-sched/ark/scheduler/state"
	"github.com/ark-sched/ark/storage/checkpoint/ckptpath"
)

// Rendezvous and service ports are taken from this range on a node's
// address.
const (
	PortBase  = 29500
	PortRange = 2000
)

// ports are the rendezvous and service ports live allocations hold, per
// node address (ports are per address: two nodes may share one).
type ports map[string]map[int]bool

func usedPorts(live []*api.Allocation, nodeAddr map[string]string) ports {
	p := ports{}
	for _, a := range live {
		if a.MasterPort != 0 {
			p.take(a.MasterAddr, a.MasterPort)
		}
		if a.Port != 0 {
			p.take(nodeAddr[a.NodeID], a.Port)
		}
	}
	return p
}

func (p ports) take(addr string, port int) {
	if p[addr] == nil {
		p[addr] = map[int]bool{}
	}
	p[addr][port] = true
}

// free takes a port of the range no live allocation holds on addr, or 0.
// The search starts at a random offset: a port something outside Ark
// holds on the node (a user's own torchrun, another cluster on the same
// host) then fails one attempt, not every restart of the job.
func (p ports) free(addr string, rng *rand.Rand) int {
	start := rng.IntN(PortRange)
	for i := range PortRange {
		port := PortBase + (start+i)%PortRange
		if !p[addr][port] {
			p.take(addr, port)
			return port
		}
	}
	return 0
}

// build turns one placement into the job's allocations, with ports taken
// from used; why is set (and nothing taken) when a port is missing.
func build(cfg *Config, job *api.Job, p placement.Placement, nodes map[string]*api.Node, used ports, rng *rand.Rand) (allocs []*api.Allocation, why string) {
	master := nodes[p.Assignments[0].NodeID]
	port := used.free(master.Address, rng)
	if port == 0 {
		return nil, fmt.Sprintf("waiting for a free rendezvous port on %s", master.Address)
	}
	allocs = allocations(cfg, job, p, nodes, master.Address, port, rng)
	if job.Kind == spec.KindInference {
		for _, a := range allocs {
			if a.Port = used.free(nodes[a.NodeID].Address, rng); a.Port == 0 {
				return nil, "waiting for free service ports on the chosen nodes"
			}
		}
	}
	return allocs, ""
}

// allocations builds a placed job's allocations with ranks and the
// rendezvous point.
func allocations(cfg *Config, job *api.Job, p placement.Placement, nodes map[string]*api.Node, masterAddr string, masterPort int, rng *rand.Rand) []*api.Allocation {
	nodeRank := map[string]int{}
	localCount := map[string]int{}
	for _, a := range p.Assignments {
		if _, ok := nodeRank[a.NodeID]; !ok {
			nodeRank[a.NodeID] = len(nodeRank)
		}
		localCount[a.NodeID]++
	}
	local := map[string]int{}
	out := make([]*api.Allocation, 0, len(p.Assignments))
	// The suffix tells attempts of a rank apart (a rank restarts under a
	// new ID; the FSM refuses an ID that exists).
	var b [2]byte
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	suffix := hex.EncodeToString(b[:])
	for _, a := range p.Assignments {
		n := nodes[a.NodeID]
		out = append(out, &api.Allocation{
			ID:             fmt.Sprintf("%s-%d-%s", job.ID, a.Rank, suffix),
			JobID:          job.ID,
			NodeID:         n.ID,
			Node:           n.Name,
			Rank:           a.Rank,
			WorldSize:      len(p.Assignments),
			NodeRank:       nodeRank[a.NodeID],
			LocalRank:      local[a.NodeID],
			LocalWorldSize: localCount[a.NodeID],
			GPUs:           a.GPUs,
			GPUMilli:       p.Request.GPUMilli,
			GPUMemoryBytes: p.Request.Allocation("", n, a.GPUs).GPUMemoryBytes,
			CPUMilli:       p.Request.CPUMilli,
			MemoryBytes:    p.Request.MemoryBytes,
			MasterAddr:     masterAddr,
			MasterPort:     masterPort,
			Attempt:        job.RestartCount,
			JobVersion:     job.Version,
			Kind:           job.Kind,
			Task:           job.Spec.Task,
			Checkpoint:     job.Spec.Checkpoint,
			CheckpointURI:  CheckpointURI(cfg.CheckpointStore, job),
		})
		local[a.NodeID]++
	}
	return out
}

// CheckpointURI is where a job's checkpoints go: STORE/NAMESPACE/JOB, one
// store prefix per namespace so that namespaces' keys never mix (the
// format is ckptpath's).
func CheckpointURI(store string, job *api.Job) string {
	return ckptpath.JobURI(store, job.Namespace, job.ID)
}

// preemptions turns the engine's evictions into the plan's; each holds
// the nodes it frees for the preemptor until holdUntil.
func preemptions(res placement.Result) []state.Preemption {
	out := make([]state.Preemption, 0, len(res.Preemptions))
	for _, p := range res.Preemptions {
		out = append(out, state.Preemption{JobID: p.JobID, Victims: p.Victims, Reclaim: p.Reclaim, LostGPUSeconds: p.LostGPUSeconds, Nodes: p.Nodes, StopCause: api.AllocPreempted})
	}
	return out
}
