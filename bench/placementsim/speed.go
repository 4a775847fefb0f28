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
	GangPlaced     int     `json:"gang_placed"`
	GangTried      int     `json:"gang_tried"`
	GangPerSec     float64 `json:"gang_per_sec"`
	Classes        int     `json:"classes"` // distinct node states at the end of the single run
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

type live struct {
	t     placement.Task
	slots []placement.Slot
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
	c := placement.NewCluster(SyntheticCluster(nodes))
	ark := placement.NewArk()
	var total, used int64
	for _, n := range c.Nodes {
		total += int64(len(n.GPUFree)) * placement.MilliPerGPU
	}
	for used < total/2 {
		t := synthTask(rng, false)
		ark.Observe(t)
		if i, g := c.Select(t, ark, nil); i >= 0 {
			c.Place(i, t, g)
			used += t.TotalMilli()
		}
	}
	tasks := make([]placement.Task, singles)
	for i := range tasks {
		tasks[i] = synthTask(rng, true)
	}
	start := time.Now()
	for _, t := range tasks {
		ark.Observe(t)
		if i, g := c.Select(t, ark, nil); i >= 0 {
			c.Place(i, t, g)
			res.SinglePlaced++
		}
	}
	el := time.Since(start)
	res.SingleTried = singles
	res.Classes = c.Classes()
	if err := checkCluster(c.Nodes); err != nil {
		return nil, err
	}
	res.SinglePerSec = float64(res.SinglePlaced) / el.Seconds()

	// Singles with diverse CPU and memory, on a cluster prefilled the same
	// way.
	diverse := func(t placement.Task) placement.Task {
		t.CPUMilli = int64(1+rng.IntN(16)) * 1000
		t.Memory = int64(4+rng.IntN(125)) * 1024
		return t
	}
	c = placement.NewCluster(SyntheticCluster(nodes))
	ark = placement.NewArk()
	for used = 0; used < total/2; {
		t := diverse(synthTask(rng, false))
		ark.Observe(t)
		if i, g := c.Select(t, ark, nil); i >= 0 {
			c.Place(i, t, g)
			used += t.TotalMilli()
		}
	}
	for i := range tasks {
		tasks[i] = diverse(synthTask(rng, true))
	}
	start = time.Now()
	for _, t := range tasks {
		ark.Observe(t)
		if i, g := c.Select(t, ark, nil); i >= 0 {
			c.Place(i, t, g)
			res.DiversePlaced++
		}
	}
	el = time.Since(start)
	res.DiverseClasses = c.Classes()
	if err := checkCluster(c.Nodes); err != nil {
		return nil, err
	}
	res.DiversePerSec = float64(res.DiversePlaced) / el.Seconds()

	// Gangs.
	c = placement.NewCluster(SyntheticCluster(nodes))
	ark = placement.NewArk()
	for used = 0; used < total/5; {
		t := synthTask(rng, false)
		ark.Observe(t)
		if i, g := c.Select(t, ark, nil); i >= 0 {
			c.Place(i, t, g)
			used += t.TotalMilli()
		}
	}
	reqs := make([]placement.Gang, gangs)
	for i := range reqs {
		reqs[i] = placement.Gang{Replicas: 2 + rng.IntN(7), Task: placement.Task{GPUs: 8, GPUMilli: 1000, CPUMilli: 96000, Memory: 786432}}
	}
	var window []live
	keep := nodes / 10 // live gangs at most (about half the cluster)
	start = time.Now()
	for _, g := range reqs {
		ark.Observe(g.Task)
		slots, ok := c.PlaceGang(g, ark, nil)
		if ok {
			if len(slots) != g.Replicas {
				return nil, fmt.Errorf("gang of %d placed %d replicas", g.Replicas, len(slots))
			}
			res.GangPlaced++
			window = append(window, live{g.Task, slots})
		}
		if len(window) > keep {
			for _, s := range window[0].slots {
				c.Release(s.Node, window[0].t, s.GPUs)
			}
			window = window[1:]
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
