package placementsim

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/ark-sched/ark/scheduler/placement"
)

// SpeedResult is the synthetic speed benchmark's outcome.
type SpeedResult struct {
	Nodes        int     `json:"nodes"`
	SinglePlaced int     `json:"single_placed"`
	SingleTried  int     `json:"single_tried"`
	SinglePerSec float64 `json:"single_per_sec"`
	// The same with CPU and memory drawn per task (1-16 cores, 4-128 GiB):
	// many more distinct node states, the harder case for the class index.
	DiversePlaced  int     `json:"diverse_placed"`
	DiversePerSec  float64 `json:"diverse_per_sec"`
	DiverseClasses int     `json:"diverse_classes"`
	DiverseGroups  int     `json:"diverse_groups"` // distinct GPU states
	GangPlaced     int     `json:"gang_placed"`
	GangTried      int     `json:"gang_tried"`
	GangPerSec     float64 `json:"gang_per_sec"`
	Classes        int     `json:"classes"` // distinct node states at the end of the single run
	Groups         int     `json:"groups"`  // distinct GPU states then
}

// SyntheticCluster is n nodes of 8 GPUs (one NVLink domain, two NUMA
// sides of 4), 128 cores, 1 TiB, 32 nodes per fabric (rack).
func SyntheticCluster(n int) []*placement.NodeState {
	nodes := make([]*placement.NodeState, n)
	numa := []int{0, 0, 0, 0, 1, 1, 1, 1}
	for i := range nodes {
		nodes[i] = &placement.NodeState{
			Name: fmt.Sprintf("node-%05d", i), Model: "H100", CPUMilli: 128000, CPUFree: 128000,
			Memory: 1 << 20, MemFree: 1 << 20, GPUFree: []int64{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000},
			NUMA: numa, Fabric: fmt.Sprintf("rack-%03d", i/32), Order: i,
		}
	}
	return nodes
}

// synthTask draws a task of the mix: whole GPUs (1, 2, 4, 8) and shares
// (250, 500 milli), CPU and memory in proportion.
func synthTask(rng *rand.Rand, singleOnly bool) placement.Task {
	r := rng.IntN(100)
	if singleOnly {
		r = r % 85
	}
	switch {
	case r < 50:
		return placement.Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 12000, Memory: 98304}
	case r < 65:
		return placement.Task{GPUs: 1, GPUMilli: 500, CPUMilli: 4000, Memory: 16384}
	case r < 85:
		return placement.Task{GPUs: 1, GPUMilli: 250, CPUMilli: 2000, Memory: 8192}
	case r < 93:
		return placement.Task{GPUs: 2, GPUMilli: 1000, CPUMilli: 24000, Memory: 196608}
	case r < 98:
		return placement.Task{GPUs: 4, GPUMilli: 1000, CPUMilli: 48000, Memory: 393216}
	}
	return placement.Task{GPUs: 8, GPUMilli: 1000, CPUMilli: 96000, Memory: 786432}
}

// checkCluster verifies nothing is over-committed.
func checkCluster(nodes []*placement.NodeState) error {
	for _, n := range nodes {
		if n.CPUFree < 0 || n.MemFree < 0 {
			return fmt.Errorf("node %s over-committed: CPU free %d, memory free %d", n.Name, n.CPUFree, n.MemFree)
		}
		for g, f := range n.GPUFree {
			if f < 0 || f > placement.MilliPerGPU {
				return fmt.Errorf("node %s GPU %d has %d milli free", n.Name, g, f)
			}
		}
	}
	return nil
}

// diverseTask draws t's CPU (1-16 cores) and memory (4-128 GiB) apart
// from its GPUs, as when every task brings its own.
func diverseTask(rng *rand.Rand, t placement.Task) placement.Task {
	t.CPUMilli = int64(1+rng.IntN(16)) * 1000
	t.Memory = int64(4+rng.IntN(125)) * 1024
	return t
}

// prefill returns a synthetic cluster of n nodes with tasks from draw
// placed by Ark's policy until 1/den of its GPU milli is used, and the
// policy, which has seen them.
func prefill(n int, den int64, draw func() placement.Task) (*placement.NodeIndex, *placement.Ark) {
	c := placement.NewNodeIndex(SyntheticCluster(n))
	ark := placement.NewArk()
	var total, used int64
	for _, n := range c.Nodes {
		total += int64(len(n.GPUFree)) * placement.MilliPerGPU
	}
	for used < total/den {
		t := draw()
		ark.Observe(t)
		if i, g := c.Select(t, ark, nil); i >= 0 {
			c.Take(i, t, g)
			used += t.TotalMilli()
		}
	}
	return c, ark
}

// placeAll places the tasks one by one with the policy (which observes
// each first) and returns how many it placed.
func placeAll(c *placement.NodeIndex, ark *placement.Ark, tasks []placement.Task) int {
	placed := 0
	for _, t := range tasks {
		ark.Observe(t)
		if i, g := c.Select(t, ark, nil); i >= 0 {
			c.Take(i, t, g)
			placed++
		}
	}
	return placed
}

type live struct {
	t     placement.Task
	slots []placement.Slot
}

// gangRun places gangs one by one with Ark's policy; once more than keep
// are live, the oldest finishes.
type gangRun struct {
	c      *placement.NodeIndex
	ark    *placement.Ark
	keep   int
	window []live
}

// gang8 is a gang of 8-GPU replicas.
func gang8(replicas int) placement.Gang {
	return placement.Gang{Replicas: replicas, Task: placement.Task{GPUs: 8, GPUMilli: 1000, CPUMilli: 96000, Memory: 786432}}
}

func (r *gangRun) place(g placement.Gang) (bool, error) {
	r.ark.Observe(g.Task)
	slots, ok := r.c.PlaceGang(g, r.ark, nil)
	if ok {
		if len(slots) != g.Replicas {
			return false, fmt.Errorf("gang of %d placed %d replicas", g.Replicas, len(slots))
		}
		r.window = append(r.window, live{g.Task, slots})
	}
	if len(r.window) > r.keep {
		for _, s := range r.window[0].slots {
			r.c.Release(s.Node, r.window[0].t, s.GPUs)
		}
		r.window = r.window[1:]
	}
	return ok, nil
}

// Speed runs the synthetic speed benchmark on one core: single-GPU
// placements (whole and shared) on a cluster prefilled to about half, then
// 2-to-8-node gangs of 8-GPU replicas with the oldest gangs finishing to
// keep room. Each phase checks that nothing is over-committed and every
// gang is whole before its figure counts.
func Speed(nodes, singles, gangs int, seed uint64) (*SpeedResult, error) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	res := &SpeedResult{Nodes: nodes}
	rng := rand.New(rand.NewPCG(seed, 1))

	// Single placements.
	c, ark := prefill(nodes, 2, func() placement.Task { return synthTask(rng, false) })
	tasks := make([]placement.Task, singles)
	for i := range tasks {
		tasks[i] = synthTask(rng, true)
	}
	start := time.Now()
	res.SinglePlaced = placeAll(c, ark, tasks)
	el := time.Since(start)
	res.SingleTried = singles
	res.Classes, res.Groups = c.Classes(), c.Groups()
	if err := checkCluster(c.Nodes); err != nil {
		return nil, err
	}
	res.SinglePerSec = float64(res.SinglePlaced) / el.Seconds()

	// Singles with diverse CPU and memory, on a cluster prefilled the same
	// way.
	c, ark = prefill(nodes, 2, func() placement.Task { return diverseTask(rng, synthTask(rng, false)) })
	for i := range tasks {
		tasks[i] = diverseTask(rng, synthTask(rng, true))
	}
	start = time.Now()
	res.DiversePlaced = placeAll(c, ark, tasks)
	el = time.Since(start)
	res.DiverseClasses, res.DiverseGroups = c.Classes(), c.Groups()
	if err := checkCluster(c.Nodes); err != nil {
		return nil, err
	}
	res.DiversePerSec = float64(res.DiversePlaced) / el.Seconds()

	// Gangs.
	c, ark = prefill(nodes, 5, func() placement.Task { return synthTask(rng, false) })
	reqs := make([]placement.Gang, gangs)
	for i := range reqs {
		reqs[i] = gang8(2 + rng.IntN(7))
	}
	run := &gangRun{c: c, ark: ark, keep: nodes / 10} // about half the cluster
	start = time.Now()
	for _, g := range reqs {
		ok, err := run.place(g)
		if err != nil {
			return nil, err
		}
		if ok {
			res.GangPlaced++
		}
	}
	el = time.Since(start)
	res.GangTried = gangs
	if err := checkCluster(c.Nodes); err != nil {
		return nil, err
	}
	res.GangPerSec = float64(res.GangPlaced) / el.Seconds()
	return res, nil
}
