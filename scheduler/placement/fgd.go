package placement

import (
	"math"
	"sort"
	"strings"
)

// ShapeFreq is one task shape of a workload and how often it occurs (the
// frequencies of a distribution sum to 1). Memory is not part of a shape:
// FGD measures fragmentation in GPU milli, gated by CPU.
type ShapeFreq struct {
	CPUMilli int64
	GPUs     int
	GPUMilli int64
	Models   string // accepted models joined by "|"; "" for any
	// Memory is 0 in FGD's shapes (the reference ignores memory); Ark's
	// learned shapes carry it, so a node short of memory counts as such.
	Memory int64
	Freq   float64
}

func shapeOf(t Task) ShapeFreq {
	return ShapeFreq{CPUMilli: t.CPUMilli, GPUs: t.GPUs, GPUMilli: t.GPUMilli, Models: strings.Join(t.Models, "|")}
}

// lessShape is the reference's order of equally frequent shapes.
func lessShape(a, b ShapeFreq) bool {
	switch {
	case a.CPUMilli != b.CPUMilli:
		return a.CPUMilli < b.CPUMilli
	case a.GPUMilli != b.GPUMilli:
		return a.GPUMilli < b.GPUMilli
	case a.GPUs != b.GPUs:
		return a.GPUs < b.GPUs
	case a.Models != b.Models:
		return a.Models < b.Models
	}
	return a.Memory < b.Memory
}

// TypicalShapes is FGD's target workload: the shapes of tasks (CPU-only
// ones included) from most to least frequent, cut once they cover
// thresholdPct percent of the tasks, renormalised to sum to 1. With
// thresholdPct 95 this is the reference simulator's typical pods.
func TypicalShapes(tasks []Task, thresholdPct float64) []ShapeFreq {
	counts := map[ShapeFreq]float64{}
	for _, t := range tasks {
		counts[shapeOf(t)]++
	}
	return typicalFromCounts(counts, float64(len(tasks)), thresholdPct, 0)
}

// typicalFromCounts keeps the most frequent shapes that cover thresholdPct
// of total, at most maxShapes of them (0: no limit).
func typicalFromCounts(counts map[ShapeFreq]float64, total, thresholdPct float64, maxShapes int) []ShapeFreq {
	list := make([]ShapeFreq, 0, len(counts))
	for k, c := range counts {
		k.Freq = c
		list = append(list, k)
	}
	sort.Slice(list, func(i, k int) bool {
		a, b := list[i], list[k]
		if a.Freq != b.Freq {
			return a.Freq > b.Freq
		}
		return lessShape(b, a)
	})
	if total == 0 {
		return nil
	}
	want := thresholdPct * total / 100
	cum, n := 0.0, 0
	for n < len(list) && cum < want && (maxShapes == 0 || n < maxShapes) {
		cum += list[n].Freq
		list[n].Freq /= total
		n++
	}
	out := list[:n]
	if n < len(list) {
		for i := range out {
			out[i].Freq /= cum / total
		}
	}
	return out
}

// Fragmentation categories of the reference (FGD paper, Sec. 4): the
// measure is the sum of all but "satisfied".
const (
	catLackBoth = iota
	catLackGPU
	catSatisfied
	catLackCPU
	catCPUTaskOK
	catCPUTaskLackCPU
	catNoAccess
	numCats
)

// fragModel computes a node's expected GPU fragmentation under a shape
// distribution: for each shape, the GPU milli on the node that a task of
// that shape could not use, weighted by the shape's frequency.
type fragModel struct {
	shapes []ShapeFreq
	models [][]string
	access map[string][]bool // node model -> per shape
	memo   map[stateKey]float64
	// cpuCuts and memCuts are the shapes' CPU and memory asks, sorted:
	// fragmentation sees free CPU and memory only through comparisons
	// with them, so the memo keys on their rank, not the exact value.
	cpuCuts, memCuts []int64
}

// rank is how many cuts v reaches (cuts[i] <= v).
func rank(cuts []int64, v int64) int64 {
	return int64(sort.Search(len(cuts), func(i int) bool { return cuts[i] > v }))
}

// stateKey identifies what fragmentation depends on: model, free CPU and
// the multiset of free GPU milli.
type stateKey struct {
	model string
	cpu   int64
	mem   int64
	n     int8
	g     [8]int16
}

func newFragModel(shapes []ShapeFreq) *fragModel {
	m := &fragModel{shapes: shapes, access: map[string][]bool{}, memo: map[stateKey]float64{}}
	cpu, mem := map[int64]bool{}, map[int64]bool{}
	for _, s := range shapes {
		if !cpu[s.CPUMilli] {
			cpu[s.CPUMilli] = true
			m.cpuCuts = append(m.cpuCuts, s.CPUMilli)
		}
		if !mem[s.Memory] {
			mem[s.Memory] = true
			m.memCuts = append(m.memCuts, s.Memory)
		}
	}
	sort.Slice(m.cpuCuts, func(i, k int) bool { return m.cpuCuts[i] < m.cpuCuts[k] })
	sort.Slice(m.memCuts, func(i, k int) bool { return m.memCuts[i] < m.memCuts[k] })
	for _, s := range shapes {
		var ms []string
		if s.Models != "" {
			ms = strings.Split(s.Models, "|")
		}
		m.models = append(m.models, ms)
	}
	return m
}

func (m *fragModel) accessFor(model string) []bool {
	a, ok := m.access[model]
	if !ok {
		a = make([]bool, len(m.shapes))
		for i := range m.shapes {
			a[i] = ModelAccepted(model, m.models[i])
		}
		m.access[model] = a
	}
	return a
}

func keyOf(n *NodeState) (stateKey, bool) {
	k := stateKey{model: n.Model, cpu: n.CPUFree, mem: n.MemFree, n: int8(len(n.GPUFree))}
	if len(n.GPUFree) > len(k.g) {
		return k, false
	}
	for i, f := range n.GPUFree {
		k.g[i] = int16(f)
	}
	g := k.g[:len(n.GPUFree)]
	for i := 1; i < len(g); i++ { // insertion sort, descending
		for j := i; j > 0 && g[j] > g[j-1]; j-- {
			g[j], g[j-1] = g[j-1], g[j]
		}
	}
	return k, true
}

// Frag is the node's expected fragmentation in GPU milli.
func (m *fragModel) Frag(n *NodeState) float64 {
	k, ok := keyOf(n)
	k.cpu, k.mem = rank(m.cpuCuts, n.CPUFree), rank(m.memCuts, n.MemFree)
	if ok {
		if f, hit := m.memo[k]; hit {
			return f
		}
	}
	f := m.frag(n)
	if ok {
		if len(m.memo) > 1<<20 {
			clear(m.memo)
		}
		m.memo[k] = f
	}
	return f
}

func (m *fragModel) frag(n *NodeState) float64 {
	var total int64
	for _, g := range n.GPUFree {
		total += g
	}
	acc := m.accessFor(n.Model)
	var data [numCats]float64
	for i, s := range m.shapes {
		cpuOK := n.CPUFree >= s.CPUMilli && n.MemFree >= s.Memory
		if s.GPUMilli == 0 {
			if cpuOK {
				data[catCPUTaskOK] += s.Freq * float64(total)
			} else {
				data[catCPUTaskLackCPU] += s.Freq * float64(total)
			}
			continue
		}
		if !acc[i] {
			data[catNoAccess] += s.Freq * float64(total)
			continue
		}
		fit, below := 0, int64(0)
		for _, g := range n.GPUFree {
			if g >= s.GPUMilli {
				fit++
			} else {
				below += g
			}
		}
		gpuOK := fit >= s.GPUs
		switch {
		case gpuOK && cpuOK:
			data[catLackGPU] += s.Freq * float64(below)
		case gpuOK:
			data[catLackCPU] += s.Freq * float64(total)
		case cpuOK:
			data[catLackGPU] += s.Freq * float64(total)
		default:
			data[catLackBoth] += s.Freq * float64(total)
		}
	}
	var out float64
	for c := 0; c < numCats; c++ {
		if c != catSatisfied {
			out += data[c]
		}
	}
	return out
}

// FGD is Fragmentation Gradient Descent (Weng et al., USENIX ATC'23) as
// the reference simulator scores it: for each node, the growth of its
// expected fragmentation if the task lands there, as
// int(100 * sigmoid((F_before - F_after) / 1000)); a shared task tries
// every GPU that holds it and keeps the best (lowest index on ties); whole
// GPUs are the lowest free indexes.
type FGD struct{ m *fragModel }

// NewFGD returns FGD over a fixed shape distribution (TypicalShapes).
func NewFGD(dist []ShapeFreq) *FGD { return &FGD{m: newFragModel(dist)} }

func (*FGD) Name() string { return "fgd" }

// Version is constant: FGD's distribution is fixed.
func (*FGD) Version() uint64 { return 0 }

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func (f *FGD) Score(n *NodeState, t Task) (float64, []int) {
	before := f.m.Frag(n)
	if t.Shared() {
		best, bestGPU := int64(0), -1
		for i, free := range n.GPUFree {
			if free < t.GPUMilli {
				continue
			}
			n.CPUFree -= t.CPUMilli
			n.GPUFree[i] -= t.GPUMilli
			after := f.m.Frag(n)
			n.CPUFree += t.CPUMilli
			n.GPUFree[i] += t.GPUMilli
			s := int64(sigmoid((before-after)/1000) * 100)
			if bestGPU < 0 || s > best {
				best, bestGPU = s, i
			}
		}
		return float64(best), []int{bestGPU}
	}
	gpus := pickGPUs(n, t)
	n.CPUFree -= t.CPUMilli
	for _, g := range gpus {
		n.GPUFree[g] -= t.GPUMilli
	}
	after := f.m.Frag(n)
	n.CPUFree += t.CPUMilli
	for _, g := range gpus {
		n.GPUFree[g] += t.GPUMilli
	}
	return float64(int64(sigmoid((before-after)/1000) * 100)), gpus
}
