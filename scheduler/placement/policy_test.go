package placement

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

func ns(model string, cpu, mem int64, free ...int64) *NodeState {
	return &NodeState{Name: "n", Model: model, CPUMilli: cpu, CPUFree: cpu, Memory: mem, MemFree: mem, GPUFree: free}
}

func TestCheckers(t *testing.T) {
	tests := []struct {
		name string
		n    *NodeState
		t    Task
		want Rule
	}{
		{"fits whole", ns("T4", 8000, 100, 1000, 1000), Task{GPUs: 2, GPUMilli: 1000, CPUMilli: 8000, Memory: 100}, RuleNone},
		{"not ready", func() *NodeState { n := ns("T4", 8000, 100, 1000); n.NotReady = true; return n }(), Task{GPUs: 1, GPUMilli: 1000}, RuleNotReady},
		{"model", ns("T4", 8000, 100, 1000), Task{GPUs: 1, GPUMilli: 1000, Models: []string{"V100M16", "V100M32"}}, RuleModel},
		{"model in the set", ns("V100M32", 8000, 100, 1000), Task{GPUs: 1, GPUMilli: 1000, Models: []string{"V100M16", "V100M32"}}, RuleNone},
		{"no GPUs at all", ns("", 8000, 100), Task{GPUs: 1, GPUMilli: 1000}, RuleModel},
		{"CPU-only on a GPU-less node", ns("", 8000, 100), Task{CPUMilli: 100}, RuleNone},
		{"GPU memory", func() *NodeState { n := ns("T4", 8000, 100, 1000); n.GPUMemory = 16; return n }(), Task{GPUs: 1, GPUMilli: 1000, GPUMemory: 32}, RuleGPUMemory},
		{"GPUs in total", ns("T4", 8000, 100, 1000, 1000), Task{GPUs: 4, GPUMilli: 1000}, RuleGPUTotal},
		{"free whole GPUs", ns("T4", 8000, 100, 1000, 500), Task{GPUs: 2, GPUMilli: 1000}, RuleFreeGPUs},
		{"free milli", ns("T4", 8000, 100, 400, 300), Task{GPUs: 1, GPUMilli: 500}, RuleGPUMilli},
		{"shared fits a partly used GPU", ns("T4", 8000, 100, 0, 600), Task{GPUs: 1, GPUMilli: 500}, RuleNone},
		{"CPU", ns("T4", 8000, 100, 1000), Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 8001}, RuleCPU},
		{"memory", ns("T4", 8000, 100, 1000), Task{GPUs: 1, GPUMilli: 1000, Memory: 101}, RuleMemory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.n.Check(tt.t); got != tt.want {
				t.Errorf("Check = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestExplain: per-node counts render most common first, ties in rule
// order, with the verb agreeing with the count.
func TestExplain(t *testing.T) {
	var c RuleCounts
	c[RuleFreeGPUs] = 3
	c[RuleNotReady] = 1
	c[RuleCPU] = 3
	got := Explain(c.Reasons(Task{GPUs: 8, GPUMilli: 1000}, "")...).Text()
	want := "(3 nodes lack 8 free GPUs, 3 nodes have too little free CPU, 1 node is not ready)"
	if got != want {
		t.Errorf("Text = %q, want %q", got, want)
	}
}

func TestFragmentation(t *testing.T) {
	// Two shapes, equally likely: a 500m share and one whole GPU.
	m := newFragModel([]ShapeFreq{
		{GPUs: 1, GPUMilli: 500, CPUMilli: 1000, Freq: 0.5},
		{GPUs: 1, GPUMilli: 1000, CPUMilli: 1000, Freq: 0.5},
	})
	tests := []struct {
		name string
		n    *NodeState
		want float64
	}{
		// Idle GPUs serve both shapes: no fragment.
		{"idle", ns("T4", 4000, 0, 1000, 1000), 0},
		// 300m serves neither: all of it is fragment for both.
		{"300m left", ns("T4", 4000, 0, 300), 300},
		// 600m serves the share, not the whole GPU: half the time a fragment.
		{"600m left", ns("T4", 4000, 0, 600), 300},
		// 1000 + 300: the share can use the idle GPU (300 is a fragment),
		// the whole GPU too (300 again).
		{"idle plus 300m", ns("T4", 4000, 0, 1000, 300), 300},
		// No CPU: every free GPU milli is a fragment.
		{"no CPU", ns("T4", 500, 0, 1000, 1000), 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.Frag(tt.n); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Frag = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTypicalShapes(t *testing.T) {
	var tasks []Task
	add := func(n int, tk Task) {
		for i := 0; i < n; i++ {
			tasks = append(tasks, tk)
		}
	}
	add(60, Task{GPUs: 1, GPUMilli: 1000, CPUMilli: 4000})
	add(36, Task{GPUs: 1, GPUMilli: 500, CPUMilli: 2000})
	add(4, Task{GPUs: 8, GPUMilli: 1000, CPUMilli: 64000})
	got := TypicalShapes(tasks, 95)
	if len(got) != 2 {
		t.Fatalf("TypicalShapes kept %d shapes, want the 2 that cover 96%%: %+v", len(got), got)
	}
	if math.Abs(got[0].Freq-60.0/96) > 1e-12 || math.Abs(got[1].Freq-36.0/96) > 1e-12 {
		t.Errorf("frequencies not renormalised: %+v", got)
	}
	if all := TypicalShapes(tasks, 100); len(all) != 3 {
		t.Errorf("100%% keeps %d shapes, want 3", len(all))
	}
}

func TestScorers(t *testing.T) {
	dist := []ShapeFreq{{GPUs: 1, GPUMilli: 500, Freq: 0.5}, {GPUs: 1, GPUMilli: 1000, Freq: 0.5}}
	half := Task{GPUs: 1, GPUMilli: 500}
	// FGD puts a share on the GPU that already holds one (700 left): the
	// idle GPU stays whole.
	n := ns("T4", 4000, 0, 1000, 700)
	if _, g := NewFGD(dist).Score(n, half); !reflect.DeepEqual(g, []int{1}) {
		t.Errorf("FGD chose GPU %v, want [1]", g)
	}
	// Between an idle node and one with a 600m hole, FGD and Ark fill the
	// hole (it was a fragment for the whole-GPU shape).
	idle, holed := ns("T4", 4000, 0, 1000, 1000), ns("T4", 4000, 0, 1000, 600)
	nodes := []*NodeState{idle, holed}
	for _, p := range []Policy{NewFGD(dist), newArkWith(dist), BestFit{}} {
		if i, _ := Select(nodes, half, p, nil); i != 1 {
			t.Errorf("%s chose node %d, want the holed node 1", p.Name(), i)
		}
	}
	// First fit takes the first node by name order.
	idle.Order, holed.Order = 1, 0
	if i, _ := Select(nodes, half, FirstFitPolicy{}, nil); i != 1 {
		t.Errorf("firstfit chose node %d, want node 1 (first by name)", i)
	}
	// Random is seeded: the same seed, the same choices.
	many := make([]*NodeState, 50)
	for i := range many {
		many[i] = ns("T4", 4000, 0, 1000)
	}
	pick := func(seed uint64) []int {
		r := NewRandom(seed)
		var out []int
		for k := 0; k < 20; k++ {
			i, _ := Select(many, half, r, nil)
			out = append(out, i)
		}
		return out
	}
	if !reflect.DeepEqual(pick(7), pick(7)) || reflect.DeepEqual(pick(7), pick(8)) {
		t.Errorf("random is not a function of its seed")
	}
	// Ark packs a CPU-only task onto the node with the fewest free GPUs.
	full := ns("T4", 8000, 0, 0, 0)
	if i, g := Select([]*NodeState{ns("T4", 8000, 0, 1000, 1000), full}, Task{CPUMilli: 1000}, NewArk(), nil); i != 1 || g != nil {
		t.Errorf("ark put a CPU-only task on node %d (GPUs %v), want the GPU-full node 1", i, g)
	}
}

func newArkWith(dist []ShapeFreq) *Ark {
	a := NewArk()
	a.m = newFragModel(dist)
	return a
}

func TestBestFitNormalize(t *testing.T) {
	s := []float64{10, 20, 30, 30}
	BestFit{}.Normalize(s)
	if !reflect.DeepEqual(s, []float64{0, 50, 100, 100}) {
		t.Errorf("Normalize = %v", s)
	}
	s = []float64{5, 5}
	BestFit{}.Normalize(s)
	if !reflect.DeepEqual(s, []float64{0, 0}) {
		t.Errorf("Normalize of equal scores = %v", s)
	}
}

// TestNodeIndexMatchesScan checks the class-indexed Select against a plain
// scan of every node (the reference), over random clusters and tasks, for
// every policy: same node, same GPUs, same reasons.
func TestNodeIndexMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	models := []string{"T4", "V100M16", "A10"}
	for round := 0; round < 20; round++ {
		var a, b []*NodeState
		for i := 0; i < 40; i++ {
			n := ns(models[rng.IntN(3)], 16000, 64, make([]int64, 1+rng.IntN(8))...)
			for g := range n.GPUFree {
				n.GPUFree[g] = []int64{0, 250, 500, 1000, 1000}[rng.IntN(5)]
			}
			n.CPUFree = int64(rng.IntN(5)) * 4000
			n.NotReady = rng.IntN(20) == 0
			n.Order = i
			a, b = append(a, n), append(b, n.Clone())
		}
		c := NewNodeIndex(b)
		for _, name := range []string{"ark", "fgd", "bestfit", "firstfit"} {
			dist := []ShapeFreq{{GPUs: 1, GPUMilli: 500, CPUMilli: 4000, Freq: 0.4}, {GPUs: 2, GPUMilli: 1000, CPUMilli: 4000, Freq: 0.6}}
			p1, _ := NewPolicy(name, dist, 1)
			p2, _ := NewPolicy(name, dist, 1)
			for k := 0; k < 30; k++ {
				tk := randomTask(rng)
				if o, ok := p1.(Observer); ok {
					o.Observe(tk)
					p2.(Observer).Observe(tk)
				}
				var ca, cb RuleCounts
				i1, g1 := Select(a, tk, p1, &ca)
				i2, g2 := c.Select(tk, p2, &cb)
				if i1 != i2 || !reflect.DeepEqual(g1, g2) || ca != cb {
					t.Fatalf("round %d %s task %+v: scan chose %d %v %v, cluster %d %v %v", round, name, tk, i1, g1, ca, i2, g2, cb)
				}
				if i1 >= 0 {
					a[i1].Take(tk, g1)
					c.Take(i2, tk, g2)
				}
			}
		}
	}
}

func randomTask(rng *rand.Rand) Task {
	switch rng.IntN(4) {
	case 0:
		return Task{CPUMilli: int64(1+rng.IntN(4)) * 1000, Memory: 4}
	case 1:
		return Task{GPUs: 1, GPUMilli: []int64{250, 500, 750}[rng.IntN(3)], CPUMilli: 2000, Memory: 8}
	}
	return Task{GPUs: 1 << rng.IntN(4), GPUMilli: 1000, CPUMilli: 4000, Memory: 16}
}

func TestGangFabric(t *testing.T) {
	mk := func(fabric string, gpus int) *NodeState {
		n := ns("H100", 64000, 1000, make([]int64, gpus)...)
		for g := range n.GPUFree {
			n.GPUFree[g] = MilliPerGPU
		}
		n.Fabric = fabric
		return n
	}
	// Fabric a has two idle 8-GPU nodes, fabric b three: a gang of three
	// 8-GPU replicas stays in b rather than spanning fabrics.
	nodes := []*NodeState{mk("a", 8), mk("a", 8), mk("b", 8), mk("b", 8), mk("b", 8)}
	c := NewNodeIndex(nodes)
	slots, ok := c.PlaceGang(Gang{Replicas: 3, Task: Task{GPUs: 8, GPUMilli: 1000}}, NewArk(), nil)
	if !ok {
		t.Fatal("gang not placed")
	}
	for _, s := range slots {
		if nodes[s.Node].Fabric != "b" {
			t.Errorf("replica on node %d in fabric %s, want fabric b", s.Node, nodes[s.Node].Fabric)
		}
	}
	// Fewest nodes first: fabric a's 16-GPU node holds both 8-GPU replicas.
	nodes = []*NodeState{mk("b", 8), mk("b", 8), mk("a", 16)}
	c = NewNodeIndex(nodes)
	slots, ok = c.PlaceGang(Gang{Replicas: 2, Task: Task{GPUs: 8, GPUMilli: 1000}}, NewArk(), nil)
	if !ok || slots[0].Node != 2 || slots[1].Node != 2 {
		t.Errorf("gang placed %v (ok %v), want both replicas on the 16-GPU node 2", slots, ok)
	}
	// No fabric holds it alone: it spans fabrics rather than wait.
	nodes = []*NodeState{mk("a", 8), mk("b", 8)}
	c = NewNodeIndex(nodes)
	if slots, ok = c.PlaceGang(Gang{Replicas: 2, Task: Task{GPUs: 8, GPUMilli: 1000}}, NewArk(), nil); !ok || len(slots) != 2 {
		t.Errorf("cross-fabric gang: %v, %v", slots, ok)
	}
	// Nothing was over-committed.
	for _, n := range nodes {
		if n.FreeMilli() != 0 {
			t.Errorf("node in fabric %s has %d milli free after a gang that fills it", n.Fabric, n.FreeMilli())
		}
	}
}
