package placement

// Ark is Ark's default packing policy. It keeps FGD's idea (put the task
// where the node's expected GPU fragmentation grows least, in FGD's
// quantised score whose ties fall to the node order) and changes four
// things, each measured on the openb sequences (bench/placementsim):
//
//   - the task-shape distribution is learned online from the tasks that
//     have arrived so far (Observe), never from the ones still to come, and
//     covers 99% of them instead of 95%;
//   - shapes carry host memory, so a node that is short of memory for a
//     shape counts its free GPUs as fragments for it (FGD ignores memory);
//   - a shared task's GPU is chosen on the exact fragmentation change, the
//     tightest GPU on ties (FGD compares quantised scores, lowest index);
//   - a CPU-only task goes to the node with the least free GPU milli (then
//     the least CPU left over), so its CPU strands as few GPUs as possible.
//
// The quantisation matters: scoring on the exact change, or breaking
// FGD's ties by packing, leaves 1-2 points more GPU unallocated, because
// ties spread tasks over equivalent nodes.
type Ark struct {
	counts  map[ShapeFreq]float64
	seen    float64
	rebuilt float64
	m       *fragModel
	version uint64
}

// Version changes whenever the learned distribution is rebuilt.
func (a *Ark) Version() uint64 { return a.version }

// Ark's constants.
const (
	arkCoverPct = 99   // share of arrived tasks the learned shapes cover
	arkScale    = 1000 // FGD's sigmoid scale, milli-GPU
	arkLevels   = 100  // FGD's score levels
	// arkMaxShapes bounds the learned shapes: one fragmentation measure
	// costs shapes x GPUs. On openb 256 gives the same decisions as no
	// bound; with CPU and memory drawn per task it keeps scoring cheap.
	arkMaxShapes = 256
)

// NewArk returns Ark's policy with an empty history.
func NewArk() *Ark { return &Ark{counts: map[ShapeFreq]float64{}} }

func (*Ark) Name() string { return "ark" }

// Observe learns the arriving task's shape. The distribution is rebuilt
// once the history has grown by a tenth (at least 50 tasks) since the last
// build, which keeps the cost per task flat.
func (a *Ark) Observe(t Task) {
	sh := shapeOf(t)
	sh.Memory = t.Memory
	a.counts[sh]++
	a.seen++
	if a.m == nil || a.seen-a.rebuilt >= max(50, a.rebuilt/10) {
		a.m = newFragModel(typicalFromCounts(a.counts, a.seen, arkCoverPct, arkMaxShapes))
		a.rebuilt = a.seen
		a.version++
	}
}

func quantize(d float64) float64 { return float64(int64(sigmoid(d/arkScale) * arkLevels)) }

func (a *Ark) Score(n *NodeState, t Task) (float64, []int) {
	if a.m == nil {
		a.Observe(t)
	}
	if t.GPUs == 0 {
		return -float64(n.FreeMilli()) - 1e-9*float64(n.CPUFree-t.CPUMilli), nil
	}
	before := a.m.Frag(n)
	if t.Shared() {
		best, bestGPU, bestFree := 0.0, -1, int64(0)
		for i, f := range n.GPUFree {
			if f < t.GPUMilli {
				continue
			}
			n.CPUFree -= t.CPUMilli
			n.MemFree -= t.Memory
			n.GPUFree[i] -= t.GPUMilli
			after := a.m.Frag(n)
			n.CPUFree += t.CPUMilli
			n.MemFree += t.Memory
			n.GPUFree[i] += t.GPUMilli
			if d := before - after; bestGPU < 0 || d > best || (d == best && f < bestFree) {
				best, bestGPU, bestFree = d, i, f
			}
		}
		return quantize(best), []int{bestGPU}
	}
	gpus := pickGPUs(n, t)
	n.Take(t, gpus)
	after := a.m.Frag(n)
	n.Release(t, gpus)
	return quantize(before - after), gpus
}
