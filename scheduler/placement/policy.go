package placement

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Policy is a scorer: it rates placing a task on a node that passed every
// feasibility checker, and picks the node's GPUs for it. Higher is better.
type Policy interface {
	Name() string
	Score(n *NodeState, t Task) (score float64, gpus []int)
}

// Observer is a policy that learns from the tasks it sees, in arrival
// order. Observe is called once per task before it is placed (so the
// policy knows the task that is arriving, never the ones after it).
type Observer interface {
	Observe(t Task)
}

// Normalizer is a policy whose raw scores are rescaled over all feasible
// nodes before the best is taken (as kube-scheduler's NormalizeScore).
type Normalizer interface {
	Normalize(scores []float64)
}

// Select runs the checkers on every node, scores the feasible ones, and
// returns the index of the best (the first in nodes' order among equal
// scores) with its GPUs, or -1. counts, when not nil, gets one reason per
// rejected node.
func Select(nodes []*NodeState, t Task, p Policy, counts *RuleCounts) (int, []int) {
	norm, isNorm := p.(Normalizer)
	if isNorm {
		return selectNormalized(nodes, t, p, norm, counts)
	}
	best, bestScore := -1, 0.0
	var bestGPUs []int
	for i, n := range nodes {
		if r := n.Check(t); r != RuleNone {
			if counts != nil {
				counts[r]++
			}
			continue
		}
		s, g := p.Score(n, t)
		if best < 0 || s > bestScore {
			best, bestScore, bestGPUs = i, s, g
		}
	}
	return best, bestGPUs
}

func selectNormalized(nodes []*NodeState, t Task, p Policy, norm Normalizer, counts *RuleCounts) (int, []int) {
	var idx []int
	var scores []float64
	var gpus [][]int
	for i, n := range nodes {
		if r := n.Check(t); r != RuleNone {
			if counts != nil {
				counts[r]++
			}
			continue
		}
		s, g := p.Score(n, t)
		idx, scores, gpus = append(idx, i), append(scores, s), append(gpus, g)
	}
	if len(idx) == 0 {
		return -1, nil
	}
	norm.Normalize(scores)
	b := 0
	for k := range scores {
		if scores[k] > scores[b] {
			b = k
		}
	}
	return idx[b], gpus[b]
}

// NewPolicy returns a policy by name: ark, fgd, bestfit, firstfit, random.
// dist is the task-shape distribution FGD uses (ignored by the others);
// seed seeds random.
func NewPolicy(name string, dist []ShapeFreq, seed uint64) (Policy, error) {
	switch strings.ToLower(name) {
	case "ark":
		return NewArk(), nil
	case "fgd":
		return NewFGD(dist), nil
	case "bestfit":
		return BestFit{}, nil
	case "firstfit":
		return FirstFitPolicy{}, nil
	case "random":
		return NewRandom(seed), nil
	}
	return nil, fmt.Errorf("unknown policy %q (ark, fgd, bestfit, firstfit, random)", name)
}

// BestFit is the reference simulator's best fit: the node left with the
// least CPU and GPU (half weight each, normalised by the largest node
// spec), min-max normalised to 0..100 over the feasible nodes; a shared
// task takes the GPU with the least free milli that holds it.
type BestFit struct{}

// Largest node spec used to normalise best fit (the reference's values).
const (
	bestFitMaxCPU = 128000
	bestFitMaxGPU = 8000
)

func (BestFit) Name() string { return "bestfit" }

func (BestFit) Score(n *NodeState, t Task) (float64, []int) {
	s := float64(n.CPUFree-t.CPUMilli)/bestFitMaxCPU*0.5 + float64(n.FreeMilli()-t.TotalMilli())/bestFitMaxGPU*0.5
	return float64(int64((1 - s) * 100)), pickGPUs(n, t)
}

// Normalize maps the scores to 0..100 with integer steps, as the
// reference does, which makes ties (broken by node order).
func (BestFit) Normalize(scores []float64) {
	lo, hi := scores[0], scores[0]
	for _, s := range scores {
		lo, hi = min(lo, s), max(hi, s)
	}
	for i, s := range scores {
		if hi == lo {
			scores[i] = 0
			continue
		}
		scores[i] = float64(int64(s-lo) * 100 / int64(hi-lo))
	}
}

// pickGPUs is the default GPU choice: the tightest GPU for a shared task;
// for whole GPUs one NVLink domain and NUMA side when the node says which
// GPUs share them, else the lowest free indexes.
func pickGPUs(n *NodeState, t Task) []int {
	switch {
	case t.GPUs == 0:
		return nil
	case t.Shared():
		if g := tightestGPU(n, t.GPUMilli); g >= 0 {
			return []int{g}
		}
		return nil
	}
	if n.NVLinkGroup != nil || n.NUMA != nil {
		g, _ := nvlinkGPUs(n, t.GPUs)
		return g
	}
	return lowestFree(n, t.GPUs, MilliPerGPU)
}

// FirstFitPolicy takes the first node by name (NodeState.Order) that fits.
type FirstFitPolicy struct{}

func (FirstFitPolicy) Name() string { return "firstfit" }

// PerNode: the score is the node's own name order.
func (FirstFitPolicy) PerNode() {}

func (FirstFitPolicy) Score(n *NodeState, t Task) (float64, []int) {
	return -float64(n.Order), pickGPUs(n, t)
}

// Random scores every feasible node with a seeded random number, and
// picks a shared task's GPU at random among those that hold it.
type Random struct{ rng *rand.Rand }

// NewRandom returns the random policy with its own seeded source.
func NewRandom(seed uint64) *Random {
	return &Random{rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))}
}

func (r *Random) Name() string { return "random" }

// PerNode: every node draws its own number.
func (*Random) PerNode() {}

func (r *Random) Score(n *NodeState, t Task) (float64, []int) {
	if t.Shared() {
		var ok []int
		for i, f := range n.GPUFree {
			if f >= t.GPUMilli {
				ok = append(ok, i)
			}
		}
		return r.rng.Float64(), []int{ok[r.rng.IntN(len(ok))]}
	}
	return r.rng.Float64(), pickGPUs(n, t)
}
