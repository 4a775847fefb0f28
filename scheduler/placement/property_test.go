package placement

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/quick"

	"github.com/ark-sched/ark/scheduler/api"
	"github.com/ark-sched/ark/scheduler/spec"
)

// TestPropertyPlaceNeverOvercommits: over random clusters (mixed models,
// NUMA layouts, down nodes, live allocations, whole and shared) and random
// job mixes (shares of a GPU among them), every plan passes Fit (no GPU
// double-booked, no GPU's milli or memory over-committed by shares, CPU and
// memory within the node) and every job is placed whole (all its replicas)
// or left pending.
func TestPropertyPlaceNeverOvercommits(t *testing.T) {
	f := func(seed uint64) bool {
		rng := rand.New(rand.NewPCG(seed, 3))
		var nodes []*api.Node
		var allocs []*api.Allocation
		for i := 0; i < 2+rng.IntN(10); i++ {
			n := node(fmt.Sprintf("n%02d", i), 1+rng.IntN(8), []string{"NVIDIA H200", "NVIDIA A100-SXM4-80GB"}[rng.IntN(2)], 80+int64(rng.IntN(2))*61)
			n.CPUMilli = int64(4+rng.IntN(60)) * 1000
			n.MemoryBytes = int64(8+rng.IntN(500)) * gi
			for g := range n.GPUs {
				n.GPUs[g].NUMANode = g * 2 / len(n.GPUs)
			}
			if rng.IntN(8) == 0 {
				n.Status = api.NodeDown
			}
			nodes = append(nodes, n)
			if n.Status == api.NodeReady && rng.IntN(2) == 0 {
				allocs = append(allocs, live(fmt.Sprintf("x%d", i), n.ID, rng.IntN(len(n.GPUs))))
			}
			// Shares on a few GPUs, some with GPU memory.
			for k := 0; n.Status == api.NodeReady && k < rng.IntN(4); k++ {
				g := rng.IntN(len(n.GPUs))
				u := NodeUsage(allocs)[n.ID]
				milli := min(int64(1+rng.IntN(999)), MilliPerGPU-u.UsedMilli(g))
				mem := min(int64(rng.IntN(3))*20*gi, n.GPUs[g].MemoryBytes-u.UsedGPUMemory(g))
				if milli > 0 {
					allocs = append(allocs, liveShare(fmt.Sprintf("s%d-%d", i, k), n.ID, g, milli, mem))
				}
			}
		}
		var jobs []*api.Job
		for j := 0; j < 1+rng.IntN(12); j++ {
			var opts []func(*spec.Job)
			switch rng.IntN(8) {
			case 0:
				opts = append(opts, sameNode)
			case 1:
				opts = append(opts, func(s *spec.Job) { s.Kind = spec.KindInference })
			case 2:
				opts = append(opts, model("A100"))
			case 3:
				opts = append(opts, cpu(fmt.Sprint(1+rng.IntN(16))), mem(fmt.Sprintf("%dGi", 1+rng.IntN(64))))
			case 4:
				opts = append(opts, func(s *spec.Job) { s.Topology.NVLink = spec.PrefRequired })
			case 5, 6:
				mem := []string{"", "10Gi", "50Gi", "100Gi"}[rng.IntN(4)]
				opts = append(opts, share([]int{100, 250, 300, 500, 700, 999}[rng.IntN(6)], mem))
				if rng.IntN(3) == 0 {
					opts = append(opts, func(s *spec.Job) { s.Kind = spec.KindInference })
				} else if rng.IntN(3) == 0 {
					opts = append(opts, sameNode)
				}
			}
			jobs = append(jobs, job(fmt.Sprintf("j%02d", j), 1+rng.IntN(4), rng.IntN(5), opts...))
		}
		res := Place(Input{Nodes: nodes, Allocs: allocs, Pending: jobs})
		verifyResult(t, nodes, allocs, res)
		replicas := map[string]int{}
		for _, j := range jobs {
			replicas[j.ID] = max(j.Spec.Replicas, 1)
		}
		for _, p := range res.Placements {
			if len(p.Assignments) != replicas[p.JobID] {
				t.Errorf("seed %d: job %s placed %d of %d replicas", seed, p.JobID, len(p.Assignments), replicas[p.JobID])
			}
			if p.Request.SameNode {
				for _, a := range p.Assignments {
					if a.NodeID != p.Assignments[0].NodeID {
						t.Errorf("seed %d: sameNode job %s spans nodes", seed, p.JobID)
					}
				}
			}
		}
		if len(res.Placements)+len(res.Unplaced) != len(jobs) {
			t.Errorf("seed %d: %d placed + %d pending != %d jobs", seed, len(res.Placements), len(res.Unplaced), len(jobs))
		}
		return !t.Failed()
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 300}); err != nil {
		t.Error(err)
	}
}

// TestPropertyPackingNeverOvercommits drives the packing layer directly
// with shared and whole GPUs and gangs: free GPU milli stays within 0..1000
// per GPU, CPU and memory never go negative, and a gang is whole or absent.
func TestPropertyPackingNeverOvercommits(t *testing.T) {
	f := func(seed uint64) bool {
		rng := rand.New(rand.NewPCG(seed, 4))
		var nodes []*NodeState
		for i := 0; i < 3+rng.IntN(20); i++ {
			n := ns([]string{"T4", "A10"}[rng.IntN(2)], int64(8+rng.IntN(56))*1000, int64(16+rng.IntN(240)), make([]int64, 1+rng.IntN(8))...)
			for g := range n.GPUFree {
				n.GPUFree[g] = MilliPerGPU
			}
			n.Fabric = fmt.Sprintf("rack%d", rng.IntN(3))
			n.Order = i
			nodes = append(nodes, n)
		}
		c := NewNodeIndex(nodes)
		p, _ := NewPolicy([]string{"ark", "fgd", "bestfit", "firstfit", "random"}[rng.IntN(5)],
			[]ShapeFreq{{GPUs: 1, GPUMilli: 300, Freq: 0.5}, {GPUs: 1, GPUMilli: 1000, Freq: 0.5}}, seed)
		for k := 0; k < 60; k++ {
			tk := randomTask(rng)
			if tk.GPUs > 0 && rng.IntN(3) == 0 {
				tk.Models = []string{"A10"}
			}
			if o, ok := p.(Observer); ok {
				o.Observe(tk)
			}
			g := Gang{Replicas: 1 + rng.IntN(4), Task: tk, SameNode: rng.IntN(4) == 0, Spread: rng.IntN(4) == 0}
			slots, ok := c.PlaceGang(g, p, nil)
			if ok != (slots != nil) || (ok && len(slots) != g.Replicas) {
				t.Errorf("seed %d: gang of %d: ok=%v with %d slots", seed, g.Replicas, ok, len(slots))
			}
			if ok && g.SameNode {
				for _, s := range slots {
					if s.Node != slots[0].Node {
						t.Errorf("seed %d: sameNode gang spans nodes", seed)
					}
				}
			}
			for _, s := range slots {
				if len(s.GPUs) != tk.GPUs {
					t.Errorf("seed %d: replica holds %d GPUs, asks %d", seed, len(s.GPUs), tk.GPUs)
				}
			}
			for _, n := range c.Nodes {
				if n.CPUFree < 0 || n.MemFree < 0 {
					t.Errorf("seed %d: node %d over-committed (CPU %d, memory %d)", seed, n.Order, n.CPUFree, n.MemFree)
				}
				for gi, f := range n.GPUFree {
					if f < 0 || f > MilliPerGPU {
						t.Errorf("seed %d: node %d GPU %d has %d milli free", seed, n.Order, gi, f)
					}
				}
			}
		}
		return !t.Failed()
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 200}); err != nil {
		t.Error(err)
	}
}
