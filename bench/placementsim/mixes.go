package placementsim

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// MixClass is a class of task whose share the FGD paper's workload sweep
// varies (Weng et al., ATC'23, the "gpushare", "multigpu" and "gpuspec"
// lists of openb). The shares are measured as the trace's own lists carry
// them: gpushare40 has 40.1% of its GPU milli in shared tasks, multigpu20
// 20.4% of its GPU milli in multi-GPU tasks, gpuspec10 10.4% of its GPU
// tasks naming a model; CPU-only tasks are in none of these measures (every
// list keeps the default's 1,088 of them).
type MixClass string

// The classes the sweep inflates.
const (
	MixSharing  MixClass = "sharing"   // one GPU, less than all of it
	MixMultiGPU MixClass = "multi-gpu" // two or more whole GPUs
	MixGPUModel MixClass = "gpu-model" // names the GPU models it accepts
)

// MixClasses are the classes in the order the sweep runs them.
var MixClasses = []MixClass{MixSharing, MixMultiGPU, MixGPUModel}

// Has says whether the task is of the class.
func (c MixClass) Has(p Pod) bool {
	switch c {
	case MixSharing:
		return p.NumGPU == 1 && p.GPUMilli < 1000
	case MixMultiGPU:
		return p.NumGPU > 1
	case MixGPUModel:
		return p.NumGPU > 0 && p.GPUSpec != ""
	}
	return false
}

// weight is what a GPU task counts for in the class's share: its GPU milli
// for sharing and multi-GPU (the paper's "share of GPU requests"), one for
// a model constraint (a share of GPU tasks).
func (c MixClass) weight(p Pod) int64 {
	if c == MixGPUModel {
		return 1
	}
	return p.TotalMilli()
}

// Valid says whether the class is one of MixClasses.
func (c MixClass) Valid() bool {
	for _, k := range MixClasses {
		if c == k {
			return true
		}
	}
	return false
}

// MixShare is the class's share of the list's GPU tasks, in percent, in the
// class's measure (0 for a list with no GPU task).
func MixShare(pods []Pod, c MixClass) float64 {
	var in, all int64
	for _, p := range pods {
		if p.NumGPU == 0 {
			continue
		}
		w := c.weight(p)
		all += w
		if c.Has(p) {
			in += w
		}
	}
	if all == 0 {
		return 0
	}
	return 100 * float64(in) / float64(all)
}

// Mix resamples a trace task list so that the class makes pct percent of
// its GPU tasks (in the class's measure), the paper's way: the share of one
// class is inflated (or deflated) and the rest keeps its own make-up. The
// CPU-only tasks are kept as they are; as many GPU tasks as the list has
// are drawn with replacement, each from the class's tasks while the share
// drawn so far is below pct and from the other GPU tasks otherwise, so the
// share ends within one task's weight of pct. Every drawn task is a copy of
// a list task (Source names it) under a new name, mix-<class><pct>-<i>.
// The draws use a PCG seeded with seed: the same inputs give the same list.
// The arrival order is then made from the list as for any list (Generate).
func Mix(list []Pod, c MixClass, pct int, seed uint64) ([]Pod, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("%w: mix class %q: want one of %v", ErrConfig, c, MixClasses)
	}
	if pct < 0 || pct > 100 {
		return nil, fmt.Errorf("%w: mix %s share %d%%: want 0 to 100", ErrConfig, c, pct)
	}
	var out, in, rest []Pod
	for _, p := range list {
		switch {
		case p.NumGPU == 0:
			out = append(out, p)
		case c.Has(p):
			in = append(in, p)
		default:
			rest = append(rest, p)
		}
	}
	n := len(in) + len(rest)
	if pct > 0 && len(in) == 0 {
		return nil, fmt.Errorf("%w: mix %s %d%%: the list has no %s task to draw", ErrConfig, c, pct, c)
	}
	if pct < 100 && len(rest) == 0 {
		return nil, fmt.Errorf("%w: mix %s %d%%: the list has only %s tasks", ErrConfig, c, pct, c)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6d69786573)) // "mixes"
	var wIn, wAll int64
	for i := range n {
		// wIn/wAll < pct/100, compared in integers: no rounding decides a draw.
		fromIn := pct == 100 || (pct > 0 && (wAll == 0 || 100*wIn < int64(pct)*wAll))
		pool := rest
		if fromIn {
			pool = in
		}
		p := pool[rng.IntN(len(pool))]
		w := c.weight(p)
		wAll += w
		if fromIn {
			wIn += w
		}
		p.Source = p.Name
		p.Name = fmt.Sprintf("mix-%s%d-%05d", c, pct, i)
		out = append(out, p)
	}
	return out, nil
}

// MixNodeOrder is a seeded tie-break order of the nodes, as the reference
// simulator gives each of its sequences (nodes_<list>_seed<S>.csv): nodes
// sorted by name, shuffled with a PCG seeded with seed. Ties between
// equally scored nodes fall to the smaller rank.
func MixNodeOrder(nodes []Node, seed uint64) map[string]int {
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	sort.Strings(names)
	rng := rand.New(rand.NewPCG(seed, 0x6e6f646573)) // "nodes"
	rng.Shuffle(len(names), func(i, k int) { names[i], names[k] = names[k], names[i] })
	rank := make(map[string]int, len(names))
	for i, n := range names {
		rank[n] = i
	}
	return rank
}
