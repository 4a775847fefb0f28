package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"testing/quick"
)

// randomNodes is a cluster whose nodes differ in every way the index
// keys on: model and GPU memory, GPU count (over 8 too), NVLink and NUMA
// layouts, readiness, free GPU milli, and free CPU and memory drawn per
// node (most nodes in distinct states).
func randomNodes(rng *rand.Rand, count int) []*NodeState {
	models := []string{"T4", "A10", "H100"}
	var nodes []*NodeState
	for i := range count {
		gpus := []int{0, 1, 2, 4, 8, 8, 8, 10}[rng.IntN(8)]
		n := ns(models[rng.IntN(3)], int64(8+rng.IntN(120))*1000, int64(16+rng.IntN(1000)), make([]int64, gpus)...)
		n.GPUMemory = []int64{16, 80}[rng.IntN(2)]
		for g := range n.GPUFree {
			n.GPUFree[g] = []int64{0, 250, 500, 750, 1000, 1000, 1000}[rng.IntN(7)]
		}
		if gpus == 8 {
			switch rng.IntN(3) {
			case 0:
				n.NUMA = []int{0, 0, 0, 0, 1, 1, 1, 1}
			case 1:
				n.NVLinkGroup = []int{0, 0, 1, 1, 2, 2, 3, 3}
			}
		}
		n.CPUFree = int64(rng.IntN(int(n.CPUMilli/1000)+1)) * 1000
		n.MemFree = int64(rng.IntN(int(n.Memory) + 1))
		n.NotReady = rng.IntN(20) == 0
		n.Fabric = fmt.Sprintf("rack%d", rng.IntN(3))
		n.Name = fmt.Sprintf("n%03d", i)
		n.Order = i
		nodes = append(nodes, n)
	}
	return nodes
}

// diverseRandomTask is randomTask with its CPU and memory drawn too, and
// now and then a model or GPU memory requirement.
func diverseRandomTask(rng *rand.Rand) Task {
	t := randomTask(rng)
	if t.GPUs == 8 && rng.IntN(2) == 0 {
		t.GPUs = 1 + rng.IntN(7)
	}
	t.CPUMilli = int64(rng.IntN(17)) * 1000
	t.Memory = int64(rng.IntN(200))
	if t.GPUs > 0 {
		switch rng.IntN(6) {
		case 0:
			t.Models = []string{"A10"}
		case 1:
			t.Models = []string{"T4", "H100"}
		case 2:
			t.GPUMemory = 40
		}
	}
	return t
}

func clonedNodes(nodes []*NodeState) []*NodeState {
	out := make([]*NodeState, len(nodes))
	for i, n := range nodes {
		out[i] = n.Clone()
	}
	return out
}

// TestPropertyNodeIndexSelectMatchesScan: over random clusters with free
// CPU and memory drawn per node, and random task sequences that place and
// release, the grouped NodeIndex.Select picks the same node and GPUs as
// Select over every node (the reference), with the same reasons, for
// every policy.
func TestPropertyNodeIndexSelectMatchesScan(t *testing.T) {
	f := func(seed uint64) bool {
		rng := rand.New(rand.NewPCG(seed, 5))
		name := []string{"ark", "ark", "fgd", "bestfit", "firstfit", "random"}[rng.IntN(6)]
		ref := randomNodes(rng, 1+rng.IntN(60))
		c := NewNodeIndex(clonedNodes(ref))
		dist := []ShapeFreq{{GPUs: 1, GPUMilli: 500, CPUMilli: 4000, Freq: 0.4}, {GPUs: 2, GPUMilli: 1000, CPUMilli: 8000, Memory: 100, Freq: 0.6}}
		p1, _ := NewPolicy(name, dist, seed)
		p2, _ := NewPolicy(name, dist, seed)
		type placed struct {
			node int
			t    Task
			gpus []int
		}
		var live []placed
		for k := 0; k < 80; k++ {
			if len(live) > 0 && rng.IntN(4) == 0 {
				j := rng.IntN(len(live))
				x := live[j]
				ref[x.node].Release(x.t, x.gpus)
				c.Release(x.node, x.t, x.gpus)
				live = append(live[:j], live[j+1:]...)
				continue
			}
			tk := diverseRandomTask(rng)
			if o, ok := p1.(Observer); ok {
				o.Observe(tk)
				p2.(Observer).Observe(tk)
			}
			var ca, cb RuleCounts
			i1, g1 := Select(ref, tk, p1, &ca)
			i2, g2 := c.Select(tk, p2, &cb)
			if len(g1) == 0 {
				g1 = nil
			}
			if len(g2) == 0 {
				g2 = nil
			}
			if i1 != i2 || !reflect.DeepEqual(g1, g2) || ca != cb {
				t.Errorf("seed %d %s step %d task %+v: scan chose %d %v %v, cluster %d %v %v", seed, name, k, tk, i1, g1, ca, i2, g2, cb)
				return false
			}
			if i1 >= 0 {
				ref[i1].Take(tk, g1)
				c.Take(i2, tk, g2)
				live = append(live, placed{i1, tk, g1})
			}
		}
		return true
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 400}); err != nil {
		t.Error(err)
	}
}

// TestPropertyGangMatchesUngrouped: gangs of every kind (one node, fewest
// nodes, spread) land on the same nodes and GPUs in the grouped cluster
// as in one where every node is its own group (a per-node scan).
func TestPropertyGangMatchesUngrouped(t *testing.T) {
	f := func(seed uint64) bool {
		rng := rand.New(rand.NewPCG(seed, 6))
		name := []string{"ark", "fgd", "bestfit"}[rng.IntN(3)]
		nodes := randomNodes(rng, 1+rng.IntN(40))
		a, b := NewNodeIndex(clonedNodes(nodes)), newNodeIndex(clonedNodes(nodes), true)
		p1, _ := NewPolicy(name, nil, seed)
		p2, _ := NewPolicy(name, nil, seed)
		for k := 0; k < 40; k++ {
			tk := diverseRandomTask(rng)
			if o, ok := p1.(Observer); ok {
				o.Observe(tk)
				p2.(Observer).Observe(tk)
			}
			g := Gang{Replicas: 1 + rng.IntN(4), Task: tk, SameNode: rng.IntN(4) == 0, Spread: rng.IntN(4) == 0, NVLinkRequired: rng.IntN(3) == 0}
			var ca, cb RuleCounts
			s1, ok1 := a.PlaceGang(g, p1, &ca)
			s2, ok2 := b.PlaceGang(g, p2, &cb)
			if ok1 != ok2 || !reflect.DeepEqual(s1, s2) || ca != cb {
				t.Errorf("seed %d %s step %d gang %+v: grouped %v %v %v, per node %v %v %v", seed, name, k, g, ok1, s1, ca, ok2, s2, cb)
				return false
			}
		}
		for i := range nodes {
			if !reflect.DeepEqual(a.Nodes[i], b.Nodes[i]) {
				t.Errorf("seed %d: node %d differs: %+v vs %+v", seed, i, a.Nodes[i], b.Nodes[i])
			}
		}
		return !t.Failed()
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 300}); err != nil {
		t.Error(err)
	}
}

// TestNodeIndexGroups: full nodes whose free CPU and memory all differ are
// many classes but one group, and a GPU task is rejected by the group at
// once with every node counted.
func TestNodeIndexGroups(t *testing.T) {
	var nodes []*NodeState
	for i := range 50 {
		n := ns("H100", 64000, 1000, 0, 0, 0, 0)
		n.CPUFree, n.MemFree, n.Order = int64(i)*1000, int64(i), i
		nodes = append(nodes, n)
	}
	free := ns("H100", 64000, 1000, 1000, 1000, 1000, 1000)
	free.Order = 50
	nodes = append(nodes, free)
	c := NewNodeIndex(nodes)
	if c.Classes() != 51 || c.Groups() != 2 {
		t.Fatalf("%d classes in %d groups, want 51 in 2", c.Classes(), c.Groups())
	}
	var counts RuleCounts
	tk := Task{GPUs: 2, GPUMilli: 1000, CPUMilli: 1000, Memory: 10}
	if i, g := c.Select(tk, NewArk(), &counts); i != 50 || !reflect.DeepEqual(g, []int{0, 1}) {
		t.Errorf("Select = %d %v, want 50 [0 1]", i, g)
	}
	if counts[RuleFreeGPUs] != 50 {
		t.Errorf("counts %v, want 50 nodes lacking free GPUs", counts)
	}
	c.Take(50, tk, []int{0, 1})
	c.Release(50, tk, []int{0, 1})
	if c.Classes() != 51 || c.Groups() != 2 {
		t.Errorf("after place and release: %d classes in %d groups", c.Classes(), c.Groups())
	}
}
